/**
 * Benchmark streams: shared clips joined with known silences, so the true end of every utterance is
 * known, and a driver that plays one to a server at real-time pace and times what comes back.
 */
import { decodeAudioFile } from '../engine/audio/wav.js';
import { corpusWer } from '../engine/wer.js';
import { streamAudio } from '../clients/cli/stream-client.js';
import type { ServerMessage } from '../server/protocol.js';
import { clips, type Clip } from '../test/helpers/assets.js';

const RATE = 16_000;

export interface Utterance {
  name: string;
  reference: string;
  /** Stream seconds. */
  start: number;
  end: number;
}

export interface BenchStream {
  pcm16: Int16Array;
  utterances: Utterance[];
  seconds: number;
}

/** Joins clips with silences of the given lengths (cycled), leading and trailing silence included. */
export async function joinClips(set: Clip[], gapsS: number[], leadS = 0.5): Promise<BenchStream> {
  const parts: Float32Array[] = [new Float32Array(Math.round(leadS * RATE))];
  const utterances: Utterance[] = [];
  let cursor = parts[0].length;
  for (const [i, clip] of set.entries()) {
    const { pcm } = await decodeAudioFile(clip.wav);
    utterances.push({ name: clip.name, reference: clip.reference ?? '', start: cursor / RATE, end: (cursor + pcm.length) / RATE });
    parts.push(pcm);
    cursor += pcm.length;
    const gap = new Float32Array(Math.round(gapsS[i % gapsS.length] * RATE));
    parts.push(gap);
    cursor += gap.length;
  }
  const pcm16 = new Int16Array(cursor);
  let at = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) pcm16[at + i] = Math.max(-32768, Math.min(32767, Math.round(part[i] * 32767)));
    at += part.length;
  }
  return { pcm16, utterances, seconds: cursor / RATE };
}

/** Breaths between sentences of someone who talks on (a lecture, a broadcast): 0.15–0.35 s. */
export const CONTINUOUS_GAPS_S = [0.25, 0.15, 0.35, 0.2, 0.3];
/** Pauses of someone who stops between sentences: 0.9–2.0 s. */
export const PAUSED_GAPS_S = [0.9, 1.4, 1.1, 2.0];

export function hebrewBenchStream(gapsS = [0.9, 1.4, 1.1]): Promise<BenchStream> {
  return joinClips(clips('he'), gapsS);
}

/** Client i hears the clips rotated by i, with the pauses cycling, so N clients do not speak in lockstep. */
export function rotatedBenchStreams(set: Clip[], n: number): Promise<BenchStream[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => joinClips([...set.slice(i % set.length), ...set.slice(0, i % set.length)], [0.9, 1.4, 1.1, 2.0])));
}

export interface FinalTiming {
  utterance: string;
  /** True end of speech (the utterance's last sample sent) → the final that covers it received. */
  endOfSpeechToFinalMs: number;
  /** The server's own figure. */
  serverLatencyMs: number;
  /** The segment's last audio (its end, trailing pause included) sent → its final received: the work left once the segment closed. */
  segmentEndToFinalMs: number;
  /** The server's breakdown: the final's inference, and the rest after the segment closed (queueing). */
  inferenceMs: number;
  queueMs: number;
}

export interface StreamRun {
  finals: FinalTiming[];
  /** Speech start → first partial of each segment (ms). */
  firstPartialMs: number[];
  /** Gaps between consecutive partials of a segment, in seconds of audio sent. */
  partialGapsS: number[];
  /** Per utterance: its first audio sent → the first text (partial or final) covering it received (ms). */
  firstTextMs: number[];
  /** Utterances that no final covered. */
  unfinalized: number;
  wer: number;
  hypothesis: string;
  partials: number;
}

/** Plays a bench stream to `url` at `speed` × real time and measures it. */
export async function runStream(url: string, stream: BenchStream, speed = 1): Promise<StreamRun> {
  // When the audio up to stream second s was sent: the clock for "end of speech".
  const sentAt: Array<{ s: number; at: number }> = [];
  const received: Array<{ message: ServerMessage; at: number; sentSeconds: number }> = [];
  const result = await streamAudio({
    url,
    audio: new Uint8Array(stream.pcm16.buffer, stream.pcm16.byteOffset, stream.pcm16.byteLength),
    speed,
    chunkMs: 40,
    onChunkSent: (s, at) => sentAt.push({ s, at }),
    onMessage: (message, at) => received.push({ message, at, sentSeconds: sentAt.at(-1)?.s ?? 0 }),
  });
  const whenSent = (s: number) => sentAt.find((x) => x.s >= s)?.at ?? result.lastAudioAt;

  const finals = received.filter((r): r is typeof r & { message: Extract<ServerMessage, { type: 'final' }> } => r.message.type === 'final');
  const timings: FinalTiming[] = [];
  for (const u of stream.utterances) {
    // The final that covers the utterance's end: the first whose segment reaches it.
    const covering = finals.find((f) => f.message.end >= u.end - 0.25 && f.message.start < u.end);
    if (!covering) continue;
    timings.push({
      utterance: u.name,
      endOfSpeechToFinalMs: covering.at - whenSent(u.end),
      serverLatencyMs: covering.message.latency_ms,
      segmentEndToFinalMs: covering.at - whenSent(covering.message.end),
      inferenceMs: covering.message.inference_ms,
      queueMs: covering.message.queue_ms,
    });
  }

  const firstTextMs: number[] = [];
  for (const u of stream.utterances) {
    const startedAt = whenSent(u.start);
    const first = received.find((r) => {
      if (r.at < startedAt) return false;
      if (r.message.type === 'final') return r.message.text !== '' && r.message.start < u.end && r.message.end > u.start;
      return r.message.type === 'partial' && r.message.start < u.end && r.sentSeconds > u.start;
    });
    if (first) firstTextMs.push(first.at - startedAt);
  }

  const firstPartialMs: number[] = [];
  const partialGapsS: number[] = [];
  const bySegment = new Map<number, typeof received>();
  for (const r of received) {
    if (r.message.type !== 'partial' && r.message.type !== 'speech_start') continue;
    const list = bySegment.get(r.message.segment_id) ?? [];
    list.push(r);
    bySegment.set(r.message.segment_id, list);
  }
  for (const list of bySegment.values()) {
    const start = list.find((r) => r.message.type === 'speech_start');
    const partials = list.filter((r) => r.message.type === 'partial');
    if (start && partials.length > 0) firstPartialMs.push(partials[0].at - start.at);
    for (let i = 1; i < partials.length; i++) partialGapsS.push(partials[i].sentSeconds - partials[i - 1].sentSeconds);
  }

  const hypothesis = finals.map((f) => f.message.text).join(' ');
  const reference = stream.utterances.map((u) => u.reference).join(' ');
  return {
    finals: timings,
    firstPartialMs,
    partialGapsS,
    firstTextMs,
    unfinalized: stream.utterances.length - timings.length,
    wer: corpusWer([{ reference, hypothesis }]).wer,
    hypothesis,
    partials: received.filter((r) => r.message.type === 'partial').length,
  };
}

/** Plays `streams` to `url` at once, client i starting `staggerMs`·i later, so they do not speak in lockstep. */
export function runStaggered(url: string, streams: BenchStream[], staggerMs = 250): Promise<StreamRun[]> {
  return Promise.all(
    streams.map(async (stream, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * staggerMs));
      return runStream(url, stream);
    }),
  );
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
