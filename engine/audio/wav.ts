/**
 * Audio files → 16 kHz mono float32 (what the VAD and whisper take), and 16 kHz mono float32 →
 * a 16-bit WAV (what whisper-server is sent).
 *
 * WAV (any rate, channel count, 8/16/24/32-bit integer, 32/64-bit float, A-law, µ-law) is decoded
 * here: its chunks are walked, the samples read and downmixed directly. Anything
 * else (mp3, ogg, flac, m4a, WAV with a compressed encoding…) goes through ffmpeg when it is on
 * the PATH.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import wavefile from 'wavefile';
import { KolError } from '../errors.js';
import { decodePcm, downmix, type PcmStats, type SampleReader } from './pcm.js';
import { createResampler, MAX_INPUT_RATE, MIN_INPUT_RATE } from './resample.js';
import { floatsToS16, s16ToFloat, SAMPLE_RATE } from './format.js';

export interface DecodedAudio {
  /** Mono float32 at 16 kHz. */
  pcm: Float32Array;
  sampleRate: typeof SAMPLE_RATE;
  durationS: number;
  /** The file's own rate and channel count; null where ffmpeg decoded it and did not say. */
  sourceRate: number | null;
  sourceChannels: number | null;
  /** NaN or ±Infinity samples in the file, replaced with silence. */
  nonFiniteSamples: number;
}

export interface DecodeOptions {
  /** The ffmpeg command or path (default "ffmpeg", looked up on the PATH). */
  ffmpeg?: string;
}

/**
 * Decodes a file. Rejects with `audio_empty`, `audio_unreadable`, `ffmpeg_missing` or (a WAV outside
 * 8–192 kHz) `unsupported_sample_rate`, naming the file.
 */
export async function decodeAudioFile(file: string, options: DecodeOptions = {}): Promise<DecodedAudio> {
  const name = path.basename(file);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new KolError('audio_unreadable', `${name}: the file could not be read (${(err as NodeJS.ErrnoException).code ?? String(err)}).`, { cause: err });
  }
  if (bytes.length === 0) throw new KolError('audio_empty', `${name}: the file is empty.`);

  let decoded: { mono: Float32Array; rate: number | null; channels: number | null; nonFinite: number };
  if (isWav(bytes)) {
    const wav = decodeWav(bytes, name);
    if (wav.kind === 'pcm') {
      if (wav.rate < MIN_INPUT_RATE || wav.rate > MAX_INPUT_RATE) {
        throw new KolError('unsupported_sample_rate', `${name}: the sample rate ${wav.rate} Hz is not supported; use ${MIN_INPUT_RATE} to ${MAX_INPUT_RATE} Hz.`);
      }
      decoded = { mono: await resampleAll(wav.mono, wav.rate), rate: wav.rate, channels: wav.channels, nonFinite: wav.nonFinite };
    } else {
      decoded = await decodeWithFfmpeg(file, name, options.ffmpeg ?? 'ffmpeg', `A WAV file with ${wav.encoding}`);
    }
  } else {
    decoded = await decodeWithFfmpeg(file, name, options.ffmpeg ?? 'ffmpeg', looksLikeAudio(bytes));
  }

  if (decoded.mono.length === 0) throw new KolError('audio_empty', `${name}: the file holds no audio samples.`);
  return {
    pcm: decoded.mono,
    sampleRate: SAMPLE_RATE,
    durationS: decoded.mono.length / SAMPLE_RATE,
    sourceRate: decoded.rate,
    sourceChannels: decoded.channels,
    nonFiniteSamples: decoded.nonFinite,
  };
}

/** A 16 kHz mono 16-bit WAV of `pcm` (mono float32 at 16 kHz; values outside [-1, 1] are clipped). */
export function encodeWav16k(pcm: Float32Array): Buffer {
  const samples = floatsToS16(pcm);
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, SAMPLE_RATE, '16', samples);
  return Buffer.from(wav.toBuffer());
}

