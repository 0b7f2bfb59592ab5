/**
 * GPU selection and fallback. THIS MACHINE HAS NO GPU: the real-host tests exercise the no-GPU paths
 * for real; the GPU-present paths are exercised with SIMULATED hosts (an injected probe and builder),
 * and the "CUDA build fails" path with FAKE `nvidia-smi` and `nvcc` scripts on the PATH, so that the
 * real whisper.cpp CUDA configure runs and really fails.
 */
// test-cores: 1 (one worker with one thread at a time; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isKolError, KolError } from '../../engine/errors.js';
import { engineBuildDir, type BuildOptions, type EngineBuild } from '../../engine/whisper/build.js';
import { startServer } from '../app.js';
import { DEFAULT_CONFIG, type ServerConfig } from '../config.js';
import { chooseEngine, parseGpuList, type GpuProbe } from '../gpu.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { capturingLogger } from '../../test/helpers/log.js';

const fakeEngine = (cuda: boolean): EngineBuild => ({ binary: `/fake/${cuda ? 'cuda' : 'cpu'}/whisper-server`, version: 'test', cuda, dir: '/fake' });

/** A simulated host: which GPUs it shows and whether a CUDA build exists or can be made. */
function simulatedHost(options: { gpus: number; cudaCached?: boolean; nvcc?: boolean }): GpuProbe {
  return {
    devices: async () => Array.from({ length: options.gpus }, (_, i) => ({ index: i, name: 'Simulated RTX 3090', uuid: `GPU-sim-${i}` })),
    cudaBuildCached: () => options.cudaCached ?? false,
    hasNvcc: () => options.nvcc ?? false,
  };
}

function builder(cudaFails = false) {
  const calls: boolean[] = [];
  const build = async (o: BuildOptions) => {
    calls.push(Boolean(o.cuda));
    if (o.cuda && cudaFails) throw new KolError('build_failed', 'whisper.cpp configure failed. Last output:\nCMake Error: CUDA compiler broken');
    return fakeEngine(Boolean(o.cuda));
  };
  return { build, calls };
}

type GpuSettings = Pick<ServerConfig, 'gpu' | 'gpuFallback' | 'gpuDevices'>;
const settings = (gpu: ServerConfig['gpu'], gpuFallback: ServerConfig['gpuFallback'] = 'cpu', gpuDevices: number[] = []): GpuSettings => ({ gpu, gpuFallback, gpuDevices });

describe('choosing GPU or CPU on SIMULATED hosts (no GPU here)', () => {
  test('auto: the GPU when one is visible and a CUDA build exists; the CPU, quietly, when no GPU is visible', async () => {
    const gpuHost = builder();
    assert.equal((await chooseEngine(settings('auto'), capturingLogger().logger, gpuHost.build, simulatedHost({ gpus: 1, cudaCached: true }))).gpu, true);
    assert.deepEqual(gpuHost.calls, [true]);
    const cpuHost = builder();
    const log = capturingLogger();
    const choice = await chooseEngine(settings('auto'), log.logger, cpuHost.build, simulatedHost({ gpus: 0, nvcc: true }));
    assert.equal(choice.gpu, false);
    assert.deepEqual(cpuHost.calls, [false], 'no CUDA build is attempted without a GPU');
    assert.ok(!log.lines.some((l) => l.level >= 40), 'no warning: auto means the CPU is fine');
  });

  test('on + no GPU: fallback cpu warns and runs on the CPU; refuse stops with gpu_unavailable', async () => {
    const log = capturingLogger();
    const b = builder();
    const choice = await chooseEngine(settings('on', 'cpu'), log.logger, b.build, simulatedHost({ gpus: 0 }));
    assert.equal(choice.gpu, false);
    assert.ok(log.lines.some((l) => l.level === 40 && /falling back to the CPU/.test(l.msg)), 'a warning');
    await assert.rejects(chooseEngine(settings('on', 'refuse'), log.logger, builder().build, simulatedHost({ gpus: 0 })), (err) => {
      assert.ok(isKolError(err, 'gpu_unavailable'));
      assert.match(err.message, /no NVIDIA GPU is visible/);
      assert.match(err.message, /KOL_GPU_FALLBACK=cpu/);
      return true;
    });
  });

  test('on + a GPU but the CUDA build fails: fallback cpu builds for the CPU with a warning; refuse names the build failure', async () => {
    const log = capturingLogger();
    const b = builder(true);
    const choice = await chooseEngine(settings('on', 'cpu'), log.logger, b.build, simulatedHost({ gpus: 1, nvcc: true }));
    assert.equal(choice.gpu, false);
    assert.deepEqual(b.calls, [true, false], 'tried CUDA, then built for the CPU');
    assert.match(choice.reason ?? '', /CUDA build of whisper\.cpp failed/);
    assert.ok(log.lines.some((l) => l.level === 40 && /falling back to the CPU/.test(l.msg)));
    // gpu=auto falls back too, with a warning (a broken toolkit deserves one even when the GPU is optional).
    const autoLog = capturingLogger();
    assert.equal((await chooseEngine(settings('auto'), autoLog.logger, builder(true).build, simulatedHost({ gpus: 1, nvcc: true }))).gpu, false);
    assert.ok(autoLog.lines.some((l) => l.level === 40));
    await assert.rejects(chooseEngine(settings('on', 'refuse'), log.logger, builder(true).build, simulatedHost({ gpus: 1, nvcc: true })), /gpu_unavailable|CUDA build of whisper\.cpp failed/);
  });

  test('gpuDevices naming a GPU the host does not have is a configuration error', async () => {
    await assert.rejects(chooseEngine(settings('on', 'cpu', [0, 3]), capturingLogger().logger, builder().build, simulatedHost({ gpus: 2, cudaCached: true })), (err) => {
      assert.ok(isKolError(err, 'invalid_config'));
      assert.match(err.message, /GPU 3/);
      return true;
    });
  });

  test('nvidia-smi -L output (recorded format; no GPU here) is parsed into devices', () => {
    const recorded = [
      'GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70)',
      'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9)',
      '  MIG 1g.10gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)',
      '',
    ].join('\n');
    assert.deepEqual(parseGpuList(recorded), [
      { index: 0, name: 'NVIDIA GeForce RTX 3090', uuid: 'GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70' },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9' },
    ]);
  });
});

