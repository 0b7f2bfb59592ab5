/**
 * The deployment files, tested as far as this machine allows. THERE IS NO DOCKER ENGINE AND NO GPU
 * HERE: images are not built and containers are not run. What runs instead:
 *   - the image's build script (`docker/build-engine.sh cpu`, as the CPU stage runs it);
 *   - the container's exact command line (ENTRYPOINT + CMD of the Dockerfile's GPU target) with the
 *     environment the image and compose.gpu.yml give it, outside Docker, on the CPU engine; swapped for
 *     local values are only what exists inside the image alone (cache dir, model, port) and the worker
 *     count and threads (one each, for a 2-core CI machine);
 *   - the HEALTHCHECK command against that server;
 *   - `docker compose config` (or docker-compose 1.x) on compose.gpu.yml, where a client exists.
 */
// test-cores: 1 (one worker with one thread; scripts/test.js)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { cacheDir, REPO_ROOT } from '../../engine/paths.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { freeTcpPort, KolProcess, waitUntil } from '../../test/helpers/production.js';

interface Stage {
  name: string;
  from: string;
  lines: string[];
}

/** The Dockerfile's stages, with continuation lines joined. */
function dockerStages(): Stage[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ name: from[2] ?? `stage${stages.length}`, from: from[1], lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

function instruction(stage: Stage, name: string): string[] {
  return stage.lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length).trim());
}

/** ENV lines (KEY=value pairs; values without spaces, as this Dockerfile writes them), ARG defaults substituted. */
function stageEnv(stage: Stage, args: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of instruction(stage, 'ENV')) {
    for (const pair of line.split(/\s+/)) {
      const [key, ...rest] = pair.split('=');
      env[key] = rest.join('=').replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? '');
    }
  }
  return env;
}

function dockerArgs(): Record<string, string> {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^ARG\s+(\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]));
}

/**
 * The `environment:` map of the `kol` service in compose.gpu.yml (a tiny reader for this file's
 * shape: `KEY: "value"` lines), with `${VAR:-default}` resolved to the default, as compose does
 * when the variable is not set.
 */
function composeEnv(): Record<string, string> {
  const lines = fs.readFileSync(path.join(REPO_ROOT, 'compose.gpu.yml'), 'utf8').split('\n');
  const start = lines.findIndex((l) => /^ {4}environment:\s*$/.test(l));
  assert.ok(start > 0, 'compose.gpu.yml has an environment map');
  const env: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (/^\s*#/.test(line) || !line.trim()) continue;
    const m = /^ {6}(\w+):\s*"?(.*?)"?\s*$/.exec(line);
    if (!m) break;
    env[m[1]] = m[2].replace(/\$\{\w+:-([^}]*)\}/g, '$1');
  }
  return env;
}

