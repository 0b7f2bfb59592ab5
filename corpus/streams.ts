/**
 * Streams made of the shared clips, joined with known silences so that the true end of every
 * utterance is known; the benchmarks play them (bench/stream-run.ts) and the tests stream them.
 * Three shapes of speech: `continuous` (sentences joined by breaths, as in a lecture or a newscast),
 * `paused` (a pause after every sentence) and `asimov` (a long narration without a transcript).
 */
import { decodeAudioFile } from '../engine/audio/wav.js';
import { assetPath, clips, type Clip } from './assets.js';
import { floatsToS16, SAMPLE_RATE } from '../engine/audio/format.js';


/** Pauses after each sentence of the paused stream: every segment holds one sentence. */
export const PAUSED_GAPS_S = [0.9, 1.4, 1.1, 2.0];
/** Breaths between the sentences of the continuous stream (0.15–0.35 s, a fixed cycle): shorter than the 500 ms endpoint. */
export const CONTINUOUS_GAPS_S = [0.25, 0.15, 0.35, 0.2, 0.3];
/** 125 s of continuous Hebrew narration, no transcript. */
export const ASIMOV_WAV = assetPath('audio', 'he', 'long', 'asimov.wav');

export type StreamShape = 'continuous' | 'paused' | 'asimov';
export const STREAM_SHAPES: readonly StreamShape[] = ['continuous', 'paused', 'asimov'];
const gapList = (gaps: number[]) => gaps.map((g) => (Number.isInteger(g * 10) ? g.toFixed(1) : String(g))).join('/');
export const SHAPE_AUDIO: Record<StreamShape, string> = {
  continuous: `Hebrew clips joined with breaths of ${gapList(CONTINUOUS_GAPS_S)} s`,
  paused: `Hebrew clips joined with pauses of ${gapList(PAUSED_GAPS_S)} s`,
  asimov: 'asimov.wav, continuous narration without a transcript',
};

export interface Utterance {
  name: string;
  reference: string;
  /** Stream seconds. */
  start: number;
  end: number;
}

export interface BenchStream {
  pcm16: Int16Array;
  /** The known utterances; empty for a recording without a transcript. */
  utterances: Utterance[];
  seconds: number;
  /** Seconds of speech: the utterances' total, or the whole recording where no utterances are marked. */
  speechSeconds: number;
}

/** A clip's audio, mono float32 at 16 kHz. */
export interface ClipAudio {
  name: string;
  reference: string;
  pcm: Float32Array;
}

function toPcm16(target: Int16Array, at: number, pcm: Float32Array): void {
  target.set(floatsToS16(pcm), at);
}

/** Joins clips with silences of the given lengths (cycled: clip i is followed by gapsS[i mod length]), after `leadS` of silence. */
export function joinPcm(parts: ClipAudio[], gapsS: number[], leadS = 0.5): BenchStream {
  let cursor = Math.round(leadS * SAMPLE_RATE);
  const placed = parts.map((part, i) => {
    const at = cursor;
    cursor += part.pcm.length + Math.round(gapsS[i % gapsS.length] * SAMPLE_RATE);
    return at;
  });
  const pcm16 = new Int16Array(cursor);
  const utterances = parts.map((part, i) => {
    toPcm16(pcm16, placed[i], part.pcm);
    return { name: part.name, reference: part.reference, start: placed[i] / SAMPLE_RATE, end: (placed[i] + part.pcm.length) / SAMPLE_RATE };
  });
  return { pcm16, utterances, seconds: cursor / SAMPLE_RATE, speechSeconds: utterances.reduce((sum, u) => sum + u.end - u.start, 0) };
}

export async function loadClips(set: Clip[]): Promise<ClipAudio[]> {
  return Promise.all(set.map(async (clip) => ({ name: clip.name, reference: clip.reference ?? '', pcm: (await decodeAudioFile(clip.wav)).pcm })));
}

/** Joins clips with silences of the given lengths (cycled), leading and trailing silence included. */
export async function joinClips(set: Clip[], gapsS: number[], leadS = 0.5): Promise<BenchStream> {
  return joinPcm(await loadClips(set), gapsS, leadS);
}

export function hebrewBenchStream(gapsS = [0.9, 1.4, 1.1]): Promise<BenchStream> {
  return joinClips(clips('he'), gapsS);
}

/** Client i hears the clips rotated by i, with the gaps cycling, so N clients do not speak in lockstep. */
export async function rotatedBenchStreams(set: Clip[], n: number, gapsS = PAUSED_GAPS_S): Promise<BenchStream[]> {
  const parts = await loadClips(set);
  return Array.from({ length: n }, (_, i) => joinPcm([...parts.slice(i % parts.length), ...parts.slice(0, i % parts.length)], gapsS));
}

/**
 * The middle of the quietest `windowS` window within ±`searchS` of sample `near`: where a recording can be
 * cut without cutting a word.
 */
export function quietestPoint(pcm: Float32Array, near: number, windowS = 0.1, searchS = 5): number {
  const win = Math.round(windowS * SAMPLE_RATE);
  const from = Math.max(0, near - searchS * SAMPLE_RATE);
  const to = Math.min(pcm.length - win, near + searchS * SAMPLE_RATE);
  let best = near;
  let bestEnergy = Infinity;
  for (let at = from; at <= to; at += win / 2) {
    let energy = 0;
    for (let i = at; i < at + win; i++) energy += pcm[i] * pcm[i];
    if (energy < bestEnergy) [best, bestEnergy] = [at + win / 2, energy];
  }
  return best;
}

/**
 * A long recording for n clients: client i hears it rotated to start at a quiet point about i/n of the
 * way in, so N clients do not speak in lockstep; `seconds` keeps only its beginning.
 */
export async function rotatedRecordingStreams(file: string, n: number, options: { seconds?: number; leadS?: number } = {}): Promise<BenchStream[]> {
  const { pcm: whole } = await decodeAudioFile(file);
  const pcm = options.seconds === undefined ? whole : whole.subarray(0, Math.round(options.seconds * SAMPLE_RATE));
  const lead = Math.round((options.leadS ?? 0.5) * SAMPLE_RATE);
  return Array.from({ length: n }, (_, i) => {
    const cut = i === 0 ? 0 : quietestPoint(pcm, Math.round((i / n) * pcm.length));
    const pcm16 = new Int16Array(lead + pcm.length);
    toPcm16(pcm16, lead, pcm.subarray(cut));
    toPcm16(pcm16, lead + pcm.length - cut, pcm.subarray(0, cut));
    return { pcm16, utterances: [], seconds: pcm16.length / SAMPLE_RATE, speechSeconds: pcm.length / SAMPLE_RATE };
  });
}

/** The streams of one shape for n clients: `clips` for the joined shapes, `seconds` to shorten the recording. */
export function shapeStreams(shape: StreamShape, n: number, options: { clips: Clip[]; seconds?: number }): Promise<BenchStream[]> {
  if (shape === 'asimov') return rotatedRecordingStreams(ASIMOV_WAV, n, { seconds: options.seconds });
  return rotatedBenchStreams(options.clips, n, shape === 'continuous' ? CONTINUOUS_GAPS_S : PAUSED_GAPS_S);
}
