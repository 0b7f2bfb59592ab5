import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKolError } from '../errors.js';
import type { PcmEncoding } from './format.js';
import { decodePcm } from './pcm.js';
import { createResampler } from './resample.js';

function s16(...values: number[]): Uint8Array {
  const bytes = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => bytes.writeInt16LE(v, i * 2));
  return bytes;
}

function f32(...values: number[]): Uint8Array {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes;
}

describe('decodePcm', () => {
  test('pcm_s16le mono scales to [-1, 1)', () => {
    assert.deepEqual([...decodePcm(s16(0, 16384, -32768, 32767, -1), { encoding: 'pcm_s16le', channels: 1 })], [0, 0.5, -1, 32767 / 32768, -1 / 32768]);
  });

  test('pcm_f32le mono passes values through', () => {
    assert.deepEqual([...decodePcm(f32(0.25, -0.75, 1), { encoding: 'pcm_f32le', channels: 1 })], [0.25, -0.75, 1]);
  });

  test('interleaved channels are averaged', () => {
    // L, R pairs: (0.5, -0.25) and (1, 1)
    assert.deepEqual([...decodePcm(s16(16384, -8192, 32767, 32767), { encoding: 'pcm_s16le', channels: 2 })], [0.125, 32767 / 32768]);
    assert.deepEqual([...decodePcm(f32(0.25, 0.5, 0.75, -1, 0, 1), { encoding: 'pcm_f32le', channels: 3 })], [0.5, 0]);
  });

  test('reads a buffer that starts at an odd byte offset', () => {
    const backing = Buffer.alloc(1 + 8);
    Buffer.from(f32(0.5, -0.5)).copy(backing, 1);
    assert.deepEqual([...decodePcm(backing.subarray(1), { encoding: 'pcm_f32le', channels: 1 })], [0.5, -0.5]);
  });

  test('an empty frame decodes to no samples', () => {
    assert.equal(decodePcm(new Uint8Array(0), { encoding: 'pcm_s16le', channels: 2 }).length, 0);
  });

  test('NaN and ±Infinity f32 samples become silence and are counted across frames', () => {
    const stats = { nonFinite: 0 };
    const mono = decodePcm(f32(0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), { encoding: 'pcm_f32le', channels: 1 }, stats);
    assert.deepEqual([...mono], [0.5, 0, 0, 0]);
    assert.equal(stats.nonFinite, 3);
    // In stereo the bad channel is silence and the other is averaged with it; the count goes on.
    const stereo = decodePcm(f32(0.5, Number.NaN, -0.25, 0.25), { encoding: 'pcm_f32le', channels: 2 }, stats);
    assert.deepEqual([...stereo], [0.25, 0]);
    assert.equal(stats.nonFinite, 4);
    assert.deepEqual([...decodePcm(f32(Number.NaN), { encoding: 'pcm_f32le', channels: 1 })], [0], 'counting is optional');
  });

  test('f32 samples beyond ±1 are clipped: near the float limit they would overflow the resampler', async () => {
    const huge = f32(3.4e38, -3.4e38, 1.5, -1.25, 1e-3);
    assert.deepEqual([...decodePcm(huge, { encoding: 'pcm_f32le', channels: 1 })], [1, -1, 1, -1, Math.fround(1e-3)]);
    // The resampler's overshoot on full-scale alternation stays finite.
    const wild = new Float32Array(4410).map((_, i) => (i % 7 < 3 ? 3.4e38 : -3.4e38));
    const resampler = await createResampler(8000);
    const out = [...resampler.process(decodePcm(new Uint8Array(wild.buffer), { encoding: 'pcm_f32le', channels: 1 })), ...resampler.flush()];
    resampler.close();
    assert.ok(out.every(Number.isFinite));
  });

  test('a frame that splits a sample is odd_pcm_length, naming its length and the multiple', () => {
    const cases: [number, PcmEncoding, number, number][] = [
      [3, 'pcm_s16le', 1, 2],
      [6, 'pcm_s16le', 2, 4],
      [12, 'pcm_f32le', 2, 8],
      [5, 'pcm_f32le', 1, 4],
    ];
    for (const [length, encoding, channels, multiple] of cases) {
      assert.throws(
        () => decodePcm(new Uint8Array(length), { encoding, channels }),
        (e) => isKolError(e, 'odd_pcm_length') && e.status === 400 && e.message.includes(`${length} bytes`) && e.message.includes(`multiple of ${multiple} bytes`),
        `${length} bytes of ${encoding} × ${channels}`,
      );
    }
  });

  test('an unknown encoding or a bad channel count is rejected with its own code', () => {
    assert.throws(() => decodePcm(new Uint8Array(4), { encoding: 'pcm_u8' as PcmEncoding, channels: 1 }), (e) => isKolError(e, 'unsupported_encoding') && e.message.includes('pcm_u8'));
    assert.throws(() => decodePcm(new Uint8Array(4), { encoding: 'pcm_s16le', channels: 0 }), (e) => isKolError(e, 'invalid_config'));
  });
});
