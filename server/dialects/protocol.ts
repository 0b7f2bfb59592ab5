/**
 * The native streaming protocol (`/v1/stream`), in one place: every message type with its literal
 * `type`, the validation of what clients send, and the shapes of what the server sends.
 * PROTOCOL.md documents the same for people; keep the two in step.
 */
import { z } from 'zod';
import { bytesPerSample, PCM_ENCODINGS, type PcmEncoding } from '../../engine/audio/format.js';
import { MAX_INPUT_RATE, MIN_INPUT_RATE } from '../../engine/audio/resample.js';
import { KolError, quoted, type ErrorCode } from '../../engine/errors.js';
import type { SegmentEndReason } from '../../engine/vad/segmenter.js';
import { parseJson } from './common.js';

// ── session configuration (query parameters and/or a first `config` message)

export interface SessionConfig {
  sample_rate: number;
  encoding: PcmEncoding;
  channels: number;
  language: string;
  partials: boolean;
  /** Silence (ms) that ends a segment. */
  endpoint_ms: number;
  prompt: string;
  /** Caption room this session publishes its transcript to, if any. */
  room: string | null;
}

// Limits, declared once: the server's configuration and the dialects' vendor mappings use these.

/** Silence (ms) that can end a segment: endpoint_ms, the server's endpointMs, vendors' silence settings. */
export const MIN_ENDPOINT_MS = 100;
export const MAX_ENDPOINT_MS = 5000;
/** Caption room names, as they appear in URLs and Redis keys. */
export const ROOM_NAME = /^[\w.-]{1,64}$/;
/** Characters of prompt a session may carry; dialects cut vendors' vocabularies to it. */
export const MAX_PROMPT_CHARS = 1000;

/** A vendor's silence duration → our endpoint_ms range. */
export function clampEndpoint(ms: number): number {
  return Math.min(MAX_ENDPOINT_MS, Math.max(MIN_ENDPOINT_MS, Math.round(ms)));
}

const configFields = {
  sample_rate: z.number().int().min(MIN_INPUT_RATE).max(MAX_INPUT_RATE),
  encoding: z.enum(PCM_ENCODINGS),
  channels: z.number().int().min(1).max(8),
  language: z.string().regex(/^([a-z]{2,3}|auto|haw|yue)$/, 'a language code such as "he" or "en", or "auto"'),
  partials: z.boolean(),
  endpoint_ms: z.number().int().min(MIN_ENDPOINT_MS).max(MAX_ENDPOINT_MS),
  prompt: z.string().max(MAX_PROMPT_CHARS),
  room: z.string().regex(ROOM_NAME, 'letters, digits, ".", "_" or "-", at most 64').nullable(),
};

const configUpdate = z.object(configFields).partial().strict();
export type ConfigUpdate = z.infer<typeof configUpdate>;

/** Which error code a bad value of a field gets: the rate and encoding have codes of their own. */
const FIELD_ERROR: Partial<Record<keyof SessionConfig, ErrorCode>> = {
  sample_rate: 'unsupported_sample_rate',
  encoding: 'unsupported_encoding',
};

/** Applies an update (from a message or query string) to a configuration; throws a KolError naming every bad field. */
export function applyConfig(base: SessionConfig, update: unknown): SessionConfig {
  const parsed = configUpdate.safeParse(update);
  if (!parsed.success) throw configError(parsed.error);
  const next = { ...base };
  for (const [key, value] of Object.entries(parsed.data)) {
    if (value !== undefined) (next as Record<string, unknown>)[key] = value;
  }
  return next;
}

/** Query parameters are strings: convert the known ones to their types before validation. */
export function configFromQuery(params: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(configFields)) {
    const raw = params.get(key);
    if (raw === null) continue;
    if (key === 'sample_rate' || key === 'channels' || key === 'endpoint_ms') out[key] = raw.trim() === '' ? NaN : Number(raw);
    else if (key === 'partials') out[key] = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    else out[key] = raw;
  }
  return out;
}

function configError(error: z.ZodError): KolError {
  const problems = error.issues.map((issue) => {
    const field = String(issue.path[0] ?? '');
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `"${field}": ${issue.message}`;
  });
  const firstField = String(error.issues[0]?.path[0] ?? '') as keyof SessionConfig;
  const code = FIELD_ERROR[firstField] ?? 'invalid_config';
  return new KolError(code, `Invalid session configuration: ${problems.join('; ')}.`);
}

// ── client → server (text frames; binary frames are raw PCM in the session's encoding)

