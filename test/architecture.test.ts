/**
 * The folder tree's one-way rules (docs/ARCHITECTURE.md), checked from the import graph: every
 * relative `import … from`, `export … from` and `import(…)` in the repository's TypeScript and
 * JavaScript, resolved to the folder it lands in.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../engine/paths.js';

/** A rule: files under `from` (tests included or not) must not import anything under `to`. */
interface Rule {
  from: string;
  to: string[];
  tests: boolean;
  why: string;
}

export const RULES: readonly Rule[] = [
  { from: 'engine/', to: ['server/', 'cli/', 'clients/', 'bench/', 'corpus/'], tests: false, why: 'the engine is the pipeline; everything else uses it' },
  { from: 'server/', to: ['cli/', 'bench/', 'clients/', 'corpus/'], tests: false, why: 'the server serves; the CLI and the benchmarks use it' },
  { from: 'clients/', to: ['cli/', 'bench/', 'corpus/'], tests: false, why: 'clients speak the protocol; they are used, not users' },
  { from: 'corpus/', to: ['server/', 'cli/', 'clients/', 'bench/', 'test/'], tests: false, why: 'the corpus is shared by tests and benchmarks, owned by neither' },
  { from: 'bench/', to: ['test/'], tests: false, why: 'benchmarks share the corpus, not the tests' },
  { from: '', to: ['bench/'], tests: true, why: "no test depends on a benchmark (bench/'s own tests aside)" },
];

export interface ImportEdge {
  file: string;
  target: string;
}

/** A file's relative import specifiers, resolved against the repository root. */
export function importsOf(file: string, source: string): ImportEdge[] {
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => ({ file, target: path.posix.normalize(path.posix.join(path.posix.dirname(file), s)) }));
}

/** The edges that break a rule, each with the rule it breaks. */
export function violations(edges: ImportEdge[], rules: readonly Rule[] = RULES): string[] {
  const out: string[] = [];
  for (const { file, target } of edges) {
    const isTest = /\.test\.[cm]?[jt]s$/.test(file);
    for (const rule of rules) {
      if (!file.startsWith(rule.from) || (isTest && !rule.tests)) continue;
      if (rule.from === '' && (!isTest || file.startsWith('bench/'))) continue;
      const hit = rule.to.find((dir) => target.startsWith(dir));
      if (hit) out.push(`${file} imports ${target}: ${rule.from || 'a test'} must not import ${hit} (${rule.why})`);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return ['node_modules', '.git', '.scratch'].includes(entry.name) || entry.name.startsWith('.') ? [] : sourceFiles(rel);
    return /\.(ts|js|mjs|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [rel] : [];
  });
}

describe('the import graph follows docs/ARCHITECTURE.md', () => {
  test('the check sees a wrong-way import', () => {
    const edges = [
      ...importsOf('engine/stream.ts', "import { x } from '../server/protocol.js';\nconst m = await import('../cli/main.js');"),
      ...importsOf('server/app.test.ts', "import { joinClips } from '../bench/streams.js';"),
      ...importsOf('server/app.ts', "import type { A } from '../engine/stream.js';"),
    ];
    assert.deepEqual(
      violations(edges).map((v) => v.split(':')[0]),
      ['engine/stream.ts imports server/protocol.js', 'engine/stream.ts imports cli/main.js', 'server/app.test.ts imports bench/streams.js'],
    );
  });

  test('no file imports against the rules', () => {
    const files = fs
      .readdirSync(REPO_ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
      .flatMap((e) => sourceFiles(e.name));
    assert.ok(files.length > 100, `the whole tree was read (${files.length} files)`);
    const edges = files.flatMap((file) => importsOf(file, fs.readFileSync(path.join(REPO_ROOT, file), 'utf8')));
    assert.ok(edges.some((e) => e.file.startsWith('server/') && e.target.startsWith('engine/')), 'imports were found');
    assert.deepEqual(violations(edges), []);
  });
});