describe('this real host (no GPU, no nvidia-smi)', () => {
  const base = (): ServerConfig => ({ ...DEFAULT_CONFIG, port: 0, model: REAL_MODEL, workers: 1, threads: 1, logLevel: 'warn' });

  test('gpu=on with gpuFallback=cpu: starts on CPU workers with a warning and transcribes', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const { logger, lines } = capturingLogger();
    const server = await startServer({ ...base(), gpu: 'on', gpuFallback: 'cpu' }, logger);
    try {
      assert.equal(server.runtime.gpu, false);
      const warning = lines.find((l) => l.level === 40 && /gpu is "on" but/.test(l.msg));
      assert.ok(warning, 'the fallback is logged as a warning');
      t.diagnostic(`warning: ${warning.msg}`);
      assert.equal(server.runtime.finalPool.readyCount(), 1);
      assert.equal((await fetch(`${server.url.replace(/^ws/, 'http')}/readyz`)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('gpu=on with gpuFallback=refuse: the start fails with gpu_unavailable and a clear message', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    await assert.rejects(startServer({ ...base(), gpu: 'on', gpuFallback: 'refuse' }, capturingLogger().logger), (err) => {
      assert.ok(isKolError(err, 'gpu_unavailable'));
      t.diagnostic(err.message);
      return true;
    });
  });
});

describe('a CUDA build that really fails (FAKE nvidia-smi and nvcc on the PATH; no GPU here)', () => {
  test('gpu=on, fallback cpu: the real CUDA configure fails, the server starts on the CPU with a warning; refuse names the failure', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-fake-gpu-'));
    fs.writeFileSync(path.join(bin, 'nvidia-smi'), '#!/bin/sh\n[ "$1" = "-L" ] || exit 9\necho "GPU 0: NVIDIA Fake 3090 (UUID: GPU-00000000-0000-0000-0000-000000000000)"\n', { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'nvcc'), '#!/bin/sh\necho "nvcc fatal: this is a fake nvcc for the kol tests" >&2\nexit 1\n', { mode: 0o755 });
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    const cudaDir = engineBuildDir({ cuda: true }).dir;
    const leftovers = () => fs.readdirSync(path.dirname(cudaDir)).filter((f) => f.startsWith(`${path.basename(cudaDir)}.build-${process.pid}`));
    try {
      if (fs.existsSync(cudaDir)) return t.skip('a CUDA build is cached on this machine; the failing-build path cannot be shown');
      const { logger, lines } = capturingLogger();
      const server = await startServer({ ...DEFAULT_CONFIG, port: 0, model: REAL_MODEL, workers: 1, threads: 1, gpu: 'on', gpuFallback: 'cpu' }, logger);
      try {
        assert.equal(server.runtime.gpu, false);
        const failure = lines.find((l) => l.msg === 'CUDA build of whisper.cpp failed');
        assert.ok(failure, 'the failed CUDA build is logged');
        assert.ok(lines.some((l) => l.level === 40 && /the CUDA build of whisper\.cpp failed/.test(l.msg)), 'and the fallback warned about');
        assert.equal(server.runtime.finalPool.readyCount(), 1, 'CPU workers run');
      } finally {
        await server.close();
      }
      await assert.rejects(
        startServer({ ...DEFAULT_CONFIG, port: 0, model: REAL_MODEL, workers: 1, threads: 1, gpu: 'on', gpuFallback: 'refuse' }, capturingLogger().logger),
        (err) => isKolError(err, 'gpu_unavailable') && /CUDA build of whisper\.cpp failed/.test(err.message),
      );
    } finally {
      process.env.PATH = savedPath;
      for (const dir of leftovers()) fs.rmSync(path.join(path.dirname(cudaDir), dir), { recursive: true, force: true });
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});
