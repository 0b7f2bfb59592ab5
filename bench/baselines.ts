/**
 * The two baselines kol is measured against, on the same audio and the same model file:
 * - offline: `kol transcribe` on the whole clips — the accuracy and compute floor;
 * - naive: what the seed started from — fixed consecutive chunks (5 s) posted one after another to
 *   whisper-server as they fill, at real-time pace; no VAD, no partials.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import wavefile from 'wavefile';
import { SAMPLE_RATE, s16ToFloats } from '../engine/audio/format.js';
import { corpusWer, type TranscriptPair } from '../engine/wer.js';
import { createLocalWorkers } from '../engine/whisper/local-workers.js';
import { WorkerPool } from '../engine/whisper/pool.js';
import { REPO_ROOT } from '../engine/paths.js';
import { benchEngine } from './lib/engine.js';
import type { Clip } from '../corpus/assets.js';
import { sampleUsage } from './lib/proc.js';
import { dist, EMPTY, loadNow, usageFields, werOf, type LatencyResult } from './lib/result.js';
import type { BenchStream } from '../corpus/streams.js';
import type { Logger } from '../engine/log.js';

export interface OfflineResult {
  clips: number;
  audioSeconds: number;
  wer: number;
  /** Each file's reference and transcript, in the order given. */
  perClip: TranscriptPair[];
  /** Inference time per clip (ms): the floor under any final of that clip. */
  inference: LatencyResult['eosToFinal'];
  /** Inference seconds per audio second (real-time factor of the compute alone). */
  rtf: number;
  cpuSecondsPerAudioSecond: number;
  wallS: number;
  command: string;
  loadBefore: string;
  loadAfter: string;
  foreignCores: number | null;
}

/** Runs the real `kol transcribe --json` on the clips, one worker, beam 5 (its default). */
export async function runOffline(clips: Clip[], options: { model: string; threads: number; gpu?: boolean }): Promise<OfflineResult> {
  const args = [path.join(REPO_ROOT, 'bin', 'kol.js'), 'transcribe', '--json', '-m', options.model, '-t', String(options.threads), ...clips.map((c) => c.wav)];
  const loadBefore = loadNow();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, KOL_LOG_LEVEL: 'warn' } });
  const usage = sampleUsage(child.pid ?? 0);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const window = usage.stop();
  if (code !== 0) throw new Error(`kol transcribe exited with ${code}`);
  const rows = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { file: string; text: string; duration: number; inferenceMs: number });
  const byFile = new Map(rows.map((r) => [r.file, r]));
  const pairs = clips.map((c) => ({ reference: c.reference ?? '', hypothesis: byFile.get(c.wav)?.text ?? '' }));
  const audioSeconds = rows.reduce((sum, r) => sum + r.duration, 0);
  return {
    clips: clips.length,
    audioSeconds,
    wer: corpusWer(pairs).wer,
    perClip: pairs,
    inference: dist(rows.map((r) => r.inferenceMs)),
    rtf: rows.reduce((sum, r) => sum + r.inferenceMs, 0) / 1000 / audioSeconds,
    cpuSecondsPerAudioSecond: (window.rootCpuS + window.childCpuS) / audioSeconds,
    wallS: window.wallS,
    command: `kol transcribe --json -m ${path.basename(options.model)} -t ${options.threads} <${clips.length} clips>`,
    loadBefore,
    loadAfter: loadNow(),
    foreignCores: window.foreignCores,
  };
}

/**
 * `kol transcribe` on joined bench streams, each as one whole file: the offline WER of exactly the
 * audio that was streamed (the same 16-bit samples, written to temporary WAVs).
 */
