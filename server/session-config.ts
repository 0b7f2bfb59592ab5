/**
 * A session's settings, the limits on them and their validation, in one place: every dialect builds
 * a SessionConfig (the native protocol from its `config` message and query string, the vendor
 * dialects from their own parameters), the session runs on one, and the server's configuration takes
 * its limits from here. PROTOCOL.md's "Configuration" documents the same fields for people.
 */
import { z } from 'zod';
import { bytesPerSample, PCM_ENCODINGS, type PcmEncoding } from '../engine/audio/format.js';
import { MAX_INPUT_RATE, MIN_INPUT_RATE } from '../engine/audio/resample.js';
import { KolError, type ErrorCode } from '../engine/errors.js';

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

/** Bytes of client audio per second of sound, for pacing. */
export function bytesPerSecond(config: SessionConfig): number {
  return config.sample_rate * config.channels * bytesPerSample(config.encoding);
}
