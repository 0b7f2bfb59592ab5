/**
 * WAV files built byte by byte, so that the decoder is not tested against the library it uses:
 * any format code, bit depth and channel count, WAVE_FORMAT_EXTENSIBLE, extra chunks around the data,
 * and headers that lie about sizes.
 */

export interface WavSpec {
  /** 1 integer PCM, 3 float, 6 A-law, 7 µ-law, or anything else. */
  format: number;
  channels: number;
  rate: number;
  bits: number;
  /** The sample bytes, interleaved. */
  data: Buffer;
  extensible?: boolean;
  /** Whole chunks (see `chunk`) between "fmt " and "data", and after "data". */
  before?: Buffer[];
  after?: Buffer[];
  /** What the headers claim, when they should lie: the data chunk's size, the RIFF size. */
  dataSize?: number;
  riffSize?: number;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** One RIFF chunk: id, size, body, and the pad byte that follows an odd-sized body. */
export function chunk(id: string, body: Buffer, declaredSize = body.length): Buffer {
  return Buffer.concat([Buffer.from(id, 'latin1'), u32(declaredSize), body, Buffer.alloc(body.length % 2)]);
}

/** A LIST/INFO chunk with one tag, as tagging tools write it. */
export function listChunk(text: string): Buffer {
  const value = Buffer.from(`${text}\0`, 'latin1');
  return chunk('LIST', Buffer.concat([Buffer.from('INFO'), chunk('INAM', value)]));
}

export function wavBytes(o: WavSpec): Buffer {
  const fmt = Buffer.alloc(o.extensible ? 40 : 16);
  const blockAlign = o.channels * Math.ceil(o.bits / 8);
  fmt.writeUInt16LE(o.extensible ? 0xfffe : o.format, 0);
  fmt.writeUInt16LE(o.channels, 2);
  fmt.writeUInt32LE(o.rate, 4);
  fmt.writeUInt32LE((o.rate * blockAlign) >>> 0, 8);
  fmt.writeUInt16LE(blockAlign & 0xffff, 12);
  fmt.writeUInt16LE(o.bits, 14);
  if (o.extensible) {
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(o.bits, 18);
    fmt.writeUInt32LE(0, 20);
    // Sub-format GUID: the format code, then the fixed KSDATAFORMAT tail.
    fmt.writeUInt32LE(o.format, 24);
    Buffer.from('00001000800000aa00389b71', 'hex').copy(fmt, 28);
  }
  const body = Buffer.concat([
    Buffer.from('WAVE'),
    chunk('fmt ', fmt),
    ...(o.before ?? []),
    chunk('data', o.data, o.dataSize),
    ...(o.after ?? []),
  ]);
  return Buffer.concat([Buffer.from('RIFF'), u32(o.riffSize ?? body.length), body]);
}
