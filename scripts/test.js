#!/usr/bin/env node
// `npm test`: builds the whisper.cpp engine once (cached, with progress), then runs every *.test.ts
// under cli/, engine/, server/, clients/, corpus/, bench/ and test/ with node's test runner, one file at a time (the
// tests start real whisper-server processes, and this machine may have only 2 cores).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const build = spawnSync(process.execPath, ['bin/kol.js', 'build-engine', '--no-cuda'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) process.exit(build.status ?? 1);

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : findTests(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

// Optional filters: `npm test -- engine/whisper` runs only the test files whose path contains one of them.
const filters = process.argv.slice(2);
const files = ['cli', 'engine', 'server', 'clients', 'corpus', 'bench', 'test']
  .flatMap(findTests)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Offline baselines decoded by one test file serve the later ones, for this run only (test/helpers/baselines.ts).
const baselines = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-test-baselines-'));
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, KOL_TEST_BASELINES: baselines },
});
fs.rmSync(baselines, { recursive: true, force: true });
process.exit(run.status ?? 1);
