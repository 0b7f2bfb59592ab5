/**
 * SpeechStream's own policy, over the real VAD and real speech but a fake pool that the test answers:
 * finals do not wait for each other and still come out in segment order, an error names the segment
 * it cost, and a final that lost speech under a prompt is decoded again without it. Whisper itself is
 * in the end-to-end tests (server/stream.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONTINUOUS_GAPS_S, joinClips } from '../corpus/streams.js';
import { FakePool, type Answer, type FakeJob } from '../test/helpers/fake-pool.js';
import { clips } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { sleep, waitUntil } from '../test/helpers/production.js';
import { KolError } from './errors.js';
import { Scheduler } from './scheduler.js';
import { lostSpeech, SpeechStream, type SpeechEvent, type StreamSettings } from './stream.js';
import { SileroVad } from './vad/silero.js';
import type { Transcript } from './whisper/types.js';

const SETTINGS: StreamSettings = { sampleRate: 16_000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: false, endpointMs: 500, prompt: '' };

/** Words spread evenly over the job's audio: a transcript that covers all of it. */
const covering: Answer = (job) => {
  const seconds = job.pcm.length / 16_000;
  const words = Array.from({ length: 6 }, (_, i) => ({ word: `מילה${i}`, start: (i * seconds) / 6, end: ((i + 1) * seconds) / 6, probability: 0.9 }));
  return { text: words.map((w) => w.word).join(' '), duration: seconds, segments: [{ text: words.map((w) => w.word).join(' '), start: 0, end: seconds, noSpeechProb: 0, avgLogprob: -0.2, words }] };
};

const TWO_SENTENCES = () => clips('he').filter((c) => c.name === 'Hashlama112_0024' || c.name === 'Hungary1_0068');

