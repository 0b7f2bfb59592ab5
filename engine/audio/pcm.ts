/**
 * Raw PCM bytes (as a client streams them) → float32 mono samples in [-1, 1].
 *
 * Stateless on purpose: every frame must hold whole sample frames (one sample per channel). A frame
 * that splits a sample is a client bug, and carrying half a sample over to the next frame would
 * silently shift every later sample by a byte, so it is rejected instead.
 */
import { KolError } from '../errors.js';

export type PcmEncoding = 'pcm_s16le' | 'pcm_f32le';

export interface PcmFormat {
  encoding: PcmEncoding;
  /** Interleaved channels; more than one is downmixed by averaging. */
  channels: number;
}

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
export function decodePcm(bytes: Uint8Array, format: PcmFormat): Float32Array {
  checkWholeFrames(bytes.byteLength, format);
  const { encoding, channels } = format;
  const sampleBytes = bytesPerSample(encoding);
  const frameBytes = sampleBytes * channels;

  // DataView: WebSocket buffers may start at an odd offset, and the wire format is little-endian
  // whatever the host is.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames = bytes.byteLength / frameBytes;
  const out = new Float32Array(frames);
  const read =
    encoding === 'pcm_s16le'
      ? (offset: number) => view.getInt16(offset, true) / 32768
      : (offset: number) => view.getFloat32(offset, true);

  if (channels === 1) {
    for (let i = 0; i < frames; i++) out[i] = read(i * sampleBytes);
    return out;
  }
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    const base = i * frameBytes;
    for (let c = 0; c < channels; c++) sum += read(base + c * sampleBytes);
    out[i] = sum / channels;
  }
  return out;
}
