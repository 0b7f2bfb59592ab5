/**
 * Property-based tests of the audio path, over shapes no fixed test data covers: any rate from 8 to
 * 192 kHz, 1–8 channels, s16 or f32 (NaN and infinities included), lengths that are not multiples of
 * 8 or 512, frames from one sample to the server's frame limit; and WAV files of every depth and
 * layout, with extra chunks, cut short or lying about their sizes.
 * Each case gives audio, or a KolError with a specific code: never internal_error, never a crash.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_CONFIG } from '../../server/config.js';
import { concatAudio } from '../../test/helpers/signals.js';
import { chunk, listChunk, wavBytes } from '../../test/helpers/wav-bytes.js';
import { isKolError, KolError, type ErrorCode } from '../errors.js';
import { FRAME_SAMPLES, FrameChunker } from '../vad/frames.js';
import { decodePcm } from './pcm.js';
import { createResampler, MAX_INPUT_RATE, MIN_INPUT_RATE } from './resample.js';
import { bytesPerSample, SAMPLE_RATE, type PcmEncoding } from './format.js';
import { decodeAudioFile } from './wav.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-audio-props-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const rate = fc.oneof(fc.constantFrom(8000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000), fc.integer({ min: MIN_INPUT_RATE, max: MAX_INPUT_RATE }));

/** Interleaved PCM bytes of `frames` sample frames: random int16, or float32 with NaN, infinities and overs. */
function pcmBytes(encoding: PcmEncoding, channels: number, maxFrames: number): fc.Arbitrary<Uint8Array> {
  const values = encoding === 'pcm_s16le' ? fc.int16Array({ maxLength: maxFrames * channels }) : fc.float32Array({ maxLength: maxFrames * channels });
  return values.map((v) => new Uint8Array(v.buffer, 0, (v.length - (v.length % channels)) * v.BYTES_PER_ELEMENT));
}

const streamCase = fc
  .record({ rate, channels: fc.integer({ min: 1, max: 8 }), encoding: fc.constantFrom<PcmEncoding>('pcm_s16le', 'pcm_f32le') })
  .chain((format) =>
    fc.record({
      ...Object.fromEntries(Object.entries(format).map(([k, v]) => [k, fc.constant(v)])),
      bytes: pcmBytes(format.encoding, format.channels, 3000),
      // Frame sizes in sample frames, used in turn: from one sample to the server's frame limit.
      frames: fc.array(
        fc.oneof(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 1, max: Math.floor(DEFAULT_CONFIG.maxFrameBytes / (bytesPerSample(format.encoding) * format.channels)) })),
        { minLength: 1, maxLength: 12 },
      ),
    }) as fc.Arbitrary<typeof format & { bytes: Uint8Array; frames: number[] }>,
  );