const audioMessage = z.object({ type: z.literal('audio'), data: z.string() }).strict();
const flushMessage = z.object({ type: z.literal('flush') }).strict();
const eofMessage = z.object({ type: z.literal('eof') }).strict();

export type ClientMessage =
  | { type: 'config'; update: Record<string, unknown> }
  | z.infer<typeof audioMessage>
  | z.infer<typeof flushMessage>
  | z.infer<typeof eofMessage>;

export const CLIENT_MESSAGE_TYPES = ['config', 'audio', 'flush', 'eof'] as const;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses one text frame; throws a KolError with the code that says what is wrong with it. */
export function parseClientMessage(text: string): ClientMessage {
  const json = parseJson(text);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new KolError('invalid_message', 'A text frame must be a JSON object with a "type".');
  }
  const type = (json as { type?: unknown }).type;
  switch (type) {
    case 'config': {
      // The update is copied as own entries: JSON.parse makes "__proto__" an own field, which an
      // assignment-based copy (a spread through a schema's output) would turn into the prototype,
      // silently, where applyConfig's check for unknown fields would never see it.
      const update = Object.fromEntries(Object.entries(json).filter(([key]) => key !== 'type'));
      return { type: 'config', update };
    }
    case 'audio': {
      const parsed = audioMessage.safeParse(json);
      if (!parsed.success) throw new KolError('invalid_message', 'An "audio" message needs a "data" string of base64 PCM and nothing else.');
      const data = parsed.data.data.replace(/\s+/g, '');
      if (!BASE64.test(data) || data.length % 4 === 1) throw new KolError('invalid_base64', 'The "data" of an audio message was not valid base64.');
      return { type: 'audio', data };
    }
    case 'flush':
    case 'eof': {
      const parsed = (type === 'flush' ? flushMessage : eofMessage).safeParse(json);
      if (!parsed.success) throw new KolError('invalid_message', `A "${type}" message takes no fields besides "type".`);
      return parsed.data;
    }
    default:
      throw new KolError(
        'unknown_message_type',
        `Unknown message type ${quoted(type)}; expected one of ${CLIENT_MESSAGE_TYPES.map((t) => `"${t}"`).join(', ')}.`,
      );
  }
}

// ── server → client

export interface WordTiming {
  word: string;
  start: number;
  end: number;
  probability: number;
}

export type ServerMessage =
  | { type: 'ready'; session_id: string; config: SessionConfig; hint: string }
  | { type: 'speech_start'; segment_id: number; start: number }
  | { type: 'partial'; segment_id: number; text: string; stable: string; unstable: string; start: number }
  | {
      type: 'final';
      segment_id: number;
      text: string;
      start: number;
      end: number;
      words: WordTiming[];
      /** Why the segment ended: a pause, the 10 s cap, a flush, or the end of the stream. */
      reason: SegmentEndReason;
      /** Server-measured: from receiving the last audio of the speech to sending this final. */
      latency_ms: number;
      queue_ms: number;
      inference_ms: number;
      /** How it was decoded; absent when nothing was (a segment too short to transcribe). */
      decoding?: FinalDecodingWire;
    }
  | { type: 'error'; code: ErrorCode; message: string; fatal: boolean; /** The segment whose final the error cost. */ segment_id?: number }
  | { type: 'closed'; reason: string; segments: number };

/**
 * Beam width, encoder window in frames of 20 ms (1500 = the full 30 s), whether load degraded it to
 * the cheaper settings, and whether it was decoded again because the first decoding lost speech.
 */
export interface FinalDecodingWire {
  beam: number;
  audio_ctx: number;
  degraded: boolean;
  retried: boolean;
}

export type ServerMessageType = ServerMessage['type'];

export function errorMessage(err: KolError, fatal = false, segmentId?: number): ServerMessage {
  return { type: 'error', code: err.code, message: err.message, fatal, ...(segmentId === undefined ? {} : { segment_id: segmentId }) };
}

export function readyHint(config: SessionConfig): string {
  return `Send ${config.encoding} audio at ${config.sample_rate} Hz, ${config.channels} channel(s) (${bytesPerSample(config.encoding)} bytes per sample) as binary frames, or {"type":"audio","data":"<base64>"} text frames; then {"type":"eof"}.`;
}

/** Bytes of client audio per second of sound, for pacing. */
export function bytesPerSecond(config: SessionConfig): number {
  return config.sample_rate * config.channels * bytesPerSample(config.encoding);
}
