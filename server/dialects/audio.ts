/**
 * Audio as the compatibility dialects receive it → whole PCM sample frames in an encoding a Session
 * takes (pcm_s16le or pcm_f32le).
 *
 * The native endpoint rejects a frame that splits a sample (odd_pcm_length): there, that is a client
 * bug. The vendors whose protocols these dialects speak treat audio as a byte stream that may be cut
 * anywhere (a Deepgram client reading a file in 8 KiB chunks, a Vosk client reading N frames of a WAV),
 * so their adapters carry the split sample over to the next frame instead, here.
 *
 * Also: G.711 μ-law and A-law (telephony; Deepgram `mulaw`/`alaw`, OpenAI `audio/pcmu`/`audio/pcma`)
 * and 32-bit integer PCM (Deepgram `linear32`) are decoded here, and a WAV header at the start of a
 * Deepgram stream sent without `encoding` is read (Deepgram detects containers by itself).
 */
import { KolError } from '../../engine/errors.js';
import type { PcmEncoding } from '../../engine/audio/format.js';

/** What the client sends, in each vendor's terms mapped to one set of names. */
export type WireEncoding = 'linear16' | 'linear32' | 'float32' | 'mulaw' | 'alaw';

const WIRE_SAMPLE_BYTES: Record<WireEncoding, number> = { linear16: 2, linear32: 4, float32: 4, mulaw: 1, alaw: 1 };

/** The session encoding each wire encoding is converted to. */
export function sessionEncodingFor(wire: WireEncoding): PcmEncoding {
  return wire === 'linear32' || wire === 'float32' ? 'pcm_f32le' : 'pcm_s16le';
}

/**
 * Re-frames one client's audio byte stream into whole sample frames and converts it to the session's
 * encoding. Stateful: one per connection.
 */
export class WireAudio {
  readonly encoding: WireEncoding;
  readonly channels: number;
  private readonly frameBytes: number;
  private remainder: Uint8Array = new Uint8Array(0);

  constructor(encoding: WireEncoding, channels = 1) {
    this.encoding = encoding;
    this.channels = channels;
    this.frameBytes = WIRE_SAMPLE_BYTES[encoding] * channels;
  }

  get sessionEncoding(): PcmEncoding {
    return sessionEncodingFor(this.encoding);
  }

  /** Session-PCM bytes per wire byte (2 for G.711 → s16, else 1), for pacing and frame limits. */
  get expansion(): number {
    return this.encoding === 'mulaw' || this.encoding === 'alaw' ? 2 : 1;
  }

  /** Bytes held back because they split a sample frame (at most one frame less a byte). */
  get pending(): number {
    return this.remainder.length;
  }

  /** Takes the next bytes of the stream; returns the whole frames among them, converted. */
  push(bytes: Uint8Array): Uint8Array {
    let data = bytes;
    if (this.remainder.length > 0) {
      data = new Uint8Array(this.remainder.length + bytes.length);
      data.set(this.remainder, 0);
      data.set(bytes, this.remainder.length);
    }
    const whole = data.length - (data.length % this.frameBytes);
    this.remainder = data.slice(whole);
    const frames = data.subarray(0, whole);
    if (frames.length === 0) return frames;
    switch (this.encoding) {
      case 'linear16':
      case 'float32':
        return frames;
      case 'linear32':
        return int32ToFloat32(frames);
      case 'mulaw':
        return expandG711(frames, MULAW_TABLE);
      case 'alaw':
        return expandG711(frames, ALAW_TABLE);
    }
  }
}

function int32ToFloat32(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new DataView(new ArrayBuffer(bytes.length));
  for (let offset = 0; offset < bytes.length; offset += 4) out.setFloat32(offset, view.getInt32(offset, true) / 2147483648, true);
  return new Uint8Array(out.buffer);
}

function expandG711(bytes: Uint8Array, table: Int16Array): Uint8Array {
  const out = new DataView(new ArrayBuffer(bytes.length * 2));
  for (let i = 0; i < bytes.length; i++) out.setInt16(i * 2, table[bytes[i]], true);
  return new Uint8Array(out.buffer);
}

/** ITU-T G.711 μ-law byte → 16-bit linear sample. */
export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

