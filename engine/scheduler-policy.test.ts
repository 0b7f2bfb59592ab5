/**
 * The scheduler's policy over a fake pool whose jobs finish when the test says so: finals first and
 * in turn, degraded finals under load and full ones once it drains, first partials before repeat
 * ones (also while a final runs on shared cores), cancellation. Milliseconds, no whisper; the real
 * pool is in scheduler.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakePool } from '../test/helpers/fake-pool.js';
import { isKolError } from './errors.js';
import { DEGRADED_DECODING, Scheduler } from './scheduler.js';
import { partialOptions } from './stream.js';
import type { TranscribeOptions } from './whisper/types.js';

/** Audio whose first sample names the job, so the fake pool can tell jobs apart. */
const audio = (label: number, seconds = 3) => {
  const pcm = new Float32Array(seconds * 16_000);
  pcm[0] = label;
  return pcm;
};
const FINAL: TranscribeOptions = { language: 'he', beamSize: 5 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Scheduler policy (fake pool)', () => {
  test('finals before partials, and sessions take turns', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const order: string[] = [];
    const blocker = scheduler.submitFinal('a', audio(1), FINAL);
    const partial = scheduler.submitPartial('c', audio(9), partialOptions('he'));
    const finals = [scheduler.submitFinal('a', audio(2), FINAL), scheduler.submitFinal('a', audio(3), FINAL), scheduler.submitFinal('b', audio(4), FINAL)];
    for (const f of [blocker, ...finals]) void f.then((t) => order.push(t.text));
    void partial.then((t) => order.push(`partial ${t?.text}`));
    for (let i = 0; i < 5; i++) {
      await tick();
      pool.finish(pool.labels()[0]);
      await tick();
    }
    // b's final goes between a's two waiting finals; the partial waits for every final.
    assert.deepEqual(order, ['1', '2', '4', '3', 'partial 9']);
    scheduler.close();
  });

  test('a final that waits behind finals is degraded; once the queue drains, finals are full again', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const first = scheduler.submitFinal('a', audio(1), FINAL);
    const queued = scheduler.submitFinal('b', audio(2), FINAL);
    assert.deepEqual(pool.labels(), ['1']);
    assert.equal(pool.started[0].options.audioCtx, undefined, 'the first final had a free worker: full window');
    pool.finish('1');
    const a = await first;
    assert.deepEqual(a.decoding, { beam: 5, audioCtx: 1500, degraded: false });
    await tick();
    assert.deepEqual(pool.labels(), ['2']);
    assert.deepEqual({ beamSize: pool.started[1].options.beamSize, audioCtx: pool.started[1].options.audioCtx }, DEGRADED_DECODING);
    pool.finish('2');
    const b = await queued;
    assert.equal(b.decoding.degraded, true);
    assert.ok(b.decoding.audioCtx < 1500, `a window sized to 3 s of audio, not ${b.decoding.audioCtx}`);
    // The queue has drained: the next final is decoded in full.
    const later = scheduler.submitFinal('a', audio(3), FINAL);
    pool.finish('3');
    assert.equal((await later).decoding.degraded, false);
    scheduler.close();
  });

  test('a final with finals queued behind it is degraded too', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const busy = scheduler.submitFinal('a', audio(1), FINAL);
    const second = scheduler.submitFinal('b', audio(2), FINAL);
    const third = scheduler.submitFinal('c', audio(3), FINAL);
    pool.finish('1');
    await busy;
    await tick();
    pool.finish('2');
    await tick();
    pool.finish('3');
    assert.equal((await second).decoding.degraded, true);
    assert.equal((await third).decoding.degraded, true);
    scheduler.close();
  });

  test('independent workers (GPU, remote) run two finals at once in full; shared cores degrade the second', async () => {
    for (const sharedCores of [false, true]) {
      const pool = new FakePool(2);
      const scheduler = new Scheduler(pool, pool, { sharedCores });
      const a = scheduler.submitFinal('a', audio(1), FINAL);
      const b = scheduler.submitFinal('b', audio(2), FINAL);
      assert.deepEqual(pool.labels(), ['1', '2'], 'both run at once');
      pool.finish('1');
      pool.finish('2');
      assert.equal((await a).decoding.degraded, false);
      assert.equal((await b).decoding.degraded, sharedCores, `sharedCores ${sharedCores}`);
      scheduler.close();
    }
  });

  test('a final that waits only for a partial to be preempted, beside a running final, is decoded in full', async () => {
    // One speaker on two workers: segment 1's final runs, a partial of segment 2 holds the other
    // worker, then segment 2 ends. Its final waits for no final, so it meets no load.
    const pool = new FakePool(2);
    const scheduler = new Scheduler(pool);
    const first = scheduler.submitFinal('a', audio(1), FINAL);
    const partial = scheduler.submitPartial('a', audio(8), partialOptions('he'));
    assert.deepEqual(pool.labels(), ['1', '8']);
    const second = scheduler.submitFinal('a', audio(2), FINAL);
    assert.equal(await partial, null, 'the partial gave its worker to the final');
    await tick();
    assert.deepEqual(pool.labels(), ['1', '2']);
    pool.finish('2');
    pool.finish('1');
    assert.equal((await first).decoding.degraded, false);
    assert.equal((await second).decoding.degraded, false, 'no final held it up');
    // Two finals already hold both workers: a third does wait for a final, and is degraded.
    const c = scheduler.submitFinal('a', audio(3), FINAL);
    const d = scheduler.submitFinal('b', audio(4), FINAL);
    const e = scheduler.submitFinal('c', audio(5), FINAL);
    pool.finish('3');
    await tick();
    pool.finish('4');
    pool.finish('5');
    assert.deepEqual([(await c).decoding.degraded, (await d).decoding.degraded, (await e).decoding.degraded], [false, false, true]);
    scheduler.close();
  });

  test('a cancelled final still winding down (a speculation) does not degrade the one that replaces it', async () => {
    const pool = new FakePool(2);
    const scheduler = new Scheduler(pool, pool, { sharedCores: true });
    const controller = new AbortController();
    const speculation = scheduler.submitFinal('a', audio(1), FINAL, controller.signal);
    controller.abort();
    const final = scheduler.submitFinal('a', audio(2), FINAL);
    await assert.rejects(speculation, (err) => isKolError(err, 'transcription_aborted'));
    pool.finish('2');
    assert.equal((await final).decoding.degraded, false);
    scheduler.close();
  });

  test('degraded: null never degrades', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool, pool, { degraded: null });
    const a = scheduler.submitFinal('a', audio(1), FINAL);
    const b = scheduler.submitFinal('b', audio(2), FINAL);
    pool.finish('1');
    await a;
    await tick();
    pool.finish('2');
    assert.deepEqual((await b).decoding, { beam: 5, audioCtx: 1500, degraded: false });
    scheduler.close();
  });

  test("shared cores: while a final runs, a segment's first partial runs and repeat partials wait", async () => {
    const pool = new FakePool(2);
    const scheduler = new Scheduler(pool, pool, { sharedCores: true });
    const final = scheduler.submitFinal('a', audio(1), FINAL);
    const repeat = scheduler.submitPartial('b', audio(2), partialOptions('he'), false);
    await tick();
    assert.deepEqual(pool.labels(), ['1'], 'a repeat partial waits for the final');
    const first = scheduler.submitPartial('c', audio(3), partialOptions('he'), true);
    await tick();
    assert.deepEqual(pool.labels(), ['1', '3'], 'a first partial runs beside the final');
    pool.finish('3');
    assert.equal((await first)?.text, '3');
    await tick();
    assert.deepEqual(pool.labels(), ['1'], 'the repeat partial still waits');
    pool.finish('1');
    await final;
    await tick();
    assert.deepEqual(pool.labels(), ['2'], 'and runs once the final is done');
    pool.finish('2');
    assert.equal((await repeat)?.text, '2');
    scheduler.close();
  });

  test('shared cores: a final cancels running repeat partials, not a first partial', async () => {
    const pool = new FakePool(3);
    const scheduler = new Scheduler(pool, pool, { sharedCores: true });
    const repeat = scheduler.submitPartial('a', audio(1), partialOptions('he'), false);
    const first = scheduler.submitPartial('b', audio(2), partialOptions('he'), true);
    await tick();
    assert.deepEqual(pool.labels(), ['1', '2']);
    const final = scheduler.submitFinal('c', audio(3), FINAL);
    assert.equal(await repeat, null, 'the repeat partial was cancelled');
    assert.deepEqual(pool.labels(), ['2', '3']);
    pool.finish('2');
    pool.finish('3');
    assert.equal((await first)?.text, '2');
    await final;
    scheduler.close();
  });

  test('of waiting partials, a first one goes before repeat ones that waited longer', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const blocker = scheduler.submitFinal('z', audio(9), FINAL);
    const repeat = scheduler.submitPartial('a', audio(1), partialOptions('he'), false);
    const first = scheduler.submitPartial('b', audio(2), partialOptions('he'), true);
    pool.finish('9');
    await blocker;
    await tick();
    assert.deepEqual(pool.labels(), ['2']);
    pool.finish('2');
    await first;
    await tick();
    pool.finish('1');
    assert.equal((await repeat)?.text, '1');
    scheduler.close();
  });

  test('a segment that ended without text keeps its first partial, and it goes before the finals', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const busy = scheduler.submitFinal('a', audio(1), FINAL);
    const first = scheduler.submitPartial('a', audio(2), partialOptions('he'), true);
    // The segment ends while every worker is busy: its final queues, its first partial is kept.
    scheduler.cancelPartials('a', true);
    const final = scheduler.submitFinal('a', audio(3), FINAL);
    pool.finish('1');
    await busy;
    await tick();
    assert.deepEqual(pool.labels(), ['2'], 'the owed partial runs before the queued final');
    pool.finish('2');
    assert.equal((await first)?.text, '2');
    await tick();
    pool.finish('3');
    await final;
    // Without keepFirst the queued partial is dropped, as before.
    const blocker = scheduler.submitFinal('b', audio(4), FINAL);
    const dropped = scheduler.submitPartial('b', audio(5), partialOptions('he'), true);
    scheduler.cancelPartials('b');
    assert.equal(await dropped, null);
    pool.finish('4');
    await blocker;
    scheduler.close();
  });

  test("an owed partial is not replaced by the next segment's partials, nor cancelled when that segment ends", async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const busy = scheduler.submitFinal('a', audio(1), FINAL);
    // Segment 0 ends without text while the worker is busy: its partial is owed.
    const owed = scheduler.submitPartial('a', audio(2), partialOptions('he'), true, true);
    const final0 = scheduler.submitFinal('a', audio(3), FINAL);
    // Segment 1 asks for partials, then ends with text shown (nothing kept).
    const next = scheduler.submitPartial('a', audio(4), partialOptions('he'), true);
    scheduler.cancelPartials('a');
    assert.equal(await next, null, "segment 1's partial went with its segment");
    pool.finish('1');
    await busy;
    await tick();
    assert.deepEqual(pool.labels(), ['2'], 'the owed partial still runs, before the final');
    pool.finish('2');
    assert.equal((await owed)?.text, '2');
    await tick();
    pool.finish('3');
    await final0;
    scheduler.close();
  });

  test('a final cancelled while it waits resolves transcription_aborted and never reaches a worker', async () => {
    const pool = new FakePool(1);
    const scheduler = new Scheduler(pool);
    const busy = scheduler.submitFinal('a', audio(1), FINAL);
    const controller = new AbortController();
    const cancelled = scheduler.submitFinal('b', audio(2), FINAL, controller.signal);
    controller.abort();
    await assert.rejects(cancelled, (err) => isKolError(err, 'transcription_aborted'));
    pool.finish('1');
    await busy;
    await tick();
    assert.equal(pool.started.length, 1, 'the cancelled final never ran');
    scheduler.close();
  });
});
