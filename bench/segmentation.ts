/**
 * How the segmenter cuts real speech, for choosing its endpoint values: no whisper involved, so it
 * runs in seconds. Silero VAD classifies each stream once; every segmenter variant then replays the
 * same probabilities.
 *   node --import tsx bench/segmentation.ts
 * Streams: the shared Hebrew clips joined with breaths of 0.15–0.35 s (continuous) and with pauses of
 * 0.9–2.0 s (paused), where the true sentence ends are known, and asimov.wav (125 s of narration).
 * For each variant and stream: segment count, length p5/p50/p95/max, end reasons, how many segment
 * ends fall inside a clip of the joined stream (at a pause within it) rather than in a gap between clips.
 */
import { decodeAudioFile } from '../engine/audio/wav.js';
import { FRAME_SAMPLES, FrameChunker } from '../engine/vad/frames.js';
import { DEFAULT_SEGMENTER_OPTIONS, Segmenter, type SegmenterEvent, type SegmenterOptions } from '../engine/vad/segmenter.js';
import { SileroVad } from '../engine/vad/silero.js';
import { SAMPLE_RATE, s16ToFloats } from '../engine/audio/format.js';
import { assetPath, clips } from '../corpus/assets.js';
import { CONTINUOUS_GAPS_S, PAUSED_GAPS_S, joinClips, type Utterance } from '../corpus/streams.js';
import { percentile } from './lib/stats.js';

interface Probed {
  name: string;
  frames: Float32Array[];
  probabilities: number[];
  /** Sentence spans (s) where known. */
  utterances: Utterance[];
}

async function probe(name: string, pcm: Float32Array, utterances: Utterance[], vad: SileroVad): Promise<Probed> {
  const stream = vad.createStream();
  const frames = new FrameChunker().push(pcm);
  const probabilities: number[] = [];
  for (const frame of frames) probabilities.push(await stream.process(frame));
  return { name, frames, probabilities, utterances };
}

type End = Extract<SegmenterEvent, { type: 'segment_end' }>;

function replay(p: Probed, options: Partial<SegmenterOptions>): End[] {
  const segmenter = new Segmenter(options);
  const ends: End[] = [];
  p.frames.forEach((frame, i) => {
    for (const e of segmenter.push(frame, p.probabilities[i])) if (e.type === 'segment_end') ends.push(e);
  });
  for (const e of segmenter.end()) if (e.type === 'segment_end') ends.push(e);
  return ends;
}

function row(variant: string, p: Probed, ends: End[]): string {
  const s = (x: number) => x / SAMPLE_RATE;
  const lengths = ends.map((e) => s(e.endSample - e.startSample));
  const reasons = ['silence', 'max_length', 'eof'].map((r) => ends.filter((e) => e.reason === r).length).join(' / ');
  // A segment end inside a clip (not in the gap after it): at a pause within the clip.
  const inside = ends.filter((e) => p.utterances.some((u) => s(e.speechEndSample) > u.start + 0.1 && s(e.speechEndSample) < u.end - 0.1)).length;
  const f = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(2));
  const known = p.utterances.length > 0;
  return `| ${variant} | ${p.name} | ${ends.length} | ${f(percentile(lengths, 5))} / ${f(percentile(lengths, 50))} / ${f(percentile(lengths, 95))} / ${f(Math.max(...lengths))} | ${reasons} | ${known ? inside : '–'} |`;
}

const vad = await SileroVad.load();
const he = clips('he');
const continuous = await joinClips(he, CONTINUOUS_GAPS_S);
const paused = await joinClips(he, PAUSED_GAPS_S);
const asimov = await decodeAudioFile(assetPath('audio', 'he', 'long', 'asimov.wav'));
const streams = [
  await probe('continuous', s16ToFloats(continuous.pcm16), continuous.utterances, vad),
  await probe('paused', s16ToFloats(paused.pcm16), paused.utterances, vad),
  await probe('asimov', asimov.pcm, [], vad),
];
await vad.close();

const fixed = { minEndpointMs: 10_000, earlyCutS: 100 };
const variants: [string, Partial<SegmenterOptions>][] = [
  ['fixed 500 ms endpoint, cut at the cap (before)', { ...fixed, endpointMs: 500 }],
  ['fixed 200 ms endpoint', { ...fixed, endpointMs: 200 }],
  ['defaults', {}],
  ['shrink to 250 ms', { minEndpointMs: 250 }],
  ['shrink to 150 ms', { minEndpointMs: 150 }],
  ['shrink 1→4 s', { shrinkStartS: 1, shrinkEndS: 4 }],
  ['early cut from 6 s', { earlyCutS: 6 }],
  ['early cut from 8 s', { earlyCutS: 8 }],
  ['early cut pause 160 ms', { earlyCutPauseMs: 160 }],
];
console.log(`Segmenter defaults: ${JSON.stringify(DEFAULT_SEGMENTER_OPTIONS)}; frames of ${FRAME_SAMPLES} samples\n`);
console.log('| variant | stream | segments | length p5 / p50 / p95 / max (s) | silence / max_length / eof | ends inside a clip (at a pause within it) |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [name, options] of variants) for (const p of streams) console.log(row(name, p, replay(p, options)));
