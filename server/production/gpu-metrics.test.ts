/**
 * nvidia-smi parsing for /metrics, on RECORDED OUTPUT: there is no GPU (and no nvidia-smi) in the
 * environment these tests run in, so the samples below are nvidia-smi's output in its published
 * formats (CSV queries with noheader,nounits; `pmon` with and without the jpg/ofa and fb columns, an
 * idle GPU, `[N/A]` fields as MIG and some consumer cards print them). Then the same figures through
 * the metrics registry, with the sample's process ids replaced by this server's real worker pids.
 */
// test-cores: 1 (recorded nvidia-smi output; its workers decode nothing; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../app.js';
import { GpuMonitor, parseComputeApps, parseGpuQuery, parsePmon, type NvidiaSmiRunner } from '../gpu-metrics.js';
import { ServerMetrics } from '../metrics.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { startTestServer } from '../../test/helpers/server.js';

const RECORDED_GPU_QUERY = `0, GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70, NVIDIA GeForce RTX 3090, 3512, 24576, 87
1, GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9, NVIDIA H100 80GB HBM3, 1, 81559, 0
2, GPU-99999999-8888-7777-6666-555555555555, NVIDIA A100-SXM4-40GB, [N/A], [N/A], [N/A]
`;

const RECORDED_COMPUTE_APPS = `41872, GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70, 1702
41873, GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70, 1698
51000, GPU-99999999-8888-7777-6666-555555555555, [N/A]
`;

const RECORDED_PMON = `# gpu         pid   type     sm    mem    enc    dec    jpg    ofa    command
# Idx           #    C/G      %      %      %      %      %      %    name
    0      41872     C     61     23      -      -      -      -    whisper-server
    0      41873     C     24      9      -      -      -      -    whisper-server
    1          -     -      -      -      -      -      -      -    -
`;

const RECORDED_PMON_FB = `# gpu        pid  type    fb    sm   mem   enc   dec   command
# Idx          #   C/G    MB     %     %     %     %   name
    0      25985     C   893     7     1     -     -   whisper-server
`;

describe('nvidia-smi output parsing (RECORDED OUTPUT: no GPU in this environment)', () => {
  test('--query-gpu CSV: index, uuid, name, memory in bytes, utilisation 0–1; [N/A] left out', () => {
    const gpus = parseGpuQuery(RECORDED_GPU_QUERY);
    assert.equal(gpus.length, 3);
    assert.deepEqual(gpus[0], {
      index: 0,
      uuid: 'GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70',
      name: 'NVIDIA GeForce RTX 3090',
      memoryUsedBytes: 3512 * 1024 * 1024,
      memoryTotalBytes: 24576 * 1024 * 1024,
      utilization: 0.87,
    });
    assert.deepEqual(gpus[2], { index: 2, uuid: 'GPU-99999999-8888-7777-6666-555555555555', name: 'NVIDIA A100-SXM4-40GB' });
    assert.deepEqual(parseGpuQuery(''), []);
  });

  test('--query-compute-apps CSV: pid, GPU, memory; no processes gives nothing', () => {
    assert.deepEqual(parseComputeApps(RECORDED_COMPUTE_APPS), [
      { pid: 41872, gpuUuid: 'GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70', memoryUsedBytes: 1702 * 1024 * 1024 },
      { pid: 41873, gpuUuid: 'GPU-5f2a1c3e-8b7d-4e0a-9c61-2d3b4a5f6e70', memoryUsedBytes: 1698 * 1024 * 1024 },
      { pid: 51000, gpuUuid: 'GPU-99999999-8888-7777-6666-555555555555' },
    ]);
    assert.deepEqual(parseComputeApps(''), []);
    assert.deepEqual(parseComputeApps('No running processes found\n'), []);
  });

  test('pmon: columns found by name (with jpg/ofa, or with fb), idle GPU rows skipped', () => {
    assert.deepEqual(parsePmon(RECORDED_PMON), [
      { gpu: 0, pid: 41872, sm: 0.61 },
      { gpu: 0, pid: 41873, sm: 0.24 },
    ]);
    assert.deepEqual(parsePmon(RECORDED_PMON_FB), [{ gpu: 0, pid: 25985, sm: 0.07 }]);
    assert.deepEqual(parsePmon('garbage'), []);
  });

  test('GpuMonitor: no nvidia-smi → start() says so and nothing is polled', async () => {
    const monitor = new GpuMonitor(10, async () => {
      throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
    });
    assert.equal(await monitor.start(), false);
    assert.equal(monitor.latest, null);
    monitor.stop();
  });
});

describe('GPU series in /metrics (RECORDED OUTPUT, matched to this server\'s real worker pids)', () => {
  let server: RunningServer;
  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    server = await startTestServer();
  });
  after(() => server?.close());

  test('per-GPU utilisation and memory; per-worker VRAM and SM share', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const [w0, w1] = server.runtime.finalPool.stats().workers.map((w) => w.pid!);
    const withOurPids = (text: string) => text.replaceAll('41872', String(w0)).replaceAll('41873', String(w1));
    const run: NvidiaSmiRunner = async (args) =>
      args[0] === 'pmon' ? withOurPids(RECORDED_PMON) : args[0].startsWith('--query-gpu') ? RECORDED_GPU_QUERY : withOurPids(RECORDED_COMPUTE_APPS);
    const monitor = new GpuMonitor(60_000, run);
    assert.equal(await monitor.start(), true);
    const metrics = new ServerMetrics({ gpuMonitor: monitor });
    try {
      metrics.attach(server.gateway, server.runtime);
      const text = await metrics.registry.metrics();
      const has = (line: string) => assert.ok(text.split('\n').includes(line), `/metrics has the line: ${line}`);
      has('kol_gpu_utilization_ratio{gpu="0",name="NVIDIA GeForce RTX 3090"} 0.87');
      has(`kol_gpu_memory_total_bytes{gpu="1"} ${81559 * 1024 * 1024}`);
      has(`kol_gpu_memory_used_bytes{gpu="0"} ${3512 * 1024 * 1024}`);
      assert.ok(!text.includes('kol_gpu_memory_used_bytes{gpu="2"}'), '[N/A] is not reported as 0');
      has(`kol_worker_gpu_memory_bytes{pool="final",worker="w0",gpu="0"} ${1702 * 1024 * 1024}`);
      has(`kol_worker_gpu_memory_bytes{pool="final",worker="w1",gpu="0"} ${1698 * 1024 * 1024}`);
      has('kol_worker_gpu_utilization_ratio{pool="final",worker="w0",gpu="0"} 0.61');
      has('kol_worker_gpu_utilization_ratio{pool="final",worker="w1",gpu="0"} 0.24');
    } finally {
      metrics.close();
      monitor.stop();
    }
  });
});