describe('Dockerfile and compose.gpu.yml (NO DOCKER ENGINE OR GPU HERE: run outside containers)', () => {
  const stages = dockerStages();
  const gpu = stages.find((s) => s.name === 'gpu')!;
  const cpu = stages.find((s) => s.name === 'cpu')!;
  const args = dockerArgs();

  test('multi-stage: CUDA devel → runtime of the same pinned tag, a CPU target, non-root, models in a volume, healthcheck on /readyz', () => {
    assert.ok(gpu && cpu, 'gpu and cpu targets');
    assert.equal(stages.at(-1)!.name, 'gpu', 'the GPU image is the default target');
    const build = stages.find((s) => s.name === 'cuda-build')!;
    assert.equal(build.from, 'nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}');
    assert.equal(gpu.from, 'nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION}');
    assert.match(args.CUDA_VERSION, /^\d+\.\d+\.\d+$/, 'a pinned CUDA version');
    assert.match(args.NODE_IMAGE, /^node:\d+\.\d+\.\d+-/, 'a pinned Node image');
    for (const stage of stages) assert.ok(!/:latest$/.test(stage.from), `${stage.name} is pinned`);
    assert.ok(instruction(build, 'RUN').includes('docker/build-engine.sh cuda'));
    for (const stage of [gpu, cpu]) {
      assert.deepEqual(instruction(stage, 'USER'), ['kol'], `${stage.name} runs as the kol user`);
      assert.ok(instruction(stage, 'VOLUME').some((v) => v.includes('/var/lib/kol/models')), `${stage.name}: models in a volume`);
      const env = stageEnv(stage, args);
      assert.equal(env.KOL_CACHE_DIR, '/var/lib/kol');
      assert.equal(env.KOL_HOST, '0.0.0.0');
      assert.match(instruction(stage, 'HEALTHCHECK').join(' '), /\/readyz/);
      assert.ok(!/curl|wget/.test(instruction(stage, 'HEALTHCHECK').join(' ')), 'no curl needed');
    }
    const compose = fs.readFileSync(path.join(REPO_ROOT, 'compose.gpu.yml'), 'utf8');
    assert.match(compose, /driver: nvidia\s+count: 1\s+capabilities: \[gpu\]/);
    assert.match(compose, /kol-models:\/var\/lib\/kol\/models/);
    assert.match(compose, /device_ids: \["1"\]/, 'the commented two-GPU example');
  });

  test('the build script runs: docker/build-engine.sh cpu builds (or finds) a whisper-server that runs', () => {
    const out = execFileSync(path.join(REPO_ROOT, 'docker', 'build-engine.sh'), ['cpu'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const binary = out.trim().split('\n').at(-1)!;
    assert.ok(fs.existsSync(binary), binary);
    assert.ok(binary.startsWith(path.join(cacheDir(), 'engine')), 'into the cache dir the runtime stage copies');
  });

  test('the GPU container command line, with the image and compose environment, refuses on a GPU-less host (gpuFallback=refuse)', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const env = containerEnv(gpu, args, await freeTcpPort());
    assert.equal(env.KOL_GPU, 'on');
    assert.equal(env.KOL_GPU_FALLBACK, 'refuse');
    const kol = runContainerCommand(gpu, env);
    const exit = await kol.exited;
    assert.equal(exit.code, 1);
    assert.match(kol.lines.join('\n'), /kol: error \[gpu_unavailable\].*no NVIDIA GPU is visible/);
  });

  test('with KOL_GPU_FALLBACK=cpu the same command line serves on the CPU: /readyz 200, the HEALTHCHECK passes, SIGTERM exits 0', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const port = await freeTcpPort();
    const env = { ...containerEnv(gpu, args, port), KOL_GPU_FALLBACK: 'cpu' };
    const kol = runContainerCommand(gpu, env);
    try {
      const warning = await kol.waitForLog('gpu is "on" but no NVIDIA GPU is visible (nvidia-smi is missing or lists none): falling back to the CPU (gpuFallback=cpu); expect much slower transcription');
      assert.equal(warning.level, 40);
      await kol.waitForLog('kol is listening');
      await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200, 30_000, '/readyz');
      const check = JSON.parse(instruction(gpu, 'HEALTHCHECK').join(' ').replace(/^.*?CMD\s+/, '')) as string[];
      const health = spawnSync(check[0] === 'node' ? process.execPath : check[0], check.slice(1), { env, timeout: 10_000 });
      assert.equal(health.status, 0, `the HEALTHCHECK command passes: ${health.stderr}`);
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(metrics.status, 200, '/metrics is open (no API keys in the default compose env)');
      kol.child.kill('SIGTERM');
      assert.deepEqual(await kol.exited, { code: 0, signal: null });
      assert.match(kol.lines.join('\n'), /no API keys configured: the server is open/, 'the open server says so at start');
    } finally {
      kol.kill();
    }
  });

  test('docker compose config validates compose.gpu.yml (where a compose client exists)', async (t) => {
    const candidates: Array<[string, string[]]> = [
      ['docker', ['compose', '-f', 'compose.gpu.yml', 'config']],
      ['docker-compose', ['-f', 'compose.gpu.yml', 'config']],
    ];
    for (const [cmd, cmdArgs] of candidates) {
      const result = spawnSync(cmd, cmdArgs, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
      if (result.error || /unknown (command|shorthand flag)|is not a docker command/.test(result.stderr ?? '')) continue;
      t.diagnostic(`validated with: ${cmd} ${cmdArgs.join(' ')}`);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /driver: nvidia/);
      assert.match(result.stdout, /KOL_GPU_FALLBACK: refuse/);
      return;
    }
    process.stderr.write('\n!!! no docker compose client here: compose.gpu.yml was not validated by compose\n');
    t.skip('no docker compose client');
  });
});

/**
 * The environment the container's process sees: the stage's ENV, then compose's environment. Swapped
 * for local values: the cache dir (image path), the model (the container would download the GPU
 * default into its volume), the port (8009 may be taken here).
 */
function containerEnv(stage: Stage, args: Record<string, string>, port: number): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'KOL_ASSETS']) if (process.env[key]) base[key] = process.env[key]!;
  return { ...base, ...stageEnv(stage, args), ...composeEnv(), KOL_CACHE_DIR: cacheDir(), KOL_MODEL: REAL_MODEL, KOL_PORT: String(port), KOL_WORKERS: '1', KOL_THREADS: '1' };
}

/** ENTRYPOINT + CMD of the stage, run from the repository root (the image's WORKDIR /app). */
function runContainerCommand(stage: Stage, env: Record<string, string>): KolProcess {
  const entrypoint = JSON.parse(instruction(stage, 'ENTRYPOINT')[0]) as string[];
  const cmd = JSON.parse(instruction(stage, 'CMD')[0]) as string[];
  assert.deepEqual([...entrypoint, ...cmd], ['node', 'bin/kol.js', 'serve'], 'the container runs `node bin/kol.js serve`');
  assert.equal(instruction(stage, 'WORKDIR')[0] ?? '/app', '/app');
  return new KolProcess(cmd, env);
}
