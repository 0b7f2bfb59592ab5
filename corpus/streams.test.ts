/** The bench streams: utterance bounds exact to the sample, nothing lost or added, the gap cycles as documented. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { floatToS16 } from '../engine/audio/format.js';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { clips } from './assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { ASIMOV_WAV, CONTINUOUS_GAPS_S, joinPcm, PAUSED_GAPS_S, quietestPoint, rotatedRecordingStreams, shapeStreams, type BenchStream } from './streams.js';

const RATE = 16_000;

/** Every sample of the stream is either inside exactly one utterance, equal to its clip's sample, or silence. */
function assertExact(stream: BenchStream, pcms: Float32Array[], gapsS: number[], leadS: number): void {
  let cursor = Math.round(leadS * RATE);
  for (const [i, u] of stream.utterances.entries()) {
    // Seconds are sample index / rate: exact up to the float's last bit.
    assert.ok(Math.abs(u.start * RATE - cursor) < 1e-6, `utterance ${i} starts where the previous gap ends`);
    assert.ok(Math.abs(u.end * RATE - (cursor + pcms[i].length)) < 1e-6, `utterance ${i} ends after exactly its clip's samples`);
    for (let k = 0; k < pcms[i].length; k++) if (stream.pcm16[cursor + k] !== floatToS16(pcms[i][k])) assert.fail(`utterance ${i}, sample ${k} differs`);
    cursor += pcms[i].length;
    const gap = Math.round(gapsS[i % gapsS.length] * RATE);
    for (let k = 0; k < gap; k++) if (stream.pcm16[cursor + k] !== 0) assert.fail(`gap after utterance ${i} is not silent at sample ${k}`);
    cursor += gap;
  }
  assert.equal(stream.pcm16.length, cursor, 'no sample lost or added');
  assert.ok(Math.abs(stream.seconds * RATE - cursor) < 1e-6);
  assert.ok(Math.abs(stream.speechSeconds - pcms.reduce((sum, p) => sum + p.length, 0) / RATE) < 1e-9);
}

test('joinPcm: utterance bounds exact to the sample, gaps cycled, no sample lost (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.float({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true }).filter((x) => Math.abs(x) > 1e-3), { minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.double({ min: 0.15, max: 0.35, noNaN: true }), { minLength: 1, maxLength: 5 }),
      fc.double({ min: 0, max: 0.5, noNaN: true }),
      (clipSamples, gapsS, leadS) => {
        const pcms = clipSamples.map((x) => Float32Array.from(x));
        const stream = joinPcm(pcms.map((pcm, i) => ({ name: `c${i}`, reference: `w${i}`, pcm })), gapsS, leadS);
        assertExact(stream, pcms, gapsS, leadS);
      },
    ),
  );
});

test('the continuous stream: the 12 Hebrew clips joined by breaths of 0.15–0.35 s, rotated per client', async (t) => {
  const set = clips('he');
  if (!haveAssets(t, ...set.map((c) => c.wav)) || set.length === 0) return;
  assert.ok(CONTINUOUS_GAPS_S.every((g) => g >= 0.15 && g <= 0.35) && PAUSED_GAPS_S.every((g) => g >= 0.9 && g <= 2.0));
  const pcms = await Promise.all(set.map(async (c) => (await decodeAudioFile(c.wav)).pcm));
  const streams = await shapeStreams('continuous', 3, { clips: set });
  assertExact(streams[0], pcms, CONTINUOUS_GAPS_S, 0.5);
  assert.deepEqual(streams[0].utterances.map((u) => u.reference), set.map((c) => c.reference));
  // Client i hears the clips rotated by i: the same clips, the same length, another order.
  for (const [i, stream] of streams.entries()) {
    assert.equal(stream.utterances[0].name, set[i].name);
    assert.deepEqual(stream.utterances.map((u) => u.name).sort(), set.map((c) => c.name).sort());
    assertExact(stream, [...pcms.slice(i), ...pcms.slice(0, i)], CONTINUOUS_GAPS_S, 0.5);
  }
  const paused = await shapeStreams('paused', 1, { clips: set });
  assertExact(paused[0], pcms, PAUSED_GAPS_S, 0.5);
});

test('quietestPoint finds the silence in a loud signal', () => {
  const pcm = Float32Array.from({ length: 10 * RATE }, (_, i) => (i >= 6 * RATE && i < 6.3 * RATE ? 0 : Math.sin(i / 7) * 0.5));
  const cut = quietestPoint(pcm, 5 * RATE);
  assert.ok(cut > 6 * RATE && cut < 6.3 * RATE, `cut at ${cut / RATE} s`);
});

test('asimov.wav for N clients: each a rotation of the whole recording, cut at a quiet point', async (t) => {
  if (!haveAssets(t, ASIMOV_WAV)) return;
  const { pcm } = await decodeAudioFile(ASIMOV_WAV);
  const original = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) original[i] = floatToS16(pcm[i]);
  const streams = await rotatedRecordingStreams(ASIMOV_WAV, 4);
  const lead = 0.5 * RATE;
  for (const [i, stream] of streams.entries()) {
    assert.equal(stream.utterances.length, 0);
    assert.equal(stream.pcm16.length, lead + pcm.length, 'no sample lost or added');
    assert.ok(stream.pcm16.subarray(0, lead).every((v) => v === 0));
    const body = stream.pcm16.subarray(lead);
    // Find the rotation: where the original's first samples landed.
    const cut = i === 0 ? 0 : pcm.length - body.findIndex((_, k) => k > 0 && body.subarray(k, k + 64).every((v, j) => v === original[j]));
    assert.ok(Math.abs(cut - (i / 4) * pcm.length) <= 5 * RATE, `client ${i} starts near ${i}/4 of the way in`);
    for (let k = 0; k < pcm.length; k++) if (body[k] !== original[(k + cut) % pcm.length]) assert.fail(`client ${i}: sample ${k} is not the recording's ${(k + cut) % pcm.length}`);
  }
  const short = await rotatedRecordingStreams(ASIMOV_WAV, 1, { seconds: 10 });
  assert.equal(short[0].pcm16.length, lead + 10 * RATE);
});
