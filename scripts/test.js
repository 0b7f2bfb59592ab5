#!/usr/bin/env node
// `npm test`: builds the whisper.cpp engine once (cached, with progress), then runs every *.test.ts
// under cli/, engine/, server/, clients/, corpus/, bench/ and test/ with node's test runner, each file
// in a process of its own.
//
// Files run side by side as far as the machine's cores allow, and no further (as CTest's PROCESSORS
// property does). A file needs 2 cores when it starts the real model's workers (it names REAL_MODEL
// or test/helpers/engine.js: two one-thread whisper-server workers, sized for a 2-core machine), 1
// otherwise. A file that needs fewer than that default says so in a line of its own,
//   // test-cores: 1 (why)
// e.g. one session at real-time pace, which keeps one worker thread busy at a time. On 2 cores a
// 2-core file runs alone: timing-sensitive tests (latency, degraded finals) see the machine they
// were written for. KOL_TEST_CORES overrides the core count (KOL_TEST_CORES=1: one file at a time).
//
// A file that runs alone prints as it goes; files that share the machine print whole, one after the
// other, when each ends. A table of every file's time and outcome closes the run. A file still running
// after KOL_TEST_FILE_TIMEOUT_S (600) is stopped with every process it started, and fails.
import { spawn, spawnSync } from 'node:child_process';
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

const cores = Number(process.env.KOL_TEST_CORES) || os.availableParallelism();
// The longest file takes about 4.5 minutes on 2 cores; one still running after 10 has hung.
const fileTimeoutS = Number(process.env.KOL_TEST_FILE_TIMEOUT_S) || 600;

/** The cores a test file needs (see the header), and whether it runs the real model (it takes seconds, not milliseconds). */
function describeFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  const realModel = /\bREAL_MODEL\b|helpers\/engine\.js/.test(text);
  const declared = /^\/\/ test-cores: (\d+)/m.exec(text);
  return { file, realModel, cores: Math.min(cores, declared ? Number(declared[1]) : realModel ? 2 : 1) };
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

// Files that share the machine first, the long ones (real model) before the unit tests, which fill
// the gaps at the end; then the files that need the machine, in order: engine/whisper/pool.test.ts
// decodes the offline baselines that server/stream.test.ts reads.
// Among those, as CTest does with its cost data, the longest of the last run first (kept in the cache
// folder the engine build uses, so a fresh clone on the same machine has it too).
const { register } = await import('tsx/esm/api');
register();
const { cacheDir } = await import('../engine/paths.ts');
const timesFile = path.join(cacheDir(), 'test-times.json');
const lastTimes = fs.existsSync(timesFile) ? JSON.parse(fs.readFileSync(timesFile, 'utf8')) : {};
const longestFirst = (a, b) => (lastTimes[b.file] ?? Infinity) - (lastTimes[a.file] ?? Infinity) || a.file.localeCompare(b.file);
const jobs = files.map(describeFile);
const sharing = jobs.filter((j) => j.cores < cores);
const queue = [
  ...sharing.filter((j) => j.realModel).sort(longestFirst),
  ...sharing.filter((j) => !j.realModel).sort(longestFirst),
  ...jobs.filter((j) => j.cores >= cores),
];

// Offline baselines decoded by one test file serve the later ones, for this run only (test/helpers/baselines.ts).
const baselines = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-test-baselines-'));
const started = performance.now();
const results = [];
let free = cores;
/** The test files' processes now running; each leads a process group of its own (see runFile). */
const running = new Set();
// Being in groups of their own, the files do not see a Ctrl-C or a SIGTERM sent to this runner: pass it on.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of running) stopGroup(child);
    process.exit(128 + os.constants.signals[signal]);
  });
}

/** Kills a test file's process and every process it started (its group); it may be ending already. */
function stopGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group has ended
  }
}

/** Runs one file; resolves with its outcome once it ends. `alone`: nothing else runs, so print as it goes. */
function runFile(job, alone) {
  return new Promise((resolve) => {
    const at = performance.now();
    if (!alone) console.log(`… ${job.file} (beside others; printed when it ends)`);
    // A group of its own, so that a file that hangs is stopped with every process it started.
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', job.file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KOL_TEST_BASELINES: baselines },
      detached: true,
    });
    running.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stopGroup(child);
    }, fileTimeoutS * 1000);
    let output = '';
    const take = (stream, sink) =>
      stream.on('data', (chunk) => {
        output += chunk;
        if (alone) sink.write(chunk);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const seconds = (performance.now() - at) / 1000;
      const stopped = timedOut ? `\n✖ ${job.file} was stopped after ${fileTimeoutS} s (KOL_TEST_FILE_TIMEOUT_S): a test or a process it started never ended\n` : '';
      output += stopped;
      if (alone) process.stderr.write(stopped);
      if (!alone) process.stdout.write(`\n── ${job.file} (${seconds.toFixed(1)} s)\n${output}`);
      const count = (name) => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? 0);
      resolve({ ...job, seconds, ok: code === 0 && !timedOut, tests: count('tests'), pass: count('pass'), fail: count('fail'), skipped: count('skipped') });
    });
  });
}

await new Promise((done) => {
  const next = () => {
    // In order: a file waits until its cores are free, and nothing overtakes it.
    while (queue.length > 0 && queue[0].cores <= free) {
      const job = queue.shift();
      const alone = running.size === 0 && job.cores >= cores;
      free -= job.cores;
      runFile(job, alone).then((result) => {
        results.push(result);
        free += job.cores;
        next();
      });
    }
    if (queue.length === 0 && running.size === 0) done();
  };
  next();
});
fs.rmSync(baselines, { recursive: true, force: true });
fs.mkdirSync(path.dirname(timesFile), { recursive: true });
fs.writeFileSync(timesFile, JSON.stringify({ ...lastTimes, ...Object.fromEntries(results.map((r) => [r.file, Math.round(r.seconds * 10) / 10])) }, null, 1));

const sum = (key) => results.reduce((n, r) => n + r[key], 0);
const minutes = (performance.now() - started) / 60_000;
console.log(`\n${'seconds'.padStart(8)}  cores  file`);
for (const r of [...results].sort((a, b) => b.seconds - a.seconds)) console.log(`${r.seconds.toFixed(1).padStart(8)}  ${String(r.cores).padStart(5)}  ${r.ok ? '✔' : '✖'} ${r.file}`);
console.log(`\n${results.length} files, ${sum('tests')} tests: ${sum('pass')} pass, ${sum('fail')} fail, ${sum('skipped')} skipped; ${Math.floor(minutes)} min ${Math.round((minutes % 1) * 60)} s on ${cores} cores`);
const failed = results.filter((r) => !r.ok);
if (failed.length > 0) console.log(`failed: ${failed.map((r) => r.file).join(', ')}`);
process.exit(failed.length > 0 ? 1 : 0);