describe('SpeechStream over a fake pool', () => {
  let vad: SileroVad;
  let audio: Uint8Array;

  before(async () => {
    vad = await SileroVad.load();
    // Two sentences of 5–6 s with a 0.25 s breath between them: two segments.
    const joined = await joinClips(TWO_SENTENCES(), CONTINUOUS_GAPS_S);
    audio = new Uint8Array(joined.pcm16.buffer);
  });
  after(() => vad?.close());

  /**
   * Waits until `count` jobs are on the pool and stay there: a final started during a pause may be
   * replaced when the stream learns more, so the jobs to answer are the ones that remain.
   */
  async function settled(pool: FakePool, count: number): Promise<FakeJob[]> {
    for (;;) {
      await waitUntil(() => pool.running.length === count, 10_000, `${count} jobs on the pool`);
      const jobs = [...pool.running];
      await sleep(300);
      if (pool.running.length === count && jobs.every((j, i) => pool.running[i] === j)) return jobs;
    }
  }

  async function open(pool: FakePool, settings: Partial<StreamSettings> = {}) {
    const scheduler = new Scheduler(pool);
    const stream = await SpeechStream.create({ ...SETTINGS, ...settings }, { sessionId: 's', vad, scheduler });
    const events: SpeechEvent[] = [];
    stream.on('event', (e) => events.push(e));
    stream.pushPcm(audio);
    const ended = stream.end();
    return { stream, scheduler, events, ended };
  }

  test('finals start without waiting for each other and come out in segment order', async (t) => {
    if (!haveAssets(t, ...TWO_SENTENCES().map((c) => c.wav))) return;
    const pool = new FakePool(2, covering);
    const { events, ended, scheduler } = await open(pool);
    const [first, second] = await settled(pool, 2);
    second.finish();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(events.filter((e) => e.type === 'final').length, 0, 'the second final waits for the first to be sent');
    first.finish();
    await ended;
    const finals = events.filter((e): e is Extract<SpeechEvent, { type: 'final' }> => e.type === 'final');
    assert.deepEqual(finals.map((f) => f.segmentId), [0, 1]);
    assert.ok(finals.every((f) => f.decoding?.retried === false && f.text !== ''));
    scheduler.close();
  });

  test('a final lost to a worker error is an error naming its segment; the next final still comes', async (t) => {
    if (!haveAssets(t, ...TWO_SENTENCES().map((c) => c.wav))) return;
    const pool = new FakePool(1, covering);
    const { events, ended, scheduler } = await open(pool);
    (await settled(pool, 1))[0].finish(new KolError('worker_unavailable'));
    (await settled(pool, 1))[0].finish();
    await ended;
    const error = events.find((e): e is Extract<SpeechEvent, { type: 'error' }> => e.type === 'error');
    assert.equal(error?.error.code, 'worker_unavailable');
    assert.equal(error?.segmentId, 0);
    const finals = events.filter((e) => e.type === 'final');
    assert.deepEqual(finals.map((f) => f.type === 'final' && f.segmentId), [1]);
    scheduler.close();
  });

  test('a segment that ended without text shows a partial before its final, even when the partial on its way hears nothing', async (t) => {
    if (!haveAssets(t, ...TWO_SENTENCES().map((c) => c.wav))) return;
    // Partials of under 4 s of audio hear nothing (as whisper may on a segment's first words); the
    // whole segment is heard. The first partial holds the only worker until all the audio is in:
    // meanwhile the first segment ends with that partial and a newer one on their way, and the second
    // segment asks for partials of its own.
    const partialHearsNothingEarly: Answer = (job) => (job.options.beamSize === 1 && job.pcm.length < 4 * 16_000 ? { text: '', duration: job.pcm.length / 16_000, segments: [] } : covering(job));
    const pool = new FakePool(1, partialHearsNothingEarly);
    const held: { job?: FakeJob } = {};
    pool.on('started', (job: FakeJob) => {
      if (!held.job && job.options.beamSize === 1) held.job = job;
      else queueMicrotask(() => job.finish());
    });
    const { events, ended, scheduler } = await open(pool, { partials: true });
    const [holder] = await settled(pool, 1);
    assert.equal(holder, held.job, 'the first partial holds the worker');
    holder.finish();
    await ended;
    const finals = events.filter((e): e is Extract<SpeechEvent, { type: 'final' }> => e.type === 'final');
    assert.equal(finals.length, 2);
    for (const final of finals) {
      const at = events.indexOf(final);
      assert.ok(
        events.slice(0, at).some((e) => e.type === 'partial' && e.segmentId === final.segmentId && e.text !== ''),
        `segment ${final.segmentId} (${(final.end - final.start).toFixed(1)} s) showed a partial before its final: ${events.map((e) => e.type + ('segmentId' in e ? e.segmentId : '')).join(' ')}`,
      );
    }
    scheduler.close();
  });

  test('a final started in a pause is cancelled when speech resumes, and is the final when the pause ends the segment', async (t) => {
    const chosen = clips('he').filter((c) => c.name === 'Corona4_0007' || c.name === 'Hashlama117_0009');
    if (!haveAssets(t, ...chosen.map((c) => c.wav))) return;
    // Two short sentences 0.3 s apart: pauses inside and between them outlast the tail pad (finals
    // start on the idle workers) but not the endpoint (speech resumes), until the last one does.
    const joined = await joinClips(chosen, [0.3]);
    const pool = new FakePool(2, covering);
    const finals: FakeJob[] = [];
    // Answers come a while after they start: the stream reads the audio much faster than that, so
    // speech resumes while a speculative final is still on the pool.
    pool.on('started', (job: FakeJob) => {
      if (job.options.beamSize !== 1) finals.push(job);
      setTimeout(() => job.finish(), 300);
    });
    const scheduler = new Scheduler(pool);
    const stream = await SpeechStream.create({ ...SETTINGS, partials: false }, { sessionId: 's', vad, scheduler });
    const events: SpeechEvent[] = [];
    stream.on('event', (e) => events.push(e));
    stream.pushPcm(new Uint8Array(joined.pcm16.buffer));
    await stream.end();
    const emitted = events.filter((e): e is Extract<SpeechEvent, { type: 'final' }> => e.type === 'final');
    const cancelled = finals.filter((j) => j.aborted);
    t.diagnostic(`${emitted.length} finals; ${finals.length} decodes started, ${cancelled.length} cancelled when speech resumed`);
    assert.ok(emitted.length >= 2 && emitted.every((f) => f.text !== ''), 'each sentence got its final');
    assert.ok(cancelled.length >= 1, 'a final started in a pause was cancelled when speech resumed');
    assert.equal(finals.length - cancelled.length, emitted.length, 'each final decoded once: the speculation that reached the endpoint is the final, not decoded again');
    scheduler.close();
  });

  test('a final that lost speech under a prompt is decoded again without it, and says so', async (t) => {
    if (!haveAssets(t, ...TWO_SENTENCES().map((c) => c.wav))) return;
    // With a prompt, the "model" stops after half a second of speech: the skip a prompt can cause.
    const skipsUnderPrompt: Answer = (job) => {
      const full = covering(job);
      if (!job.options.prompt) return full;
      const words = full.segments[0].words.filter((w) => w.end <= 0.5);
      return { ...full, text: words.map((w) => w.word).join(' '), segments: [{ ...full.segments[0], words }] };
    };
    const pool = new FakePool(1, skipsUnderPrompt);
    const jobs: FakeJob[] = [];
    pool.on('started', (job: FakeJob) => {
      jobs.push(job);
      queueMicrotask(() => job.finish());
    });
    const { events, ended, scheduler } = await open(pool, { prompt: 'שמות ומונחים' });
    await ended;
    const finals = events.filter((e): e is Extract<SpeechEvent, { type: 'final' }> => e.type === 'final');
    assert.equal(finals.length, 2);
    for (const f of finals) assert.equal(f.decoding?.retried, true, `segment ${f.segmentId} was decoded again`);
    assert.deepEqual(
      jobs.map((j) => j.options.prompt ?? null),
      ['שמות ומונחים', null, 'שמות ומונחים', null],
      'each segment: first with the prompt, then without',
    );
    assert.ok(finals.every((f) => f.words.length === 6), 'the finals carry the retry\'s words');
    scheduler.close();
  });
});

