/**
 * Shared by the compatibility-dialect tests (server/dialects/*.test.ts): a shared clip as raw PCM, the
 * same clip through the native endpoint for the baseline, pacing, and WER.
 */
import fs from 'node:fs';
import libsamplerate from '@alexanderolsen/libsamplerate-js';
import { floatsToS16le, s16ToFloat } from '../../engine/audio/format.js';
import { streamAudio } from '../../clients/cli/stream-client.js';
import { wordErrorRate } from '../../engine/wer.js';
import type { RunningServer } from '../../server/app.js';
import type { ServerConfig } from '../../server/config.js';
import { sniffContainer } from '../../server/dialects/audio.js';
import { assetPath, REAL_MODEL } from '../../corpus/assets.js';
import { startTestServer } from './server.js';

/** 13 s of Hebrew speech in three segments, with a reference transcript. */
export const CLIP_WAV = assetPath('audio', 'he', 'Credit_Rating_0006.wav');
export const CLIP_TXT = assetPath('audio', 'he', 'Credit_Rating_0006.txt');

export interface ClipPcm {
  /** s16le mono at `sampleRate`. */
  pcm: Buffer;
  sampleRate: number;
  reference: string;
  seconds: number;
}

/**
 * The clip's own 16-bit samples (read from the WAV's data chunk, not decoded and re-quantized), with
 * `padSeconds` of silence appended, optionally resampled (sinc, best quality) to another rate.
 */
export async function loadClip(options: { padSeconds?: number; sampleRate?: number } = {}): Promise<ClipPcm> {
  const file = fs.readFileSync(CLIP_WAV);
  const sniffed = sniffContainer(file);
  if (sniffed.kind !== 'wav' || sniffed.encoding !== 'linear16' || sniffed.channels !== 1 || sniffed.sampleRate !== 16000) {
    throw new Error(`${CLIP_WAV}: expected a 16 kHz mono 16-bit WAV`);
  }
  const samples = file.subarray(sniffed.dataOffset);
  let pcm: Buffer = Buffer.concat([samples.subarray(0, samples.length - (samples.length % 2)), Buffer.alloc(Math.round((options.padSeconds ?? 0) * 16000) * 2)]);
  const rate = options.sampleRate ?? 16000;
  if (rate !== 16000) pcm = await resampleS16(pcm, 16000, rate);
  return { pcm, sampleRate: rate, reference: fs.readFileSync(CLIP_TXT, 'utf8').trim(), seconds: pcm.length / 2 / rate };
}

async function resampleS16(pcm: Buffer, from: number, to: number): Promise<Buffer> {
  const input = new Float32Array(pcm.length / 2);
  for (let i = 0; i < input.length; i++) input[i] = s16ToFloat(pcm.readInt16LE(i * 2));
  const converter = await libsamplerate.create(1, from, to, { converterType: libsamplerate.ConverterType.SRC_SINC_BEST_QUALITY });
  const output = converter.simple(input);
  converter.destroy();
  return Buffer.from(floatsToS16le(output));
}

/** The same audio through the native /v1/stream, at the same pace: the final text. */
export async function nativeText(serverUrl: string, clip: ClipPcm, options: { speed: number; headers?: Record<string, string> }): Promise<string> {
  const result = await streamAudio({
    url: `${serverUrl}/v1/stream?sample_rate=${clip.sampleRate}`,
    audio: clip.pcm,
    bytesPerSecond: clip.sampleRate * 2,
    speed: options.speed,
    headers: options.headers,
  });
  return result.finals
    .map((f) => f.text.trim())
    .filter(Boolean)
    .join(' ');
}

export function wer(reference: string, hypothesis: string): number {
  return wordErrorRate(reference, hypothesis).wer;
}

/** Sends `pcm` in `chunkMs` pieces at `speed` × real time (await between pieces). */
export async function paced(pcm: Uint8Array, bytesPerSecond: number, speed: number, send: (chunk: Uint8Array) => void, chunkMs = 100): Promise<void> {
  const chunkBytes = Math.round((bytesPerSecond * chunkMs) / 1000 / 2) * 2;
  const started = performance.now();
  for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
    const chunk = pcm.subarray(offset, offset + chunkBytes);
    send(chunk);
    const due = started + ((offset + chunk.length) / bytesPerSecond / speed) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Resolves when a predicate holds, polling; rejects after `timeoutMs` with `what`. */
export { waitUntil as until } from './production.js';

/**
 * A server whose finals are reproducible, for comparing a dialect's text with the native endpoint's.
 *
 * Measured on this clip: the same audio through /v1/stream twice on one server gives WERs from 0.10
 * to 0.40, because whisper-server's output for an identical request drifts with the worker's earlier
 * requests (partials, other finals), and because whether the previous final is ready in time to be the
 * next prompt depends on timing. With a fresh server per run, partials on a worker of their own, and
 * no previous-final prompt, five runs in a row gave the same text. Each side of a comparison gets one.
 */
export async function reproducibleServer(overrides: Partial<ServerConfig> = {}): Promise<RunningServer> {
  const server = await startTestServer({ workers: 1, partialModel: REAL_MODEL, partialWorkers: 1, ...overrides });
  server.runtime.tuning.promptWithPreviousFinal = false;
  return server;
}

/** Runs `fn` against a fresh reproducible server, then closes it. */
export async function withReproducibleServer<T>(overrides: Partial<ServerConfig>, fn: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await reproducibleServer(overrides);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}
