/**
 * The engine's audio format, in one place: the rate it runs at, the PCM encodings clients may send,
 * and the one float ↔ 16-bit scaling every conversion uses.
 */
import { KolError } from '../errors.js';

/** The engine's sample rate: whisper and Silero both take 16 kHz mono. */
export const SAMPLE_RATE = 16_000;

export const PCM_ENCODINGS = ['pcm_s16le', 'pcm_f32le'] as const;
export type PcmEncoding = (typeof PCM_ENCODINGS)[number];

export function bytesPerSample(encoding: PcmEncoding): number {
  switch (encoding) {
    case 'pcm_s16le':
      return 2;
    case 'pcm_f32le':
      return 4;
    default:
      // Reachable from unvalidated JSON even though the type forbids it.
      throw new KolError('unsupported_encoding', `The audio encoding "${String(encoding)}" is not supported; use pcm_s16le or pcm_f32le.`);
  }
}

// One scaling both ways (±32768 ↔ ±1), so that s16 → float → s16 gives back every sample exactly;
// +1.0 itself clips to 32767.

/** A 16-bit sample → float in [-1, 1). */
export function s16ToFloat(v: number): number {
  return v / 32768;
}

/** A float sample → 16-bit, rounded and clipped to the int16 range (NaN → 0 in an Int16Array). */
export function floatToS16(x: number): number {
  return Math.max(-32768, Math.min(32767, Math.round(x * 32768)));
}

/** Float samples → 16-bit samples. */
export function floatsToS16(pcm: ArrayLike<number>): Int16Array {
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = floatToS16(pcm[i]);
  return out;
}

/** 16-bit samples → float samples. */
export function s16ToFloats(pcm: ArrayLike<number>): Float32Array {
  return Float32Array.from(pcm, s16ToFloat);
}

/** Float samples → 16-bit little-endian bytes, the wire's pcm_s16le whatever the host's byte order. */
export function floatsToS16le(pcm: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(pcm.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i++) view.setInt16(i * 2, floatToS16(pcm[i]), true);
  return out;
}
