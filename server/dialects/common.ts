/**
 * What the dialects share: reading a JSON text frame, ids, the model's name, and the small mappings
 * from vendor parameters to the native session configuration.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { KolError } from '../../engine/errors.js';

/** Parses a text frame's JSON; throws invalid_json, quoting its start (`advice` is added to the sentence). */
export function parseJson(text: string, advice = ''): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KolError('invalid_json', `A text frame was not valid JSON (it began ${JSON.stringify(text.slice(0, 40))})${advice}.`);
  }
}

/** A random id in a vendor's style, e.g. `item_3f9a…`. */
export function randomId(prefix: string, bytes = 12): string {
  return `${prefix}${randomBytes(bytes).toString('hex')}`;
}

export interface ModelInfo {
  name: string;
  version: string;
  arch: string;
  uuid: string;
}

/** The model the server transcribes with, as vendors' metadata fields want it. */
export function modelInfo(configured: string): ModelInfo {
  const name = configured ? path.basename(configured).replace(/\.bin$/, '') : 'default';
  return { name: `kol-whisper-${name}`, version: '1', arch: 'whisper', uuid: uuidFrom(name) };
}

/** A stable UUID-shaped id derived from a string. */
export function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A vendor language tag → ours: `en-US` → `en`, `he` → `he`; Deepgram's `multi` and an empty value
 * → `auto` / the server default. Whatever is left is validated by the session configuration.
 */
export function languageFrom(raw: string | null | undefined, serverDefault: string): string {
  if (raw === null || raw === undefined || raw.trim() === '') return serverDefault;
  const tag = raw.trim().toLowerCase();
  if (tag === 'multi' || tag === 'auto') return 'auto';
  return tag.split(/[-_]/)[0];
}

/** A boolean query parameter as vendors write it (`true`/`false`, `1`/`0`). */
export function boolParam(params: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new KolError('invalid_config', `Query parameter "${name}" must be true or false, not ${JSON.stringify(raw)}.`);
}

/** A whole-number query parameter, or null when absent. */
export function intParam(params: URLSearchParams, name: string): number | null {
  const raw = params.get(name);
  if (raw === null || raw === '') return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new KolError('invalid_config', `Query parameter "${name}" must be a number, not ${JSON.stringify(raw)}.`);
  return Math.round(value);
}

/** A word without the punctuation around it (inner marks such as the gershayim of צה"ל stay). */
export function bareWord(word: string): string {
  return word.replace(/^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu, '');
}

/** Mean of word probabilities, or 1 for a text without word timings, 0 for no text. */
export function meanConfidence(final: { text: string; words: Array<{ probability: number }> }): number {
  if (final.words.length === 0) return final.text.trim() ? 1 : 0;
  return round3(final.words.reduce((sum, w) => sum + w.probability, 0) / final.words.length);
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
