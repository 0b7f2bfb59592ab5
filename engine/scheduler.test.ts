/**
 * The scheduler in front of real whisper-server workers on the real base model: finals before
 * partials, one pending partial per session, and on shared CPU cores partials yielding to finals.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { decodeAudioFile } from './audio/wav.js';
import { Scheduler, type ScheduledRecord } from './scheduler.js';
import { partialOptions } from './stream.js';
import { createLocalWorkers } from './whisper/local-workers.js';
import { WorkerPool } from './whisper/pool.js';
import { clips, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { engine } from '../test/helpers/engine.js';

const FINAL = { language: 'he', beamSize: 5 };

describe('scheduler over a real 2-worker pool', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  let pool: WorkerPool;
  let speech: Float32Array;

  before(async () => {
    pool = new WorkerPool(createLocalWorkers({ binary: (await engine()).binary, model: REAL_MODEL, count: 2, threads: 1 }), { requestTimeoutMs: 30_000 });
    await pool.start();
    const clip = clips('he').find((c) => c.name === 'Credit_Rating_0006') ?? clips('he')[0];
    if (clip) speech = (await decodeAudioFile(clip.wav)).pcm;
  });
  after(() => pool?.close());

  /** Every record the scheduler emits, with when it came. */
  function recorder(scheduler: Scheduler): Array<ScheduledRecord & { at: number }> {
    const records: Array<ScheduledRecord & { at: number }> = [];
    scheduler.on('scheduled', (r) => records.push({ ...r, at: performance.now() }));
    return records;
  }

  test('a newer partial of a session replaces its pending one; finals are never dropped', async (t) => {
    if (!haveAssets(t, ...clips('he').map((c) => c.wav))) return;
    const scheduler = new Scheduler(pool);
    t.after(() => scheduler.close());
    // Two finals take both workers; then three partials of one session wait, and only the newest survives.
    const finals = [scheduler.submitFinal('a', speech, FINAL), scheduler.submitFinal('b', speech, FINAL)];
    const partials = [1, 2, 3].map((s) => scheduler.submitPartial('c', speech.subarray(0, s * 16000), partialOptions('he')));
    const [p1, p2, p3] = await Promise.all(partials);
    assert.equal(p1, null);
    assert.equal(p2, null);
    assert.ok(p3 && p3.text.length > 0, 'the newest partial ran');
    for (const f of await Promise.all(finals)) assert.ok(f.text.length > 0);
  });

  test('on shared cores a final cancels the running partial, and no partial starts while it runs', async (t) => {
    if (!haveAssets(t, ...clips('he').map((c) => c.wav))) return;
    const scheduler = new Scheduler(pool, pool, { sharedCores: true });
    t.after(() => scheduler.close());
    const records = recorder(scheduler);
    const running = scheduler.submitPartial('a', speech, partialOptions('he'));
    await new Promise((resolve) => setTimeout(resolve, 100)); // it is on a worker now
    const final = scheduler.submitFinal('b', speech, FINAL);
    assert.equal(await running, null, 'the running partial was cancelled for the final');
    // A worker is free, but a final runs: this partial waits for it.
    const submittedAt = performance.now();
    const waiting = scheduler.submitPartial('c', speech.subarray(0, 2 * 16000), partialOptions('he'));
    const finalText = await final;
    const finalDoneAt = performance.now();
    const partial = await waiting;
    assert.ok(finalText.text.length > 0);
    assert.ok(partial && partial.text.length > 0, 'the partial ran after the final');
    const partialRecord = records.find((r) => r.kind === 'partial' && r.sessionId === 'c');
    assert.ok(partialRecord && partialRecord.outcome === 'done');
    // It was dispatched only once the final was done: its wait covers the rest of the final's run.
    const finalLeftMs = finalDoneAt - submittedAt;
    assert.ok(finalLeftMs > 200, 'the final was still running when the partial came');
    assert.ok(partialRecord.waitMs >= finalLeftMs - 50, `the partial waited ${partialRecord.waitMs.toFixed(0)} ms for the final (${finalLeftMs.toFixed(0)} ms left)`);
  });

  test('without yielding (a GPU, remote workers) a partial runs beside a final', async (t) => {
    if (!haveAssets(t, ...clips('he').map((c) => c.wav))) return;
    const scheduler = new Scheduler(pool);
    t.after(() => scheduler.close());
    const records = recorder(scheduler);
    const final = scheduler.submitFinal('b', speech, FINAL);
    const partial = await scheduler.submitPartial('c', speech.subarray(0, 2 * 16000), partialOptions('he'));
    assert.ok(partial, 'the partial ran');
    const partialRecord = records.find((r) => r.kind === 'partial');
    assert.ok(partialRecord && partialRecord.waitMs < 100, 'it started at once on the free worker');
    assert.ok(!records.some((r) => r.kind === 'final'), 'before the final was done');
    await final;
  });
});