describe('the streaming audio path: decodePcm → resampler → FrameChunker', () => {
  test('framed any way, the audio comes out as in one piece: nothing lost, nothing doubled, all finite', async () => {
    await fc.assert(
      fc.asyncProperty(streamCase, async ({ rate: inputRate, channels, encoding, bytes, frames }) => {
        const format = { encoding, channels };
        const frameBytes = bytesPerSample(encoding) * channels;

        const whole = decodePcm(bytes, format);
        const pieces: Float32Array[] = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const size = Math.min(frames[i % frames.length] * frameBytes, bytes.length - at);
          pieces.push(decodePcm(bytes.subarray(at, at + size), format));
          at += size;
        }
        const decoded = concatAudio(...pieces);
        assert.equal(decoded.length, bytes.length / frameBytes);
        assert.deepEqual(decoded, whole);
        assert.ok(decoded.every((v) => v >= -1 && v <= 1), 'finite and within [-1, 1]');

        // Resampled in the same pieces and in one, then cut into VAD frames in those pieces.
        const oneShot = await createResampler(inputRate);
        const reference = concatAudio(oneShot.process(whole), oneShot.flush());
        oneShot.close();
        const streamed = await createResampler(inputRate);
        const chunker = new FrameChunker();
        const vadFrames: Float32Array[] = [];
        let resampled = 0;
        for (const piece of [...pieces.map((p) => streamed.process(p)), streamed.flush()]) {
          resampled += piece.length;
          vadFrames.push(...chunker.push(piece));
        }
        streamed.close();
        const tail = chunker.flushPadded();
        if (tail) vadFrames.push(tail);

        assert.equal(reference.length, Math.round((whole.length * SAMPLE_RATE) / inputRate));
        assert.equal(resampled, reference.length);
        assert.equal(vadFrames.length, Math.ceil(reference.length / FRAME_SAMPLES));
        assert.ok(vadFrames.every((f) => f.length === FRAME_SAMPLES));
        const framed = concatAudio(...vadFrames);
        assert.ok(framed.every(Number.isFinite), 'no NaN or Infinity reaches the VAD');
        for (let i = 0; i < reference.length; i++) {
          // libsamplerate's state makes chunked and one-shot output agree to float rounding.
          if (Math.abs(framed[i] - reference[i]) > 1e-4) assert.fail(`sample ${i}: ${framed[i]} chunked vs ${reference[i]} in one piece`);
        }
        assert.ok(framed.subarray(reference.length).every((v) => v === 0), 'the last frame is padded with silence');
      }),
      { numRuns: 60 },
    );
  });

  test('a frame that splits a sample is odd_pcm_length; a bad format is its own code; never internal_error', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom<string>('pcm_s16le', 'pcm_f32le', 'pcm_s24le', 'opus', ''),
        fc.oneof(fc.integer({ min: -2, max: 9 }), fc.constant(1.5), fc.constant(Number.NaN)),
        (bytes, encoding, channels) => {
          try {
            const out = decodePcm(bytes, { encoding: encoding as PcmEncoding, channels });
            assert.equal(out.length * bytesPerSample(encoding as PcmEncoding) * channels, bytes.length);
          } catch (err) {
            const expected: ErrorCode =
              !Number.isInteger(channels) || channels < 1 ? 'invalid_config' : !['pcm_s16le', 'pcm_f32le'].includes(encoding) ? 'unsupported_encoding' : 'odd_pcm_length';
            assert.ok(isKolError(err, expected), `${String(err)} (expected ${expected})`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a rate outside 8–192 kHz, or not whole, is unsupported_sample_rate', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.integer({ min: -1000, max: MIN_INPUT_RATE - 1 }), fc.integer({ min: MAX_INPUT_RATE + 1, max: 10_000_000 }), fc.double({ min: 8000.01, max: 191_999.99, noNaN: true }).filter((r) => !Number.isInteger(r))), async (r) => {
        await assert.rejects(createResampler(r), (e) => isKolError(e, 'unsupported_sample_rate'));
      }),
      { numRuns: 50 },
    );
  });
});

/** One WAV encoding as the file stores it, and how the test writes and expects its samples. */
interface Encoding {
  format: number;
  bits: number;
  /** Bytes per sample in the file. */
  size: number;
  write: (b: Buffer, value: number, offset: number) => void;
  /** The value the decoder should read for `value` (quantised as stored). */
  expect: (value: number) => number;
}

const ENCODINGS: Encoding[] = [
  { format: 1, bits: 8, size: 1, write: (b, v, o) => b.writeUInt8(Math.round(v * 127) + 128, o), expect: (v) => Math.round(v * 127) / 128 },
  { format: 1, bits: 16, size: 2, write: (b, v, o) => b.writeInt16LE(Math.round(v * 32767), o), expect: (v) => Math.round(v * 32767) / 32768 },
  { format: 1, bits: 24, size: 3, write: (b, v, o) => b.writeIntLE(Math.round(v * 8388607), o, 3), expect: (v) => Math.round(v * 8388607) / 8388608 },
  { format: 1, bits: 32, size: 4, write: (b, v, o) => b.writeInt32LE(Math.round(v * 2147483647), o), expect: (v) => Math.round(v * 2147483647) / 2147483648 },
  { format: 3, bits: 32, size: 4, write: (b, v, o) => b.writeFloatLE(v, o), expect: (v) => Math.fround(v) },
  { format: 3, bits: 64, size: 8, write: (b, v, o) => b.writeDoubleLE(v, o), expect: (v) => v },
];

const wavCase = fc.record({
  encoding: fc.constantFrom(...ENCODINGS),
  channels: fc.integer({ min: 1, max: 8 }),
  rate: fc.oneof({ weight: 4, arbitrary: fc.constant(16_000) }, { weight: 4, arbitrary: rate }, { weight: 1, arbitrary: fc.constantFrom(4000, 7999, 192_001, 384_000) }),
  frames: fc.integer({ min: 0, max: 1500 }),
  extensible: fc.boolean(),
  before: fc.array(fc.oneof(fc.string({ maxLength: 9 }).map(listChunk), fc.uint8Array({ maxLength: 7 }).map((b) => chunk('junk', Buffer.from(b)))), { maxLength: 2 }),
  after: fc.array(fc.string({ maxLength: 9 }).map(listChunk), { maxLength: 2 }),
  // How the file is damaged, if at all.
  damage: fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncated' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('data_size' as const), size: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(0xffffffff)) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('riff_size' as const), size: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constant(0xffffffff)) }) },
  ),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});

