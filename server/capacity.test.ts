/**
 * Admission by capacity. The formula and the calibration's requests as fast unit tests; the measurement
 * on real whisper-server workers; and admission itself against a real server over real sockets: with
 * capacity 1 a second stream gets 503 server_at_capacity on every streaming endpoint, the first stream
 * gets its final as usual, a caption viewer is still let in, and a new stream is admitted once the
 * first has closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { FRAME_SAMPLES } from '../engine/vad/frames.js';
import { DEGRADED_DECODING } from '../engine/scheduler.js';
import { SileroVad } from '../engine/vad/silero.js';
import { wordErrorRate } from '../engine/wer.js';
import type { TranscribeOptions, Transcriber, Transcript } from '../engine/whisper/types.js';
import { REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { paced } from '../test/helpers/compat.js';
import { cleanEnv, clipS16, heClip, KolProcess, RecordingClient, tryUpgrade, type Refusal } from '../test/helpers/production.js';
import { startTestServer } from '../test/helpers/server.js';
import { startServer, type RunningServer } from './app.js';
import {
  CALIBRATION_SECONDS,
  calibrationAudio,
  capacityFor,
  measureCapacity,
  PARTIAL_OVERHEAD,
  poolParallelism,
  RETRY_AFTER_SECONDS,
  SPEECH_SECONDS_PER_FINAL,
  UTILISATION_TARGET,
} from './capacity.js';
import { DEEPGRAM_PATH, OPENAI_REALTIME_PATH, VOSK_PATHS } from './dialects/index.js';
import { DEFAULT_CONFIG } from './config.js';

/** Worker seconds a speaker asks for per second of speech, at a given cost per final. */
const demand = (finalCostSeconds: number) => (finalCostSeconds * (1 + PARTIAL_OVERHEAD)) / SPEECH_SECONDS_PER_FINAL;

test('capacityFor: worked examples', () => {
  // One CPU pool, a final of 4 s of speech costs 1 s: each speaker needs 1.3 s of worker time per 4 s,
  // 0.8 of the pool is 3.2 s per 4 s: 2 speakers (2.46 rounded down).
  assert.equal(capacityFor({ parallelism: 1, finalCostSeconds: 1 }), 2);
  assert.equal(capacityFor({ parallelism: 1, finalCostSeconds: 0.4 }), 6);
  assert.equal(capacityFor({ parallelism: 4, finalCostSeconds: 0.25 }), 39);
  // Slower than real time: nobody is sustained.
  assert.equal(capacityFor({ parallelism: 1, finalCostSeconds: 5 }), 0);
  assert.throws(() => capacityFor({ parallelism: 1, finalCostSeconds: 0 }), RangeError);
  assert.throws(() => capacityFor({ parallelism: 0, finalCostSeconds: 1 }), RangeError);
});

test('capacityFor: the admitted speakers fit in the utilisation target and one more would not', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.double({ min: 0.01, max: 20, noNaN: true }), (parallelism, cost) => {
      const n = capacityFor({ parallelism, finalCostSeconds: cost });
      const offered = UTILISATION_TARGET * parallelism;
      assert.ok(Number.isInteger(n) && n >= 0);
      assert.ok(n * demand(cost) <= offered * (1 + 1e-9), `${n} speakers at ${cost} s fit in ${offered}`);
      assert.ok((n + 1) * demand(cost) > offered * (1 - 1e-9), `${n + 1} speakers at ${cost} s would not`);
      // More hardware never admits fewer; dearer finals never admit more.
      assert.ok(capacityFor({ parallelism: parallelism + 1, finalCostSeconds: cost }) >= n);
      assert.ok(capacityFor({ parallelism, finalCostSeconds: cost * 1.5 }) <= n);
    }),
  );
});

test('poolParallelism: local CPU workers share the cores and count once; GPU and remote workers count each', () => {
  assert.equal(poolParallelism({ workers: 2, workerUrls: [] }, false), 1);
  assert.equal(poolParallelism({ workers: 8, workerUrls: [] }, false), 1);
  assert.equal(poolParallelism({ workers: 3, workerUrls: [] }, true), 3);
  assert.equal(poolParallelism({ workers: 2, workerUrls: ['http://a:8910', 'http://b:8910'] }, false), 3);
  assert.equal(poolParallelism({ workers: 0, workerUrls: ['http://a:8910', 'http://b:8910'] }, false), 2);
});

