/**
 * The offline pipeline: where speech is (pure, on made-up probabilities), and whole files through the
 * real Silero VAD and the real whisper base model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { assetPath, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { engine } from '../test/helpers/engine.js';
import { concatAudio, silence, whiteNoise } from '../test/helpers/signals.js';
import { wavBytes } from '../test/helpers/wav-bytes.js';
import { decodeAudioFile } from './audio/wav.js';
import { KolError } from './errors.js';
import { DEFAULT_SPAN_OPTIONS, speechSpans, transcribeOffline } from './offline.js';
import { FRAME_SAMPLES } from './vad/frames.js';
import { SileroVad } from './vad/silero.js';
import { wordErrorRate } from './wer.js';
import { createLocalWorkers } from './whisper/local-workers.js';
import { WorkerPool } from './whisper/pool.js';

const FRAMES_PER_S = 16_000 / FRAME_SAMPLES;
const PAD = Math.ceil((DEFAULT_SPAN_OPTIONS.padMs / 1000) * FRAMES_PER_S);
const MIN_SILENCE = Math.ceil((DEFAULT_SPAN_OPTIONS.minSilenceMs / 1000) * FRAMES_PER_S);

/** Probabilities: `speech` frames ranges at 0.9, the rest at `quiet`. */
function probabilities(total: number, speech: [number, number][], quiet = 0.05): number[] {
  const p = Array<number>(total).fill(quiet);
  for (const [from, to] of speech) p.fill(0.9, from, to);
  return p;
}

const frames = (...spans: [number, number][]) => spans.map(([start, end]) => ({ start: start * FRAME_SAMPLES, end: end * FRAME_SAMPLES }));