describe('the WAV reader', () => {
  test('every depth, layout and damage gives audio (all of it, where nothing is damaged) or a specific code', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(wavCase, async (c) => {
        const { encoding, channels } = c;
        // A deterministic signal in [-0.9, 0.9] that differs per channel, so downmixing is checked too.
        const values = Array.from({ length: c.frames * channels }, (_, i) => 0.9 * Math.sin(c.seed + i * 0.37));
        const data = Buffer.alloc(values.length * encoding.size);
        values.forEach((v, i) => encoding.write(data, v, i * encoding.size));
        let bytes = wavBytes({ format: encoding.format, channels, rate: c.rate, bits: encoding.bits, data, extensible: c.extensible, before: c.before, after: c.after, ...(c.damage.kind === 'data_size' ? { dataSize: c.damage.size } : {}), ...(c.damage.kind === 'riff_size' ? { riffSize: c.damage.size } : {}) });
        if (c.damage.kind === 'truncated') bytes = bytes.subarray(0, Math.floor(bytes.length * c.damage.keep));
        const file = path.join(dir, `case-${n++}.wav`);
        fs.writeFileSync(file, bytes);

        let audio;
        try {
          audio = await decodeAudioFile(file, { ffmpeg: path.join(dir, 'no-such-ffmpeg') });
        } catch (err) {
          assert.ok(err instanceof KolError, `not a KolError: ${String(err)}`);
          const allowed: ErrorCode[] =
            c.rate < MIN_INPUT_RATE || c.rate > MAX_INPUT_RATE ? ['unsupported_sample_rate', 'audio_unreadable', 'audio_empty'] : ['audio_unreadable', 'audio_empty'];
          assert.ok(allowed.includes(err.code), `${err.code}: ${err.message}`);
          // An intact file fails only for its rate, or for holding less than one sample at 16 kHz.
          const intactAndReadable = (c.damage.kind === 'none' || c.damage.kind === 'riff_size') && err.code !== 'unsupported_sample_rate' && Math.round((c.frames * SAMPLE_RATE) / c.rate) > 0;
          assert.ok(!intactAndReadable, `an intact file failed: ${err.message}`);
          return;
        }
        assert.ok(c.rate >= MIN_INPUT_RATE && c.rate <= MAX_INPUT_RATE, 'a rate out of range was accepted');
        // Within [-1, 1] as read; resampling may overshoot full-scale input a little, but stays finite.
        assert.ok(audio.pcm.length > 0 && audio.pcm.every(c.rate === SAMPLE_RATE ? (v) => v >= -1 && v <= 1 : Number.isFinite));
        assert.equal(audio.sourceChannels, channels);
        // Frames read: every one written; where the data size lies, as many as it claims, up to the end
        // of the file (a size beyond it means "to the end", as streaming writers leave it); where the
        // file was cut, no more than were written.
        const dataStart = 12 + 8 + (c.extensible ? 40 : 16) + c.before.reduce((n, b) => n + b.length, 0) + 8;
        const framesRead =
          c.damage.kind === 'data_size' ? Math.floor(Math.min(c.damage.size, bytes.length - dataStart) / (encoding.size * channels))
          : c.damage.kind === 'truncated' ? undefined
          : c.frames;
        if (framesRead !== undefined) assert.equal(audio.pcm.length, Math.round((framesRead * SAMPLE_RATE) / c.rate));
        else assert.ok(audio.pcm.length <= Math.round((c.frames * SAMPLE_RATE) / c.rate));
        if (c.rate === SAMPLE_RATE && framesRead !== undefined && framesRead <= c.frames) {
          // No resampling: each sample is exactly the channel average of what was written.
          for (let i = 0; i < audio.pcm.length; i++) {
            let sum = 0;
            for (let ch = 0; ch < channels; ch++) sum += encoding.expect(values[i * channels + ch]);
            const expected = Math.fround(sum / channels);
            if (Math.abs(audio.pcm[i] - expected) > 1e-6) assert.fail(`sample ${i}: ${audio.pcm[i]} vs ${expected}`);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