test('the calibration audio is the same every time, and the VAD hears speech in it with a breath in the middle', async () => {
  const pcm = calibrationAudio();
  assert.equal(pcm.length, CALIBRATION_SECONDS * 16_000);
  assert.deepEqual(calibrationAudio(), pcm, 'seeded: every start measures the same audio');
  assert.notDeepEqual(calibrationAudio(CALIBRATION_SECONDS, 2), pcm);
  const vad = await SileroVad.load();
  try {
    const stream = vad.createStream();
    const speech: boolean[] = [];
    for (let at = 0; at + FRAME_SAMPLES <= pcm.length; at += FRAME_SAMPLES) speech.push((await stream.process(pcm.slice(at, at + FRAME_SAMPLES))) > 0.5);
    const share = speech.filter(Boolean).length / speech.length;
    assert.ok(share > 0.6, `Silero VAD calls ${(share * 100).toFixed(0)} % of it speech`);
    const middle = Math.floor(speech.length / 2);
    assert.ok(speech.slice(middle - 3, middle + 3).includes(false), 'a pause in the middle, as a speaker breathes');
  } finally {
    await vad.close();
  }
});

test('measureCapacity: what it asks the pool for, and the cheaper cost sets the capacity', async () => {
  // A fake pool (policy only): the full window "costs" 60 ms, the degraded one 20 ms.
  const requests: TranscribeOptions[] = [];
  const pool: Transcriber = {
    async transcribe(pcm: Float32Array, options: TranscribeOptions = {}): Promise<Transcript> {
      requests.push(options);
      await new Promise((resolve) => setTimeout(resolve, options.audioCtx === 'auto' ? 20 : 60));
      return { text: '', language: 'he', duration: pcm.length / 16_000, segments: [], worker: 'fake', inferenceMs: 0 };
    },
  };
  const config = { ...DEFAULT_CONFIG, language: 'he', finalBeamSize: 5, finalAudioCtx: 'full' as const };
  const m = await measureCapacity(pool, config, false);
  assert.deepEqual(
    requests.map((r) => [r.beamSize, r.audioCtx, r.language, r.temperatureFallback]),
    [
      [DEGRADED_DECODING.beamSize, 'auto', 'he', false],
      [5, undefined, 'he', false],
      [DEGRADED_DECODING.beamSize, 'auto', 'he', false],
      [DEGRADED_DECODING.beamSize, 'auto', 'he', false],
    ],
    'a warm-up, then the server\'s own settings once and the degraded ones twice',
  );
  assert.ok(m.degradedCostSeconds < m.fullCostSeconds);
  assert.equal(m.parallelism, 1);
  assert.equal(m.streams, Math.max(1, capacityFor({ parallelism: 1, finalCostSeconds: m.degradedCostSeconds })));
  assert.equal(m.fullAccuracyStreams, capacityFor({ parallelism: 1, finalCostSeconds: m.fullCostSeconds }));
});

async function metric(server: RunningServer, series: string): Promise<number | null> {
  const line = (await server.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

test('auto capacity is measured on the real workers at start, logged, and exposed in /metrics', { timeout: 300_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL)) return;
  const records: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  // The product's defaults (two workers sharing the cores, each with all of them), capacity 0 = auto.
  const server = await startServer({ ...DEFAULT_CONFIG, port: 0, model: REAL_MODEL, gpu: 'off', capacity: 0 }, logger);
  try {
    const measured = records.find((r) => r.msg === 'admission capacity: measured');
    assert.ok(measured, `a log line with the measurement; got ${JSON.stringify(records.map((r) => r.msg))}`);
    t.diagnostic(`measured: ${JSON.stringify(measured)}`);
    const fullCost = Number(measured.fullCostSeconds);
    const degradedCost = Number(measured.degradedCostSeconds);
    assert.ok(fullCost > 0 && degradedCost > 0);
    assert.ok(degradedCost < fullCost, `a window sized to 4 s of audio (${degradedCost} s) is cheaper than the full 30 s one (${fullCost} s)`);
    assert.equal(measured.parallelism, 1, 'two local CPU workers count once');
    assert.equal(measured.capacity, Math.max(1, capacityFor({ parallelism: 1, finalCostSeconds: degradedCost })));
    assert.equal(server.gateway.capacity, measured.capacity);
    assert.equal(await metric(server, 'kol_capacity_streams'), measured.capacity);
    assert.ok(records.findIndex((r) => r.msg === 'admission capacity: measured') < records.findIndex((r) => r.msg === 'kol is listening'), 'measured before the server listens');
  } finally {
    await server.close();
  }
});