describe('speechSpans', () => {
  test('no speech, a blip too short to be speech, or NaN from the VAD: nothing to send', () => {
    assert.deepEqual(speechSpans(probabilities(300, []), 300 * FRAME_SAMPLES), []);
    assert.deepEqual(speechSpans(probabilities(300, [[100, 102]]), 300 * FRAME_SAMPLES), []);
    assert.deepEqual(speechSpans(Array<number>(300).fill(Number.NaN), 300 * FRAME_SAMPLES), []);
  });

  test('pauses under 2 s, and a lead-in and a tail under 2 s, are kept: the whole file is sent', () => {
    const total = 210;
    const spans = speechSpans(probabilities(total, [[10, 100], [140, 200]]), total * FRAME_SAMPLES - 77);
    assert.deepEqual(spans, [{ start: 0, end: total * FRAME_SAMPLES - 77 }]);
  });

  test('a pause of 2 s or more, and a long lead-in and tail, are cut to 0.4 s of padding on each side', () => {
    const total = 500;
    const spans = speechSpans(probabilities(total, [[100, 150], [350, 400]]), total * FRAME_SAMPLES);
    assert.deepEqual(spans, frames([100 - PAD, 150 + PAD], [350 - PAD, 400 + PAD]));
  });

  test('hysteresis: frames between the thresholds neither end speech nor start a pause', () => {
    const p = probabilities(600, [[100, 150], [300, 350]], 0.05);
    p.fill(0.4, 150, 300); // between endThreshold 0.35 and startThreshold 0.5: still speech
    assert.deepEqual(speechSpans(p, 600 * FRAME_SAMPLES), frames([100 - PAD, 350 + PAD]));
  });

  test('property: spans are sorted, disjoint and inside the file, cover every run of speech, and only long pauses are cut', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 0.95)), { maxLength: 800 }), fc.integer({ min: 0, max: FRAME_SAMPLES - 1 }), (p, short) => {
        const total = Math.max(0, p.length * FRAME_SAMPLES - short);
        const spans = speechSpans(p, total);
        let previousEnd = 0;
        for (const [i, span] of spans.entries()) {
          assert.ok(span.start < span.end && span.end <= total);
          // Removed audio before each span (and after the last) is at least a long pause less its padding.
          const removed = span.start - previousEnd;
          if (removed > 0) assert.ok(removed >= (MIN_SILENCE - (i === 0 ? PAD : 2 * PAD)) * FRAME_SAMPLES, `only ${removed} samples removed`);
          previousEnd = span.end;
        }
        if (spans.length > 0 && total > previousEnd) assert.ok(total - previousEnd >= (MIN_SILENCE - PAD) * FRAME_SAMPLES - FRAME_SAMPLES);
        // Every frame of a run of speech long enough to start speech is sent.
        for (let i = 0, run = 0; i < p.length; i++) {
          run = p[i] >= DEFAULT_SPAN_OPTIONS.startThreshold ? run + 1 : 0;
          if (run >= 3) for (const f of [i - 2, i - 1, i]) assert.ok(spans.some((s) => s.start <= f * FRAME_SAMPLES && Math.min(total, (f + 1) * FRAME_SAMPLES) <= s.end), `frame ${f} of speech not sent`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('transcribeOffline on the real VAD and base model', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  let pool: WorkerPool;
  let vad: SileroVad;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-offline-'));

  before(async () => {
    pool = new WorkerPool(createLocalWorkers({ binary: (await engine()).binary, model: REAL_MODEL, count: 1, threads: 2 }));
    [vad] = await Promise.all([SileroVad.load(), pool.start()]);
  });
  after(async () => {
    await Promise.all([pool?.close(), vad?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('speech between long silences: the silences are not sent, and word times are in the file', async (t) => {
    const names = ['Hashlama117_0009', 'Lod_0065'];
    if (!haveAssets(t, ...names.flatMap((n) => [assetPath('audio', 'he', `${n}.wav`), assetPath('audio', 'he', `${n}.txt`)]))) return;
    const [a, b] = await Promise.all(names.map(async (n) => (await decodeAudioFile(assetPath('audio', 'he', `${n}.wav`))).pcm));
    const reference = names.map((n) => fs.readFileSync(assetPath('audio', 'he', `${n}.txt`), 'utf8')).join(' ');
    // 4 s, clip, 5 s, clip, 3 s; quiet noise under all of it, as a room has.
    const parts = [silence(4), a, silence(5), b, silence(3)];
    const pcm = concatAudio(...parts);
    const room = whiteNoise(pcm.length / 16_000, 0.002, 7);
    for (let i = 0; i < pcm.length; i++) pcm[i] += room[i];
    const aStart = 4;
    const bStart = 4 + a.length / 16_000 + 5;

    const result = await transcribeOffline(pcm, { vad, transcriber: pool }, { language: 'he', beamSize: 5 });
    const wer = wordErrorRate(reference, result.text).wer;
    t.diagnostic(`WER ${wer.toFixed(3)}, ${result.speechSeconds.toFixed(2)} of ${result.duration.toFixed(2)} s sent: ${result.text}`);
    assert.equal(result.duration, pcm.length / 16_000);
    assert.ok(result.speechSeconds < result.duration - 6, `${result.speechSeconds} s sent`);
    assert.ok(wer <= 0.3, `WER ${wer}`);
    const words = result.segments.flatMap((s) => s.words);
    const slack = DEFAULT_SPAN_OPTIONS.padMs / 1000 + 0.1;
    const inA = words.filter((w) => w.start >= aStart - slack && w.end <= aStart + a.length / 16_000 + slack);
    const inB = words.filter((w) => w.start >= bStart - slack && w.end <= bStart + b.length / 16_000 + slack);
    assert.ok(inA.length >= 3 && inB.length >= 3, `words at ${words.map((w) => `${w.word}@${w.start}`).join(' ')}`);
    assert.equal(inA.length + inB.length, words.length, `every word lies where its speech is in the file: ${words.map((w) => `${w.word}@${w.start}-${w.end}`).join(" ")}`);
    for (const s of result.segments) assert.ok(s.start <= s.end && s.end <= result.duration);
  });

  test('property: generated files of odd shapes (rates, channels, depths, lengths) give a transcript of the speech', async (t) => {
    const clip = assetPath('audio', 'he', 'Hashlama117_0009.wav');
    if (!haveAssets(t, clip)) return;
    const speech = (await decodeAudioFile(clip)).pcm;
    const shape = fc.record({
      rate: fc.constantFrom(8000, 22_050, 44_100, 48_000, 37_813),
      channels: fc.integer({ min: 1, max: 3 }),
      depth: fc.constantFrom('s16', 's24', 'f32'),
      // Lengths that are not a multiple of 8 or 512 at 16 kHz, and silence of any length around the speech.
      trim: fc.integer({ min: 0, max: 511 }),
      lead: fc.double({ min: 0, max: 3.5, noNaN: true }),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        const mono = concatAudio(silence(s.lead), speech.subarray(0, speech.length - s.trim));
        const file = path.join(dir, `shape-${n++}.wav`);
        fs.writeFileSync(file, encodeAs(mono, s.rate, s.channels, s.depth));
        // Every shape here is valid audio holding speech: an error of any code fails the property.
        const result = await decodeAudioFile(file)
          .then((audio) => transcribeOffline(audio.pcm, { vad, transcriber: pool }, { language: 'he', beamSize: 1 }))
          .catch((err: unknown) => assert.fail(`${err instanceof KolError ? err.code : 'not a KolError'} for ${JSON.stringify(s)}: ${String(err)}`));
        t.diagnostic(`${JSON.stringify(s)}: ${result.text}`);
        assert.ok(/[\u05D0-\u05EA]{2}/.test(result.text), `no Hebrew words for ${JSON.stringify(s)}: "${result.text}"`);
      }),
      { numRuns: 4 },
    );
  });
});

/** 16 kHz mono → a WAV at `rate` (linear interpolation: good enough for speech), the same in every channel. */
function encodeAs(mono: Float32Array, rate: number, channels: number, depth: 's16' | 's24' | 'f32'): Buffer {
  const frames = Math.round((mono.length * rate) / 16_000);
  const size = depth === 's16' ? 2 : depth === 's24' ? 3 : 4;
  const data = Buffer.alloc(frames * channels * size);
  for (let i = 0; i < frames; i++) {
    const x = (i * 16_000) / rate;
    const k = Math.min(Math.floor(x), mono.length - 1);
    const v = mono[k] + (mono[Math.min(k + 1, mono.length - 1)] - mono[k]) * (x - k);
    for (let c = 0; c < channels; c++) {
      const at = (i * channels + c) * size;
      if (depth === 's16') data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, v)) * 32767), at);
      else if (depth === 's24') data.writeIntLE(Math.round(Math.max(-1, Math.min(1, v)) * 8388607), at, 3);
      else data.writeFloatLE(v, at);
    }
  }
  return wavBytes({ format: depth === 'f32' ? 3 : 1, channels, rate, bits: size * 8, data });
}
