import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { assetPath, clips } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { decodeAudioFile } from '../audio/wav.js';
import { FRAME_SAMPLES, FrameChunker } from './frames.js';
import { SileroVad, defaultSileroModelPath, type VadStream } from './silero.js';

/** The Hebrew clips' folder: named to haveAssets so that an absent folder skips rather than tests nothing. */
const HEBREW = assetPath('audio', 'he');

function framesOf(pcm: Float32Array): Float32Array[] {
  return new FrameChunker().push(pcm);
}

async function probabilities(stream: VadStream, frames: Float32Array[]): Promise<number[]> {
  const out: number[] = [];
  for (const frame of frames) out.push(await stream.process(frame));
  return out;
}

function maxDifference(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

function whiteNoise(seconds: number, amplitude: number): Float32Array {
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: 16_000 * seconds }, () => (next() * 2 - 1) * amplitude);
}

describe('SileroVad', () => {
  let batched: SileroVad;
  let unbatched: SileroVad;
  before(async () => {
    batched = await SileroVad.load();
    unbatched = await SileroVad.load(undefined, { batching: false });
  });
  after(async () => {
    await batched.close();
    await unbatched.close();
  });

  test('the pinned model file has the Silero v5 signature this wrapper feeds', async () => {
    const session = await ort.InferenceSession.create(defaultSileroModelPath());
    assert.deepEqual(session.inputNames, ['input', 'state', 'sr']);
    assert.deepEqual(session.outputNames, ['output', 'stateN']);
    await session.release();
  });

  test('matches the official wrapper: each frame is preceded by the last 64 samples of the one before', async (t) => {
    const file = assetPath('audio', 'he', 'Lod_0053.wav');
    if (!haveAssets(t, file)) return;
    const frames = framesOf((await decodeAudioFile(file)).pcm);
    // A literal transcription of OnnxWrapper.__call__ (snakers4/silero-vad utils_vad.py), batch 1.
    const session = await ort.InferenceSession.create(defaultSileroModelPath());
    const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
    let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    let context = new Float32Array(64);
    const reference: number[] = [];
    for (const frame of frames) {
      const x = new Float32Array(64 + FRAME_SAMPLES);
      x.set(context);
      x.set(frame, 64);
      const out = await session.run({ input: new ort.Tensor('float32', x, [1, x.length]), state, sr });
      state = out.stateN;
      context = x.slice(-64);
      reference.push((out.output.data as Float32Array)[0]);
    }
    await session.release();
    const ours = await probabilities(batched.createStream(), frames);
    assert.ok(maxDifference(ours, reference) < 1e-5);
  });

  test('real Hebrew speech scores above 0.5 over most frames', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, HEBREW, ...set.map((c) => c.wav))) return;
    assert.ok(set.length > 0, 'no Hebrew clips in the shared assets');
    let speech = 0;
    let total = 0;
    for (const clip of set) {
      const p = await probabilities(batched.createStream(), framesOf((await decodeAudioFile(clip.wav)).pcm));
      const share = p.filter((v) => v > 0.5).length / p.length;
      // The clips have some leading and trailing silence, and pauses.
      assert.ok(share > 0.6, `${clip.name}: only ${(share * 100).toFixed(0)}% of frames above 0.5`);
      speech += p.filter((v) => v > 0.5).length;
      total += p.length;
    }
    assert.ok(speech / total > 0.75, `all clips: ${((speech / total) * 100).toFixed(0)}% of frames above 0.5`);
  });

  test('30 s of digital silence and of white noise score below 0.5 nearly everywhere', async () => {
    for (const [name, pcm] of [
      ['silence', new Float32Array(16_000 * 30)],
      ['white noise at 0.1', whiteNoise(30, 0.1)],
      ['white noise at 0.5', whiteNoise(30, 0.5)],
    ] as const) {
      const p = await probabilities(batched.createStream(), framesOf(pcm));
      const high = p.filter((v) => v >= 0.5).length;
      assert.ok(high <= p.length * 0.01, `${name}: ${high} of ${p.length} frames at or above 0.5`);
    }
  });

  test('batched and unbatched runs give the same probabilities for streams running at once', async (t) => {
    const set = clips('he').slice(0, 4);
    if (!haveAssets(t, HEBREW, ...set.map((c) => c.wav))) return;
    assert.equal(set.length, 4, 'the shared set has at least 4 Hebrew clips');
    const inputs = await Promise.all(set.map(async (c) => framesOf((await decodeAudioFile(c.wav)).pcm)));
    const runsBefore = batched.stats();
    const together = await Promise.all(inputs.map((frames) => probabilities(batched.createStream(), frames)));
    const runsAfter = batched.stats();
    const oneByOne = await Promise.all(inputs.map((frames) => probabilities(unbatched.createStream(), frames)));

    for (let i = 0; i < inputs.length; i++) {
      const diff = maxDifference(together[i], oneByOne[i]);
      assert.ok(diff < 1e-4, `${set[i].name}: batched and unbatched differ by ${diff}`);
    }
    const frames = inputs.reduce((n, f) => n + f.length, 0);
    const runs = runsAfter.runs - runsBefore.runs;
    assert.equal(runsAfter.frames - runsBefore.frames, frames);
    // Four streams in step share runs: one run per step of the longest clip.
    assert.equal(runs, Math.max(...inputs.map((f) => f.length)), `${runs} runs for ${frames} frames`);
  });

  test('a queue longer than maxBatch is split into several runs with the same results', async (t) => {
    const set = clips('he').slice(0, 5);
    if (!haveAssets(t, HEBREW, ...set.map((c) => c.wav))) return;
    assert.equal(set.length, 5, 'the shared set has at least 5 Hebrew clips');
    const inputs = await Promise.all(set.map(async (c) => framesOf((await decodeAudioFile(c.wav)).pcm).slice(0, 40)));
    const small = await SileroVad.load(undefined, { maxBatch: 2 });
    const split = await Promise.all(inputs.map((frames) => probabilities(small.createStream(), frames)));
    const { runs } = small.stats();
    await small.close();
    const whole = await Promise.all(inputs.map((frames) => probabilities(batched.createStream(), frames)));
    split.forEach((p, i) => assert.ok(maxDifference(p, whole[i]) < 1e-4));
    const frames = 5 * 40;
    assert.ok(runs >= frames / 2, `${runs} runs for ${frames} frames: some run took more than 2`);
    assert.ok(runs < frames, 'frames were still batched');
  });

  test('state is per stream: interleaving two clips gives what each gives alone', async (t) => {
    const [a, b] = [assetPath('audio', 'he', 'Lod_0053.wav'), assetPath('audio', 'he', 'Meat_0089.wav')];
    if (!haveAssets(t, a, b)) return;
    const framesA = framesOf((await decodeAudioFile(a)).pcm);
    const framesB = framesOf((await decodeAudioFile(b)).pcm);
    const aloneA = await probabilities(batched.createStream(), framesA);
    const aloneB = await probabilities(batched.createStream(), framesB);
    const [mixedA, mixedB] = await Promise.all([probabilities(batched.createStream(), framesA), probabilities(batched.createStream(), framesB)]);
    assert.ok(maxDifference(mixedA, aloneA) < 1e-6);
    assert.ok(maxDifference(mixedB, aloneB) < 1e-6);

    // And the state really is carried: B right after A on one stream starts out differently.
    const continued = batched.createStream();
    await probabilities(continued, framesA);
    const afterA = await probabilities(continued, framesB.slice(0, 10));
    assert.ok(maxDifference(afterA, aloneB.slice(0, 10)) > 1e-3, 'a stream that carried no state would match a fresh one');
  });

  test('a stream takes one 512-sample frame at a time', async () => {
    const stream = batched.createStream();
    await assert.rejects(stream.process(new Float32Array(FRAME_SAMPLES - 1)), RangeError);
    const first = stream.process(new Float32Array(FRAME_SAMPLES));
    await assert.rejects(stream.process(new Float32Array(FRAME_SAMPLES)), /in flight/);
    assert.equal(typeof (await first), 'number');
    assert.equal(typeof (await stream.process(new Float32Array(FRAME_SAMPLES))), 'number', 'usable again once the frame is done');
  });

  test('cost: CPU per second of audio, 1 stream and 100 streams (printed)', async (t) => {
    const file = assetPath('audio', 'he', 'long', 'asimov.wav');
    if (!haveAssets(t, file)) return;
    const frames = framesOf((await decodeAudioFile(file)).pcm);
    const measure = async (vad: SileroVad, streams: number, steps: number) => {
      const all = Array.from({ length: streams }, () => vad.createStream());
      const start = process.cpuUsage();
      for (let s = 0; s < steps; s++) await Promise.all(all.map((stream) => stream.process(frames[s])));
      const used = process.cpuUsage(start);
      const audioSeconds = (streams * steps * FRAME_SAMPLES) / 16_000;
      return (used.user + used.system) / 1000 / audioSeconds;
    };
    await measure(batched, 1, 50); // warm-up
    const single = await measure(batched, 1, 1000);
    const hundredBatched = await measure(batched, 100, 100);
    const hundredUnbatched = await measure(unbatched, 100, 100);
    assert.ok(single > 0 && hundredBatched > 0 && hundredUnbatched > 0);
    t.diagnostic(`Silero VAD CPU per second of audio: 1 stream ${single.toFixed(2)} ms; 100 streams batched ${hundredBatched.toFixed(2)} ms/stream; 100 streams unbatched ${hundredUnbatched.toFixed(2)} ms/stream`);
  });
});