function isRefusal(result: Awaited<ReturnType<typeof tryUpgrade>>): result is Refusal {
  return 'status' in result;
}

test('capacity 1: a second stream is refused before the upgrade with 503 server_at_capacity; the first gets its final; a new one is let in once it closes', { timeout: 180_000 }, async (t) => {
  const clip = heClip('Hashlama117_0009');
  if (!haveAssets(t, REAL_MODEL, clip.wav)) return;
  const server = await startTestServer({ capacity: 1, workers: 1 });
  try {
    const url = `${server.url}/v1/stream`;
    const first = await RecordingClient.open(url);
    await first.waitFor((m) => m.type === 'ready');

    // Every streaming endpoint is refused, before any WebSocket exists, with the stable code and Retry-After.
    const endpoints = ['/v1/stream', DEEPGRAM_PATH, OPENAI_REALTIME_PATH, ...VOSK_PATHS];
    for (const path of endpoints) {
      const result = await tryUpgrade(`${server.url}${path}`);
      if (!isRefusal(result)) {
        result.ws.terminate();
        assert.fail(`${path} was admitted beyond capacity`);
      }
      assert.equal(result.status, 503, path);
      assert.equal(result.body.code, 'server_at_capacity', path);
      assert.match(result.body.message ?? '', /capacity of 1 real-time stream/, path);
      assert.equal(result.headers['retry-after'], String(RETRY_AFTER_SECONDS), path);
    }
    assert.equal(await metric(server, 'kol_errors_total{code="server_at_capacity"}'), endpoints.length, 'each refusal counted once');
    assert.equal(await metric(server, 'kol_capacity_streams'), 1);

    // `kol stream` says what happened and when to try again.
    const cli = new KolProcess(['stream', clip.wav, '--url', server.url], cleanEnv({}));
    const exit = await cli.exited;
    assert.equal(exit.code, 1);
    const said = cli.lines.join('\n');
    assert.match(said, /is at capacity/);
    assert.match(said, new RegExp(`Try again in ${RETRY_AFTER_SECONDS} s`));
    assert.match(said, /\[server_at_capacity\]/);

    // A caption viewer is not a speaker: it is let in.
    const viewer = await tryUpgrade(`${server.url}/v1/captions?room=capacity-test`);
    assert.ok(!isRefusal(viewer), `a viewer was refused: ${isRefusal(viewer) ? JSON.stringify(viewer.body) : ''}`);
    viewer.ws.close();

    // The first stream is unaffected: its clip at real time, its final as kol transcribe hears the clip.
    await paced(await clipS16(clip), 32_000, 1, (chunk) => first.ws.send(chunk));
    first.ws.send(JSON.stringify({ type: 'eof' }));
    const closed = await first.closed;
    assert.equal(closed.code, 1000);
    // Its place is free again, at once.
    const again = await RecordingClient.open(url);
    await again.waitFor((m) => m.type === 'ready');
    again.ws.send(JSON.stringify({ type: 'eof' }));
    assert.equal((await again.closed).code, 1000);
    assert.deepEqual(first.errors(), []);
    const streamed = first.messages.flatMap((m) => (m.type === 'final' ? [m.text] : [])).join(' ');
    const offline = await server.runtime.finalPool.transcribe((await decodeAudioFile(clip.wav)).pcm, { language: 'he', beamSize: 5 });
    const streamedWer = wordErrorRate(clip.reference!, streamed).wer;
    const offlineWer = wordErrorRate(clip.reference!, offline.text).wer;
    t.diagnostic(`streamed WER ${streamedWer.toFixed(3)} "${streamed}"; offline ${offlineWer.toFixed(3)} "${offline.text}"`);
    assert.ok(streamed.trim().length > 0, 'the first stream got its final');
    assert.ok(streamedWer <= offlineWer + 0.15, `streamed WER ${streamedWer} vs offline ${offlineWer}`);

    assert.equal(await metric(server, 'kol_errors_total{code="server_at_capacity"}'), endpoints.length + 1, 'no refusal since kol stream\'s');
  } finally {
    await server.close();
  }
});