function isWav(bytes: Buffer): boolean {
  const container = bytes.toString('latin1', 0, 4);
  return (container === 'RIFF' || container === 'RIFX' || container === 'RF64') && bytes.toString('latin1', 8, 12) === 'WAVE';
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_ALAW = 6;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

type WavDecode =
  | { kind: 'pcm'; mono: Float32Array; rate: number; channels: number; nonFinite: number }
  | { kind: 'needs_ffmpeg'; encoding: string };

function decodeWav(bytes: Buffer, name: string): WavDecode {
  const { fmt, data, littleEndian } = riffChunks(bytes, name);
  const u16 = (at: number) => (littleEndian ? fmt.readUInt16LE(at) : fmt.readUInt16BE(at));
  const u32 = (at: number) => (littleEndian ? fmt.readUInt32LE(at) : fmt.readUInt32BE(at));
  // WAVE_FORMAT_EXTENSIBLE keeps the real format code in the first field of its sub-format GUID.
  const format = u16(0) === WAVE_FORMAT_EXTENSIBLE ? (fmt.length >= 28 ? u32(24) : 0) : u16(0);
  const channels = u16(2);
  const rate = u32(4);
  const bits = u16(14); // 0 for some compressed encodings (MP3 in WAV): judged with the encoding
  if (format === 0 || channels === 0 || rate === 0) {
    throw new KolError('audio_unreadable', `${name}: the WAV header is broken (format ${format}, ${channels} channels, ${rate} Hz).`);
  }
  const reader = sampleReader(format, bits, littleEndian);
  if (reader === 'other_encoding') return { kind: 'needs_ffmpeg', encoding: `encoding ${format}` };
  if (reader === 'bad_depth') {
    throw new KolError('audio_unreadable', `${name}: the WAV header gives ${describeFormat(format)} at ${bits} bits, which is not a valid sample size.`);
  }
  // A file cut short ends mid-frame: the partial frame is dropped.
  const stats: PcmStats = { nonFinite: 0 };
  const mono = downmix(new DataView(data.buffer, data.byteOffset, data.byteLength), channels, reader.bytes, reader.read, stats);
  return { kind: 'pcm', mono, rate, channels, nonFinite: stats.nonFinite };
}

/**
 * The "fmt " and "data" chunks of a RIFF (little-endian), RIFX (big-endian) or RF64 file, found by
 * walking its chunks: any others (LIST, JUNK, fact, bext…) are skipped wherever they are, the RIFF
 * size is ignored, and a data size past the end of the file means "to the end", as a writer that did
 * not know the length leaves it.
 */
function riffChunks(bytes: Buffer, name: string): { fmt: Buffer; data: Buffer; littleEndian: boolean } {
  const container = bytes.toString('latin1', 0, 4);
  const littleEndian = container !== 'RIFX';
  const u32 = (at: number) => (littleEndian ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  let fmt: Buffer | null = null;
  let data: Buffer | null = null;
  let rf64DataSize: number | null = null;
  for (let at = 12; at + 8 <= bytes.length && !(fmt && data); ) {
    const id = bytes.toString('latin1', at, at + 4);
    let size = u32(at + 4);
    const body = at + 8;
    // RF64 keeps the real 64-bit data size in its ds64 chunk and 0xFFFFFFFF in the data chunk.
    if (id === 'ds64' && container === 'RF64' && size >= 16 && body + 16 <= bytes.length) rf64DataSize = bytes.readUInt32LE(body + 8) + bytes.readUInt32LE(body + 12) * 2 ** 32;
    if (id === 'data' && size === 0xffffffff && rf64DataSize !== null) size = rf64DataSize;
    const chunkBytes = bytes.subarray(body, Math.min(body + size, bytes.length));
    if (id === 'fmt ' && !fmt) fmt = chunkBytes;
    if (id === 'data' && !data) data = chunkBytes;
    at = body + size + (size % 2); // chunks are padded to an even length
  }
  if (!fmt || fmt.length < 16) throw new KolError('audio_unreadable', `${name}: not a readable WAV file (${fmt ? 'its "fmt " chunk is cut short' : 'it has no "fmt " chunk'}).`);
  if (!data) throw new KolError('audio_unreadable', `${name}: not a readable WAV file (it has no "data" chunk).`);
  return { fmt, data, littleEndian };
}

function describeFormat(format: number): string {
  return format === WAVE_FORMAT_IEEE_FLOAT ? 'float samples' : format === WAVE_FORMAT_PCM ? 'integer PCM' : 'G.711 samples';
}

/**
 * How to read one sample of an encoding decoded here, as a float in [-1, 1]; 'other_encoding' for one
 * left to ffmpeg (ADPCM, MP3 in WAV…); 'bad_depth' for a bit depth the encoding cannot have.
 */
function sampleReader(format: number, bits: number, littleEndian: boolean): { read: SampleReader; bytes: number } | 'other_encoding' | 'bad_depth' {
  switch (format) {
    case WAVE_FORMAT_IEEE_FLOAT:
      if (bits === 32) return { bytes: 4, read: (v, o) => v.getFloat32(o, littleEndian) };
      if (bits === 64) return { bytes: 8, read: (v, o) => v.getFloat64(o, littleEndian) };
      return 'bad_depth';
    case WAVE_FORMAT_ALAW:
    case WAVE_FORMAT_MULAW: {
      if (bits !== 8) return 'bad_depth';
      const table = format === WAVE_FORMAT_ALAW ? ALAW : MULAW;
      return { bytes: 1, read: (v, o) => table[v.getUint8(o)] };
    }
    case WAVE_FORMAT_PCM:
      // A depth that is not a whole number of bytes (12, 20 bits) is stored in the next whole byte
      // count, high bits first, as ffmpeg reads it.
      switch (Math.ceil(bits / 8)) {
        case 1: // 8-bit WAV is unsigned, centred on 128.
          return { bytes: 1, read: (v, o) => (v.getUint8(o) - 128) / 128 };
        case 2:
          return { bytes: 2, read: (v, o) => s16ToFloat(v.getInt16(o, littleEndian)) };
        case 3:
          return {
            bytes: 3,
            read: (v, o) => {
              const [lo, hi] = littleEndian ? [o, o + 2] : [o + 2, o];
              return ((v.getInt8(hi) << 16) | (v.getUint8(o + 1) << 8) | v.getUint8(lo)) / 8388608;
            },
          };
        case 4:
          return { bytes: 4, read: (v, o) => v.getInt32(o, littleEndian) / 2147483648 };
        default:
          return 'bad_depth';
      }
    default:
      return 'other_encoding';
  }
}

/** G.711 (ITU-T) expansion of every 8-bit code to a float in [-1, 1]. */
const ALAW = Float32Array.from({ length: 256 }, (_, code) => {
  const a = code ^ 0x55;
  const exponent = (a >> 4) & 7;
  const magnitude = exponent === 0 ? ((a & 0x0f) << 4) + 8 : (((a & 0x0f) << 4) + 0x108) << (exponent - 1);
  return s16ToFloat(a & 0x80 ? magnitude : -magnitude);
});
const MULAW = Float32Array.from({ length: 256 }, (_, code) => {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 7;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return s16ToFloat(u & 0x80 ? -magnitude : magnitude);
});

async function resampleAll(mono: Float32Array, rate: number): Promise<Float32Array> {
  const resampler = await createResampler(rate);
  try {
    const body = resampler.process(mono);
    const tail = resampler.flush();
    if (tail.length === 0) return body;
    const out = new Float32Array(body.length + tail.length);
    out.set(body);
    out.set(tail, body.length);
    return out;
  } finally {
    resampler.close();
  }
}

/**
 * Whether the first bytes are the signature of an audio container ffmpeg would read: decides between
 * "install ffmpeg" and "this is not audio" when ffmpeg is absent. Returns what it is, for the message.
 */
function looksLikeAudio(bytes: Buffer): string | null {
  const ascii = (start: number, end: number) => bytes.toString('latin1', start, end);
  if (ascii(0, 3) === 'ID3' || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0)) return 'MP3/AAC audio';
  if (ascii(0, 4) === 'OggS') return 'Ogg audio';
  if (ascii(0, 4) === 'fLaC') return 'FLAC audio';
  if (ascii(4, 8) === 'ftyp') return 'MP4/M4A audio';
  if (bytes.length >= 4 && bytes.readUInt32BE(0) === 0x1a45dfa3) return 'WebM/Matroska audio';
  if (ascii(0, 4) === 'FORM' && ['AIFF', 'AIFC'].includes(ascii(8, 12))) return 'AIFF audio';
  if (ascii(0, 5) === '#!AMR') return 'AMR audio';
  if (ascii(0, 4) === 'caff') return 'CAF audio';
  if (bytes.toString('hex', 0, 8) === '3026b2758e66cf11') return 'WMA audio';
  return null;
}

/** Decodes through ffmpeg to f32le 16 kHz mono. `format` names what the file seems to be, for errors. */
async function decodeWithFfmpeg(
  file: string,
  name: string,
  ffmpeg: string,
  format: string | null,
): Promise<{ mono: Float32Array; rate: number | null; channels: number | null; nonFinite: number }> {
  // rematrix_maxval 1 normalises the downmix: stereo is averaged as in the WAV path (ffmpeg's
  // default sums each channel at -3 dB, which raises dual-mono speech by 3 dB and can clip).
  const args = ['-nostdin', '-hide_banner', '-nostats', '-i', file, '-vn', '-f', 'f32le', '-ac', '1', '-ar', String(SAMPLE_RATE), '-rematrix_maxval', '1', '-'];
  const result = await new Promise<{ code: number | null; stdout: Buffer; stderr: string } | 'missing'>((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    // Keep the end of stderr only: that is where ffmpeg says what went wrong.
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-8192)));
    child.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve('missing') : reject(err)));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });

  if (result === 'missing') {
    if (format === null) throw new KolError('audio_unreadable', `${name}: not a WAV file or any audio format recognised here.`);
    throw new KolError('ffmpeg_missing', `${name}: ${format} needs ffmpeg, which was not found on the PATH; install ffmpeg or convert the file to WAV.`);
  }
  if (result.code !== 0) {
    const reason = result.stderr.trim().split('\n').at(-1) ?? '';
    throw new KolError('audio_unreadable', `${name}: ffmpeg could not decode it${reason ? ` (${reason})` : ''}.`);
  }
  const whole = result.stdout.subarray(0, result.stdout.length - (result.stdout.length % 4));
  const stats: PcmStats = { nonFinite: 0 };
  return { mono: decodePcm(whole, { encoding: 'pcm_f32le', channels: 1 }, stats), ...sourceStreamInfo(result.stderr), nonFinite: stats.nonFinite };
}

const CHANNEL_LAYOUTS: Record<string, number> = { mono: 1, stereo: 2, '2.1': 3, '3.0': 3, quad: 4, '4.0': 4, '5.0': 5, '5.1': 6, '6.1': 7, '7.1': 8 };

/** The input stream's rate and channels from ffmpeg's banner, e.g. "Audio: mp3, 44100 Hz, stereo, fltp". */
function sourceStreamInfo(stderr: string): { rate: number | null; channels: number | null } {
  const match = /Stream #\d+:\d+.*?: Audio: [^\n]*?(\d+) Hz, ([^,\n]+)/.exec(stderr);
  if (!match) return { rate: null, channels: null };
  const layout = match[2].trim().replace(/\(.*\)$/, '');
  const counted = /^(\d+) channels/.exec(layout);
  return { rate: Number(match[1]), channels: counted ? Number(counted[1]) : (CHANNEL_LAYOUTS[layout] ?? null) };
}