describe('SpeechStream input', () => {
  test('NaN and ±Infinity float samples are heard as silence and counted', async () => {
    const vad = await SileroVad.load();
    const scheduler = new Scheduler(new FakePool(1));
    const stream = await SpeechStream.create({ ...SETTINGS, encoding: 'pcm_f32le' }, { sessionId: 's', vad, scheduler });
    const samples = new Float32Array(1601).fill(0.01);
    samples.set([NaN, Infinity, -Infinity], 7);
    samples[1600] = NaN;
    stream.pushPcm(new Uint8Array(samples.buffer));
    stream.pushPcm(new Uint8Array(Float32Array.of(NaN, 0.5).buffer));
    assert.equal(stream.nonFiniteSamples, 5);
    await stream.end();
    scheduler.close();
    await vad.close();
  });
});

describe('lostSpeech', () => {
  const transcript = (wordEnds: number[]): Transcript => ({
    text: '',
    language: 'he',
    duration: 10,
    worker: 'w',
    inferenceMs: 1,
    segments: [{ text: '', start: 0, end: 10, noSpeechProb: 0, avgLogprob: 0, words: wordEnds.map((end, i) => ({ word: `w${i}`, start: end - 0.3, end, probability: 1 })) }],
  });

  test('words ending more than 2 s before the speech did: lost', () => {
    assert.equal(lostSpeech(transcript([1, 2, 3]), 5.5, 0), true);
    assert.equal(lostSpeech(transcript([1, 2, 3.6]), 5.5, 0), false);
    assert.equal(lostSpeech(transcript([]), 2.5, 0), true);
  });

  test("under half the words of the segment's last partial: lost", () => {
    assert.equal(lostSpeech(transcript([1, 2, 3]), 3, 8), true);
    assert.equal(lostSpeech(transcript([1, 2, 3, 3.2]), 3.3, 8), false);
    assert.equal(lostSpeech(transcript([1]), 1.2, 3), false, 'too few partial words to judge');
  });
});
