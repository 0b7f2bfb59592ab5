/**
 * CPU cost of the pipeline before the workers — PCM decode, downmix, resample, Silero VAD, segmenter —
 * per second of real-time audio, for one stream and for many streams sharing the batched VAD.
 * No whisper here: the scheduler sits on NEVER_IDLE_POOL (bench-only), which never takes a job.
 *   node --import tsx bench/pipeline-cost.ts [--streams 1,50] [--rate 48000] [--channels 2]
 */
import os from 'node:os';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { Scheduler, type SchedulablePool } from '../engine/scheduler.js';
import { SpeechStream } from '../engine/stream.js';
import { SileroVad } from '../engine/vad/silero.js';
import { assetPath } from '../corpus/assets.js';
import { floatToS16, SAMPLE_RATE } from '../engine/audio/format.js';

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

/** Bench-only: a pool with no free worker, so the pipeline runs but nothing is transcribed. */
const NEVER_IDLE_POOL: SchedulablePool = {
  idleCount: () => 0,
  on: () => undefined,
  transcribe: () => Promise.reject(new Error('bench: transcription is off')),
};

const rate = Number(arg('rate', '48000'));
const channels = Number(arg('channels', '2'));
const counts = arg('streams', '1,50').split(',').map(Number);

// The 125 s recording, upsampled to the client rate and duplicated into every channel, as a browser
// would send it: the resampler and downmix then do real work.
const { pcm } = await decodeAudioFile(assetPath('audio', 'he', 'long', 'asimov.wav'));
const frames = Math.floor((pcm.length * rate) / SAMPLE_RATE);
const client = new Int16Array(frames * channels);
for (let i = 0; i < frames; i++) {
  const v = floatToS16(pcm[Math.min(pcm.length - 1, Math.floor((i * SAMPLE_RATE) / rate))]);
  for (let c = 0; c < channels; c++) client[i * channels + c] = v;
}
const bytes = new Uint8Array(client.buffer);
const audioSeconds = frames / rate;
const chunk = Math.round(rate * 0.1) * channels * 2; // 100 ms frames

const vad = await SileroVad.load();
const rows: string[] = [];
for (const n of counts) {
  const scheduler = new Scheduler(NEVER_IDLE_POOL);
  const streams = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      SpeechStream.create(
        { sampleRate: rate, encoding: 'pcm_s16le', channels, language: 'he', partials: false, endpointMs: 500, prompt: '' },
        { sessionId: `s${i}`, vad, scheduler },
      ),
    ),
  );
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let at = 0; at < bytes.length; at += chunk) {
    for (const stream of streams) stream.pushPcm(bytes.subarray(at, at + chunk));
    // Let the VAD batch run between chunks, as it would between network reads.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(streams.map((s) => Promise.race([s.end(), new Promise((r) => setTimeout(r, 2000))])));
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const perStream = cpuSeconds / n / audioSeconds;
  rows.push(`| ${n} | ${rate} Hz × ${channels} | ${(audioSeconds * n).toFixed(0)} | ${cpuSeconds.toFixed(2)} | ${((performance.now() - started) / 1000).toFixed(1)} | **${(perStream * 100).toFixed(2)} %** |`);
  for (const s of streams) s.close();
  scheduler.close();
}
await vad.close();

console.log(`\nPipeline before the workers (decode, downmix, resample, VAD, segmenter), ${os.cpus().length} cores (${os.cpus()[0].model}), load ${os.loadavg()[0].toFixed(2)}\n`);
console.log('| streams | client audio | audio (s) | CPU (s) | wall (s) | CPU per real-time stream (% of one core) |');
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
