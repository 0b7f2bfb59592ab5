import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { KolError } from '../errors.js';
import { RESTART_BACKOFF_MS, WorkerRestarter } from './supervisor.js';
import type { WorkerHandle, WorkerState } from './worker.js';

/** A worker whose next starts fail as many times as told. */
class FlakyWorker extends EventEmitter<{ down: [reason: string] }> implements WorkerHandle {
  readonly id = 'w0';
  readonly baseUrl = 'http://127.0.0.1:1';
  state: WorkerState = 'stopped';
  starts: number[] = [];
  kills = 0;
  constructor(public failingStarts: number) {
    super();
  }
  async start(): Promise<void> {
    this.starts.push(performance.now());
    if (this.failingStarts-- > 0) throw new KolError('worker_start_failed', 'no');
    this.state = 'ready';
  }
  async kill(): Promise<void> {
    this.kills++;
    this.state = 'stopped';
  }
  async stop(): Promise<void> {
    this.state = 'stopped';
  }
}

test('failed starts are retried with growing delays; concurrent restarts are one', async () => {
  const worker = new FlakyWorker(2);
  const failures: number[] = [];
  let restarted = 0;
  let settled = 0;
  const restarter = new WorkerRestarter(worker, { stopped: () => false, restarted: () => restarted++, failed: (_, n) => failures.push(n), settled: () => settled++ });
  const began = performance.now();
  const first = restarter.restart();
  assert.equal(restarter.restarting, true);
  assert.equal(restarter.restart(), first);
  await first;
  assert.equal(restarter.restarting, false);
  assert.deepEqual(failures, [1, 2]);
  assert.equal(restarted, 1);
  assert.equal(settled, 1);
  assert.equal(worker.state, 'ready');
  assert.equal(worker.kills, 3);
  // 200 + 500 + 1000 ms of backoff before the three tries.
  const waited = RESTART_BACKOFF_MS[0] + RESTART_BACKOFF_MS[1] + RESTART_BACKOFF_MS[2];
  assert.ok(worker.starts[2] - began >= waited - 20, `third start after ${(worker.starts[2] - began).toFixed(0)} ms`);
});

test('failures in a row carry over to the next restart until healthy() clears them', async () => {
  const worker = new FlakyWorker(1);
  const restarter = new WorkerRestarter(worker, { stopped: () => false, restarted: () => {}, failed: () => {} });
  await restarter.restart();
  let began = performance.now();
  await restarter.restart();
  assert.ok(performance.now() - began >= RESTART_BACKOFF_MS[1] - 20, 'after a failed start the next restart waits longer');
  restarter.healthy();
  began = performance.now();
  await restarter.restart();
  assert.ok(performance.now() - began < RESTART_BACKOFF_MS[1], 'healthy() brings the shortest delay back');
});

test('a stopped supervisor gives up: no start after it stops, none at all once stopped', async () => {
  const worker = new FlakyWorker(0);
  let stopped = false;
  const restarter = new WorkerRestarter(worker, { stopped: () => stopped, restarted: () => {}, failed: () => {} });
  const pending = restarter.restart();
  stopped = true;
  await pending;
  await restarter.restart();
  assert.equal(worker.starts.length, 0);
});
