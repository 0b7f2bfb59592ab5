import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKolError } from '../errors.js';
import { createResampler, type Resampler } from './resample.js';
import { concatAudio } from '../../test/helpers/signals.js';

function sine(hz: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / rate);
  return out;
}

function rms(x: Float32Array): number {
  let sum = 0;
  for (const v of x) sum += v * v;
  return Math.sqrt(sum / x.length);
}

/** Frequency from the count of upward zero crossings, interpolated to the sample. */
function frequency(x: Float32Array, rate: number): number {
  const crossings: number[] = [];
  for (let i = 1; i < x.length; i++) {
    if (x[i - 1] < 0 && x[i] >= 0) crossings.push(i - 1 + -x[i - 1] / (x[i] - x[i - 1]));
  }
  return ((crossings.length - 1) * rate) / (crossings.at(-1)! - crossings[0]);
}

/** Feeds `input` in irregular chunk sizes, then flushes. */
function resampleChunked(resampler: Resampler, input: Float32Array): Float32Array {
  const sizes = [1, 480, 37, 960, 1024, 3, 4410];
  const parts: Float32Array[] = [];
  for (let offset = 0, k = 0; offset < input.length; k++) {
    const size = sizes[k % sizes.length];
    parts.push(resampler.process(input.subarray(offset, offset + size)));
    offset += size;
  }
  parts.push(resampler.flush());
  return concatAudio(...parts);
}

describe('createResampler', () => {
  test('rates outside 8000–192000 Hz, or fractional, are unsupported_sample_rate', async () => {
    for (const rate of [7999, 192_001, 44_100.5, 0]) {
      await assert.rejects(createResampler(rate), (e) => isKolError(e, 'unsupported_sample_rate') && e.message.includes(String(rate)), String(rate));
    }
    for (const rate of [8000, 192_000]) (await createResampler(rate)).close();
  });

  test('16 kHz passes chunks through untouched, without copying', async () => {
    const resampler = await createResampler(16_000);
    const chunk = sine(440, 16_000, 0.1);
    assert.equal(resampler.process(chunk), chunk);
    assert.equal(resampler.flush().length, 0);
    resampler.close();
  });

  for (const rate of [44_100, 48_000]) {
    test(`1 kHz at ${rate} Hz comes out at 16 kHz: right length, frequency and level`, async () => {
      const input = sine(1000, rate, 2);
      const resampler = await createResampler(rate);
      const out = resampleChunked(resampler, input);
      resampler.close();
      assert.ok(Math.abs(out.length - Math.round((input.length * 16_000) / rate)) <= 1, `length ${out.length}`);
      const body = out.subarray(200, out.length - 200);
      assert.ok(Math.abs(frequency(body, 16_000) - 1000) < 0.5, `frequency ${frequency(body, 16_000)}`);
      assert.ok(Math.abs(rms(body) - 0.5 / Math.SQRT2) < 0.005, `rms ${rms(body)}`);
    });
  }

  for (const [hz, rate] of [
    [10_000, 48_000],
    [12_000, 48_000],
    [9_000, 44_100],
  ]) {
    test(`a ${hz} Hz tone at ${rate} Hz (above the new 8 kHz Nyquist) is removed, not aliased`, async () => {
      const resampler = await createResampler(rate);
      const out = resampleChunked(resampler, sine(hz, rate, 1));
      resampler.close();
      // Without an anti-aliasing filter it would fold to 16000 - hz at full level (rms 0.354).
      const attenuationDb = 20 * Math.log10(rms(out.subarray(200, out.length - 200)) / (0.5 / Math.SQRT2));
      assert.ok(attenuationDb < -60, `only ${attenuationDb.toFixed(1)} dB down`);
    });
  }

  test('chunked output equals one-shot output (no clicks at chunk boundaries)', async () => {
    // A chirp, so that every chunk boundary falls on a different phase and frequency.
    const rate = 44_100;
    const input = new Float32Array(rate * 2);
    for (let i = 0; i < input.length; i++) input[i] = 0.6 * Math.sin(2 * Math.PI * (200 + 900 * (i / rate)) * (i / rate));
    const oneShot = await createResampler(rate);
    const whole = [...oneShot.process(input), ...oneShot.flush()];
    oneShot.close();
    const chunked = await createResampler(rate);
    const pieces = resampleChunked(chunked, input);
    chunked.close();
    assert.equal(pieces.length, whole.length);
    let maxDiff = 0;
    for (let i = 0; i < whole.length; i++) maxDiff = Math.max(maxDiff, Math.abs(whole[i] - pieces[i]));
    assert.ok(maxDiff < 1e-5, `max difference ${maxDiff}`);
  });

  test('flush ends the stream and close frees it; misuse throws', async () => {
    const resampler = await createResampler(48_000);
    resampler.process(sine(1000, 48_000, 0.05));
    resampler.flush();
    assert.equal(resampler.flush().length, 0, 'a second flush has nothing left');
    assert.throws(() => resampler.process(new Float32Array(480)), /after flush/);
    resampler.close();
    resampler.close();
    assert.throws(() => resampler.process(new Float32Array(480)), /after close/);
  });

  test('cost: CPU per real-time second at 48 kHz (printed)', async (t) => {
    const resampler = await createResampler(48_000);
    const input = sine(1000, 48_000, 20);
    const before = process.cpuUsage();
    let produced = 0;
    for (let offset = 0; offset < input.length; offset += 960) produced += resampler.process(input.subarray(offset, offset + 960)).length;
    const used = process.cpuUsage(before);
    resampler.close();
    assert.ok(produced > 0);
    const msPerSecond = (used.user + used.system) / 1000 / 20;
    t.diagnostic(`resample 48 kHz → 16 kHz in 20 ms chunks: ${msPerSecond.toFixed(2)} ms CPU per second of audio`);
  });
});