export async function runOfflineJoined(streams: BenchStream[], label: string, options: { model: string; threads: number; gpu?: boolean }): Promise<OfflineResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-bench-joined-'));
  try {
    const files = streams.map((stream, i) => {
      const wav = new wavefile.WaveFile();
      wav.fromScratch(1, SAMPLE_RATE, '16', stream.pcm16);
      const file = path.join(dir, `${label}-${i}.wav`);
      fs.writeFileSync(file, wav.toBuffer());
      return { name: `${label}-${i}`, wav: file, reference: stream.utterances.map((u) => u.reference).join(' ') };
    });
    return await runOffline(files, options);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Offline WER over the first `n` files of an offline run (all of them where it has fewer). */
export function offlineWerOf(offline: OfflineResult, n: number): { wer: number; files: number } {
  const pairs = offline.perClip.slice(0, n);
  return { wer: corpusWer(pairs).wer, files: pairs.length };
}

export interface NaiveOptions {
  model: string;
  workers: number;
  threads?: number;
  chunkS?: number;
  beamSize?: number;
  gpu?: boolean;
  staggerMs?: number;
  logger: Logger;
}

/** N naive clients at once, each posting its fixed chunks one after another to a shared pool of whisper-servers. */
export async function runNaive(streams: BenchStream[], options: NaiveOptions): Promise<LatencyResult> {
  const chunkS = options.chunkS ?? 5;
  const engine = await benchEngine(options.gpu ?? false, options.logger);
  const pool = new WorkerPool(createLocalWorkers({ binary: engine.binary, model: options.model, count: options.workers, threads: options.threads, useGpu: options.gpu ?? false, logger: options.logger }), { logger: options.logger });
  await pool.start();
  try {
    // Warm-up on real speech (silence makes whisper hallucinate and retry): a fresh worker's first requests are slower.
    const warm = s16ToFloats(streams[0].pcm16.subarray(0, Math.round(streams[0].utterances[0].end * SAMPLE_RATE)));
    await Promise.all(Array.from({ length: options.workers }, () => pool.transcribe(warm, { language: 'he', beamSize: options.beamSize ?? 5 }).catch(() => undefined)));
    const loadBefore = loadNow();
    let busyMs = 0;
    const waits: number[] = [];
    const onJob = (j: { inferenceMs: number; queueWaitMs: number }) => {
      busyMs += j.inferenceMs;
      waits.push(j.queueWaitMs);
    };
    pool.on('job', onJob);
    const usage = sampleUsage(process.pid, 1000, []);
    const runs = await Promise.all(
      streams.map(async (stream, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * (options.staggerMs ?? 250)));
        return naiveStream(pool, stream, chunkS, options.beamSize ?? 5);
      }),
    );
    const window = usage.stop();
    pool.off('job', onJob);
    const audioSeconds = streams.reduce((sum, st) => sum + st.seconds, 0);
    const eos = runs.flatMap((r) => r.eosToFinalMs);
    const fields = usageFields(window, audioSeconds);
    return {
      system: 'naive',
      variant: `${chunkS} s chunks, beam ${options.beamSize ?? 5}`,
      concurrency: streams.length,
      utterances: streams.reduce((sum, st) => sum + st.utterances.length, 0),
      unfinalized: 0,
      eosToFinal: dist(eos),
      eosToFinalMs: eos,
      segEndToFinal: dist(runs.flatMap((r) => r.chunkEndToTextMs)),
      firstText: dist(runs.flatMap((r) => r.firstTextMs)),
      firstPartial: EMPTY,
      partialGapS: EMPTY,
      partials: 0,
      wer: werOf(streams, runs.map((r) => r.text)),
      audioSeconds,
      ...fields,
      // The driver runs in the bench process itself: count only the workers.
      serverCores: 0,
      cpuSecondsPerAudioSecond: window.childCpuS / audioSeconds,
      serverRssMB: 0,
      busyFraction: busyMs / (window.wallS * 1000 * options.workers),
      finalQueueWait: dist(waits),
      partialsDropped: 0,
      loadBefore,
      loadAfter: loadNow(),
      gpu: null,
      notes: [],
    };
  } finally {
    await pool.close();
  }
}

async function naiveStream(pool: WorkerPool, stream: BenchStream, chunkS: number, beamSize: number) {
  const pcm = s16ToFloats(stream.pcm16);
  const t0 = performance.now();
  const chunks = Math.ceil(stream.seconds / chunkS);
  const doneAt: number[] = [];
  const texts: string[] = [];
  for (let k = 0; k < chunks; k++) {
    const endS = Math.min((k + 1) * chunkS, stream.seconds);
    // The chunk is complete once real time has passed its end; and the previous one must be back.
    const wait = t0 + endS * 1000 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const slice = pcm.subarray(Math.round(k * chunkS * SAMPLE_RATE), Math.round(endS * SAMPLE_RATE));
    if (slice.length >= SAMPLE_RATE / 10) {
      const t = await pool.transcribe(slice, { language: 'he', beamSize });
      texts.push(t.text);
    }
    doneAt.push(performance.now());
  }
  const at = (s: number) => t0 + s * 1000;
  const chunkOf = (s: number) => Math.min(chunks - 1, Math.floor(s / chunkS - 1e-9));
  return {
    text: texts.join(' '),
    eosToFinalMs: stream.utterances.map((u) => doneAt[chunkOf(u.end)] - at(u.end)),
    firstTextMs: stream.utterances.map((u) => doneAt[chunkOf(u.start + 0.3)] - at(u.start)),
    chunkEndToTextMs: doneAt.map((d, k) => d - at(Math.min((k + 1) * chunkS, stream.seconds))),
  };
}
