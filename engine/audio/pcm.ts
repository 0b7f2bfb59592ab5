/**
 * Raw PCM bytes (as a client streams them) → float32 mono samples in [-1, 1].
 *
 * Stateless on purpose: every frame must hold whole sample frames (one sample per channel). A frame
 * that splits a sample is a client bug, and carrying half a sample over to the next frame would
 * silently shift every later sample by a byte, so it is rejected instead.
 *
 * Float samples that are not finite (NaN, ±Infinity) are not audio: each becomes 0 and is counted
 * (left in, the resampler smears them over its filter length and whisper hears full-scale clicks).
 * Finite ones beyond ±1 are clipped, as whisper hears them anyway: near the float limit the
 * resampler's overshoot turns them into Infinity.
 */
import { KolError } from '../errors.js';
import { bytesPerSample, s16ToFloat, type PcmEncoding } from './format.js';

export interface PcmFormat {
  encoding: PcmEncoding;
  /** Interleaved channels; more than one is downmixed by averaging. */
  channels: number;
}

/** Counts what decoding had to repair; pass the same object to every call to total a stream. */
export interface PcmStats {
  /** NaN or ±Infinity samples replaced with 0. */
  nonFinite: number;
}

/** Throws `odd_pcm_length` when `byteLength` bytes do not hold whole sample frames of the format. */
export function checkWholeFrames(byteLength: number, format: PcmFormat): void {
  const { encoding, channels } = format;
  if (!Number.isInteger(channels) || channels < 1) {
    throw new KolError('invalid_config', `The channel count must be a whole number of at least 1, not ${channels}.`);
  }
  const frameBytes = bytesPerSample(encoding) * channels;
  if (byteLength % frameBytes !== 0) {
    const what = channels === 1 ? `${encoding} mono` : `${encoding} with ${channels} channels`;
    throw new KolError(
      'odd_pcm_length',
      `A PCM frame of ${byteLength} bytes does not hold a whole number of samples: for ${what} its length must be a multiple of ${frameBytes} bytes.`,
    );
  }
}

/** Decodes one frame. Throws `odd_pcm_length` when the bytes do not hold whole sample frames. */
export function decodePcm(bytes: Uint8Array, format: PcmFormat, stats?: PcmStats): Float32Array {
  checkWholeFrames(bytes.byteLength, format);
  const { encoding, channels } = format;
  const sampleBytes = bytesPerSample(encoding);

  // DataView: WebSocket buffers may start at an odd offset, and the wire format is little-endian
  // whatever the host is.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read: SampleReader = encoding === 'pcm_s16le' ? (v, o) => s16ToFloat(v.getInt16(o, true)) : (v, o) => v.getFloat32(o, true);
  return downmix(view, channels, sampleBytes, read, stats);
}

/** Reads one sample at a byte offset as a float, nominally in [-1, 1]. */
export type SampleReader = (view: DataView, offset: number) => number;

/**
 * Interleaved samples → mono float32, averaging the channels; a trailing partial frame is dropped.
 * Samples are clipped to [-1, 1]; non-finite ones count as 0 (and are counted in `stats`).
 */
export function downmix(view: DataView, channels: number, sampleBytes: number, read: SampleReader, stats?: PcmStats): Float32Array {
  const frameBytes = sampleBytes * channels;
  const frames = Math.floor(view.byteLength / frameBytes);
  const out = new Float32Array(frames);
  let nonFinite = 0;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    const base = i * frameBytes;
    for (let c = 0; c < channels; c++) {
      const v = read(view, base + c * sampleBytes);
      if (v >= -1 && v <= 1) sum += v;
      else if (Number.isFinite(v)) sum += v > 0 ? 1 : -1;
      else nonFinite++;
    }
    out[i] = sum / channels;
  }
  if (stats) stats.nonFinite += nonFinite;
  return out;
}
