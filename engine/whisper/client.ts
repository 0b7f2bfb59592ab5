/**
 * The HTTP conversation with one whisper-server: `GET /health` and multipart `POST /inference`.
 * Used for local worker processes and remote ones alike; knows nothing about processes.
 */
import { KolError } from '../errors.js';
import { encodeWav16k } from '../audio/wav.js';
import { SAMPLE_RATE } from '../audio/format.js';
import type { TranscribeOptions, Transcript, TranscriptSegment, TranscriptWord } from './types.js';

/** whisper-server's encoder runs 50 frames per second of audio; 1500 frames is the full 30 s window. */
export const ENCODER_FRAMES_PER_SECOND = 50;
export const FULL_AUDIO_CTX = 1500;

/**
 * An audio_ctx sized to the audio: never shorter than the audio (a shorter one truncates it and makes
 * whisper repeat itself), plus a one-second margin, rounded up to a multiple of 64 for the kernels.
 */
export function audioCtxFor(samples: number): number {
  const frames = Math.ceil((samples / SAMPLE_RATE) * ENCODER_FRAMES_PER_SECOND) + ENCODER_FRAMES_PER_SECOND;
  return Math.min(FULL_AUDIO_CTX, Math.ceil(frames / 64) * 64);
}

/** The encoder window (frames) a request for `samples` of audio decodes with, given TranscribeOptions.audioCtx. */
export function encoderFrames(samples: number, audioCtx: TranscribeOptions['audioCtx']): number {
  if (audioCtx === undefined) return FULL_AUDIO_CTX;
  return audioCtx === 'auto' ? audioCtxFor(samples) : Math.max(audioCtx, audioCtxFor(samples));
}

export async function checkHealth(baseUrl: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(new URL('/health', baseUrl), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** The form fields of an inference request; exported so a test can check what is sent. */
export function inferenceFields(samples: number, options: TranscribeOptions): Record<string, string> {
  const fields: Record<string, string> = {
    language: options.language ?? 'he',
    response_format: 'verbose_json',
    // verbose_json otherwise re-runs language detection on every request.
    no_language_probabilities: 'true',
    temperature: '0',
    temperature_inc: options.temperatureFallback === false ? '0' : '0.2',
    // whisper-server cuts segments at 60 characters; on a word boundary, not inside a word.
    split_on_word: 'true',
  };
  if (options.beamSize && options.beamSize > 1) fields.beam_size = String(options.beamSize);
  if (options.audioCtx !== undefined) fields.audio_ctx = String(encoderFrames(samples, options.audioCtx));
  if (options.prompt) fields.prompt = options.prompt;
  return fields;
}

/**
 * Sends one inference request. Rejects with worker_timeout, worker_crashed (connection broke),
 * worker_request_failed (a non-200 answer) or transcription_aborted.
 */
export async function requestInference(
  baseUrl: string,
  workerId: string,
  pcm: Float32Array,
  options: TranscribeOptions,
  signal?: AbortSignal,
): Promise<Transcript> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(encodeWav16k(pcm))], { type: 'audio/wav' }), 'audio.wav');
  for (const [name, value] of Object.entries(inferenceFields(pcm.length, options))) form.append(name, value);

  // AbortSignal.timeout takes only whole ms; a caller's limit may be computed from audio length.
  const signals = [signal, options.timeoutMs ? AbortSignal.timeout(Math.ceil(options.timeoutMs)) : undefined].filter((s): s is AbortSignal => s !== undefined);
  const started = performance.now();
  let res: Response;
  let body: string;
  try {
    // Aborting closes the connection, and whisper-server's abort callback stops the inference.
    res = await fetch(new URL('/inference', baseUrl), { method: 'POST', body: form, signal: signals.length ? AbortSignal.any(signals) : undefined });
    body = await res.text();
  } catch (err) {
    if (signal?.aborted) throw new KolError('transcription_aborted', undefined, { cause: err });
    if (err instanceof Error && err.name === 'TimeoutError') {
      throw new KolError('worker_timeout', `Worker ${workerId} did not answer within ${options.timeoutMs} ms.`, { cause: err });
    }
    throw new KolError('worker_crashed', `Worker ${workerId} dropped the connection during the request (${describe(err)}).`, { cause: err });
  }
  const inferenceMs = performance.now() - started;
  if (res.status !== 200) {
    throw new KolError('worker_request_failed', `Worker ${workerId} answered HTTP ${res.status}: ${body.slice(0, 200)}`);
  }
  return parseVerboseJson(body, workerId, inferenceMs, pcm.length / SAMPLE_RATE);
}

interface VerboseJson {
  language?: string;
  segments?: Array<{
    text?: string;
    start?: number;
    end?: number;
    no_speech_prob?: number;
    avg_logprob?: number;
    words?: Array<{ word?: string; start?: number; end?: number; probability?: number }>;
  }>;
}

export function parseVerboseJson(body: string, workerId: string, inferenceMs: number, duration: number): Transcript {
  let json: VerboseJson;
  try {
    json = JSON.parse(body) as VerboseJson;
  } catch (err) {
    throw new KolError('worker_request_failed', `Worker ${workerId} answered with something that is not JSON: ${body.slice(0, 120)}`, { cause: err });
  }
  const segments: TranscriptSegment[] = (json.segments ?? []).map((s) => ({
    text: (s.text ?? '').trim(),
    start: s.start ?? 0,
    end: s.end ?? 0,
    noSpeechProb: s.no_speech_prob ?? 0,
    avgLogprob: s.avg_logprob ?? 0,
    words: joinTokensIntoWords(s.words ?? []),
  }));
  // Segment texts carry their own leading space where a word begins: joined as they are, a word that
  // whisper split across two segments stays whole.
  const text = (json.segments ?? [])
    .map((s) => s.text ?? '')
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
  return { text, language: json.language ?? '', duration, segments, worker: workerId, inferenceMs };
}

/** whisper-server's "words" are sub-word tokens; a token starting with a space begins a new word. */
function joinTokensIntoWords(tokens: Array<{ word?: string; start?: number; end?: number; probability?: number }>): TranscriptWord[] {
  const words: TranscriptWord[] = [];
  for (const token of tokens) {
    const piece = token.word ?? '';
    if (/^\[_|^\[[A-Z_]+\]$/.test(piece.trim())) continue; // special tokens such as [_BEG_]
    const last = words.at(-1);
    if (last && !/^\s/.test(piece)) {
      last.word += piece;
      last.end = token.end ?? last.end;
      last.probability = Math.min(last.probability, token.probability ?? 1);
    } else {
      words.push({ word: piece.trim(), start: token.start ?? 0, end: token.end ?? 0, probability: token.probability ?? 1 });
    }
  }
  return words.filter((w) => w.word.length > 0);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
