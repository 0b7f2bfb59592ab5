/**
 * The page's plain modules, in Node: the resampler the AudioWorklet runs, the transcript exports,
 * and the socket addresses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { floatToInt16, StreamResampler } from './resampler.js';
import { clockTime, toPlainText, toWebVtt, Transcript, vttTimestamp } from './transcript.js';
import { ROOM_NAME as SERVER_ROOM_NAME } from '../../server/session-config.js';
import { pageUrl, ROOM_NAME, socketUrl } from './urls.js';
import { concatAudio } from '../../test/helpers/signals.js';

function sine(rate: number, hz: number, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = Math.sin((2 * Math.PI * hz * i) / rate);
  return out;
}

/** Feeds the input as an AudioWorklet would (128 samples at a time), then flushes. */
function resampleInBlocks(resampler: StreamResampler, input: Float32Array, block = 128): Float32Array {
  const parts: Float32Array[] = [];
  for (let i = 0; i < input.length; i += block) parts.push(resampler.process(input.subarray(i, i + block)));
  parts.push(resampler.flush());
  return concatAudio(...parts);
}

/** Level (dB relative to a full-scale sine) of the middle of a signal, away from the edges. */
function levelDb(signal: Float32Array): number {
  const from = Math.floor(signal.length * 0.2);
  const to = Math.floor(signal.length * 0.8);
  let sum = 0;
  for (let i = from; i < to; i++) sum += signal[i] * signal[i];
  return 20 * Math.log10(Math.sqrt(sum / (to - from)) / Math.SQRT1_2);
}

test('the resampler keeps the speech band and removes what would alias, from the usual device rates', () => {
  for (const rate of [44100, 48000, 96000, 22050]) {
    for (const hz of [200, 1000, 3000, 6000]) {
      const out = resampleInBlocks(new StreamResampler(rate), sine(rate, hz, 1));
      assert.ok(Math.abs(levelDb(out)) < 0.1, `${rate} Hz: ${hz} Hz came out at ${levelDb(out).toFixed(2)} dB`);
    }
    // Above the new Nyquist frequency (8 kHz): it must not fold back into the speech band.
    for (const hz of [8500, 10000, 15000]) {
      if (hz >= rate / 2) continue;
      const out = resampleInBlocks(new StreamResampler(rate), sine(rate, hz, 1));
      assert.ok(levelDb(out) < -80, `${rate} Hz: ${hz} Hz leaked through at ${levelDb(out).toFixed(1)} dB`);
    }
  }
});

test('the resampler keeps the frequency, the length and the timing', () => {
  const rate = 44100;
  const out = resampleInBlocks(new StreamResampler(rate), sine(rate, 1000, 2));
  assert.equal(out.length, 32000, 'round(input × 16000 / 44100) samples');
  // Compare with an ideal 1 kHz sine at 16 kHz: same phase, so no delay either.
  const ideal = sine(16000, 1000, 2);
  let error = 0;
  for (let i = 1000; i < 31000; i++) error = Math.max(error, Math.abs(out[i] - ideal[i]));
  assert.ok(error < 0.01, `largest deviation from the ideal sine: ${error}`);
});

test('the resampler gives the same output whatever the block sizes', () => {
  const input = sine(48000, 440, 0.5).map((v, i) => v * 0.5 + Math.sin(i * 0.37) * 0.3);
  const whole = resampleInBlocks(new StreamResampler(48000), input, input.length);
  const blocks = resampleInBlocks(new StreamResampler(48000), input, 128);
  const odd = resampleInBlocks(new StreamResampler(48000), input, 37);
  assert.equal(blocks.length, whole.length);
  assert.equal(odd.length, whole.length);
  for (let i = 0; i < whole.length; i++) {
    assert.ok(Math.abs(blocks[i] - whole[i]) < 1e-6 && Math.abs(odd[i] - whole[i]) < 1e-6, `sample ${i}`);
  }
});

test('at 16 kHz the audio passes through untouched; float → int16 clips and rounds', () => {
  const input = Float32Array.from([0, 0.5, -0.5, 1, -1]);
  assert.deepEqual([...new StreamResampler(16000).process(input)], [...input]);
  assert.deepEqual([...floatToInt16(Float32Array.from([0, 1, -1, 2, -2, 0.5, -0.5]))], [0, 32767, -32768, 32767, -32768, 16384, -16384]);
  assert.throws(() => new StreamResampler(0), RangeError);
});

test('WebVTT: numbered cues on the recording timeline, escaped text, empty segments left out', () => {
  const transcript = new Transcript();
  assert.equal(transcript.add({ key: '1:0', text: 'שלום, עולם', start: 1.2, end: 3.456 }), true);
  assert.equal(transcript.add({ key: '1:1', text: '   ', start: 4, end: 5 }), false);
  transcript.add({ key: '2:0', text: 'a < b & c --> d', start: 3723.5, end: 3723.5 });
  assert.equal(transcript.toVtt(), 'WEBVTT\n\n1\n00:00:01.200 --> 00:00:03.456\nשלום, עולם\n\n2\n01:02:03.500 --> 01:02:03.600\na &lt; b &amp; c --&gt; d\n');
  assert.equal(transcript.toText(), 'שלום, עולם\na < b & c --> d\n');
  assert.equal(toPlainText([]), '');
  assert.equal(toWebVtt([]), 'WEBVTT\n');
  assert.equal(vttTimestamp(0), '00:00:00.000');
  assert.equal(vttTimestamp(59.9996), '00:01:00.000');
  assert.equal(clockTime(83.9), '1:23');
  assert.equal(clockTime(3723), '1:02:03');
  transcript.clear();
  assert.equal(transcript.isEmpty, true);
});

test('sockets go to the server the page came from, same prefix, ws or wss, with the page token', () => {
  assert.equal(socketUrl('v1/stream', { language: 'he', room: null }, { href: 'http://host:8009/' }), 'ws://host:8009/v1/stream?language=he');
  assert.equal(socketUrl('v1/captions', { room: 'a b' }, { href: 'https://example.org/overlay?room=a&token=K%26Y#x' }), 'wss://example.org/v1/captions?room=a+b&token=K%26Y');
  assert.equal(socketUrl('v1/stream', {}, { href: 'https://proxy.example/kol/?token=t' }), 'wss://proxy.example/kol/v1/stream?token=t');
  assert.equal(pageUrl('overlay', { room: 'studio' }, { href: 'http://h:8009/?language=he&token=t' }), 'http://h:8009/overlay?room=studio&token=t');
});

test("the pages check room names by the server's rule", () => {
  assert.equal(ROOM_NAME.source, SERVER_ROOM_NAME.source);
  assert.equal(ROOM_NAME.flags, SERVER_ROOM_NAME.flags);
});