/** ITU-T G.711 A-law byte → 16-bit linear sample. */
export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const segment = (a & 0x70) >> 4;
  let t = (a & 0x0f) << 4;
  t = segment === 0 ? t + 8 : (t + 0x108) << (segment - 1);
  return a & 0x80 ? t : -t;
}

const MULAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => ulawToLinear(i));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => alawToLinear(i));

// ── containers at the start of a stream (Deepgram without `encoding`)

export type Sniffed =
  /** A WAV header: its format, and where its sample data starts in the bytes given. */
  | { kind: 'wav'; encoding: WireEncoding; sampleRate: number; channels: number; dataOffset: number }
  /** The start of a WAV header, but not yet its `data` chunk: wait for more bytes. */
  | { kind: 'need_more' }
  /** No container: raw PCM. */
  | { kind: 'raw' };

/** Longest WAV header waited for before giving up (real ones are 44 bytes to a few KiB). */
export const MAX_HEADER_BYTES = 64 * 1024;

/**
 * Looks at the first bytes of a stream. Throws `unsupported_encoding` for a container this server
 * cannot decode (MP3, Ogg, FLAC, WebM, MP4) or a WAV of an unsupported sample format.
 */
export function sniffContainer(bytes: Uint8Array): Sniffed {
  const ascii = (offset: number, length: number) => String.fromCharCode(...bytes.subarray(offset, offset + length));
  if (bytes.length >= 4 && ascii(0, 4) === 'RIFF') {
    if (bytes.length < 12) return { kind: 'need_more' };
    if (ascii(8, 4) !== 'WAVE') throw new KolError('unsupported_encoding', 'The stream is a RIFF container but not WAVE audio.');
    return readWavHeader(bytes);
  }
  const container = containerName(bytes, ascii);
  if (container) {
    throw new KolError(
      'unsupported_encoding',
      `The audio looks like ${container}, which this server cannot decode in a stream; send raw PCM (encoding=linear16 with sample_rate), G.711 (mulaw/alaw) or WAV.`,
    );
  }
  return { kind: 'raw' };
}

function containerName(bytes: Uint8Array, ascii: (offset: number, length: number) => string): string | null {
  if (bytes.length < 4) return null;
  // (A bare MP3 frame sync is not tested for: 0xFF 0xFx is also a quiet s16 sample such as -1.)
  if (ascii(0, 3) === 'ID3') return 'MP3';
  if (ascii(0, 4) === 'OggS') return 'Ogg (Opus/Vorbis)';
  if (ascii(0, 4) === 'fLaC') return 'FLAC';
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) return 'WebM/Matroska';
  if (bytes.length >= 8 && ascii(4, 4) === 'ftyp') return 'MP4/M4A';
  return null;
}

function readWavHeader(bytes: Uint8Array): Sniffed {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: { tag: number; channels: number; sampleRate: number; bits: number } | null = null;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = String.fromCharCode(...bytes.subarray(offset, offset + 4));
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'data') {
      if (!format) throw new KolError('unsupported_encoding', 'The WAV stream has no "fmt " chunk before its data.');
      return { kind: 'wav', ...wavEncoding(format), dataOffset: body };
    }
    if (id === 'fmt ') {
      if (body + 16 > bytes.length) return { kind: 'need_more' };
      let tag = view.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (tag === 0xfffe && size >= 26 && body + 26 <= bytes.length) tag = view.getUint16(body + 24, true);
      format = { tag, channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
    }
    offset = body + size + (size % 2);
  }
  return { kind: 'need_more' };
}

function wavEncoding(format: { tag: number; channels: number; sampleRate: number; bits: number }): { encoding: WireEncoding; sampleRate: number; channels: number } {
  const { tag, bits, sampleRate, channels } = format;
  const encoding: WireEncoding | null =
    tag === 1 && bits === 16 ? 'linear16'
    : tag === 1 && bits === 32 ? 'linear32'
    : tag === 3 && bits === 32 ? 'float32'
    : tag === 6 && bits === 8 ? 'alaw'
    : tag === 7 && bits === 8 ? 'mulaw'
    : null;
  if (!encoding) {
    throw new KolError('unsupported_encoding', `WAV audio with format tag ${tag} and ${bits} bits per sample is not supported; use 16- or 32-bit PCM, 32-bit float, μ-law or A-law.`);
  }
  return { encoding, sampleRate, channels };
}
