/**
 * Plays a corpus stream (corpus/streams.ts) to a server at real-time pace and times what comes back:
 * end of speech → final, first partials, and the WER of the finals.
 */
import { streamAudio } from '../clients/cli/stream-client.js';
import type { BenchStream } from '../corpus/streams.js';
import { corpusWer } from '../engine/wer.js';
import type { ServerMessage } from '../server/dialects/protocol.js';

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

type FinalMessage = Extract<ServerMessage, { type: 'final' }>;

/** Every final received, covering a known utterance or not. */
export interface FinalRecord {
  /** Stream seconds of the final's segment. */
  start: number;
  end: number;
  reason: FinalMessage['reason'];
  /** The server's figures. */
  latencyMs: number;
  inferenceMs: number;
  queueMs: number;
  /** Decoded more cheaply than the default because finals queued (`decoding.degraded`; absent = not degraded). */
  degraded: boolean;
}

/** `decoding` is read structurally: servers that do not report it decode every final the default way. */
function isDegraded(final: FinalMessage): boolean {
  return (final as { decoding?: { degraded?: unknown } }).decoding?.degraded === true;
}

export interface StreamRun {
  finals: FinalTiming[];
  /** Every final, in the order received. */
  segments: FinalRecord[];
  /** Speech start → first partial of each segment (ms). */
  firstPartialMs: number[];
  /** Gaps between consecutive partials of a segment, in seconds of audio sent. */
  partialGapsS: number[];
  /** Per utterance: its first audio sent → the first text (partial or final) covering it received (ms). */
  firstTextMs: number[];
  /** Utterances that no final covered. */
  unfinalized: number;
  /** NaN for a stream without a transcript. */
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

  const finals = received.filter((r): r is typeof r & { message: FinalMessage } => r.message.type === 'final');
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
    segments: finals.map(({ message: f }) => ({
      start: f.start,
      end: f.end,
      reason: f.reason,
      latencyMs: f.latency_ms,
      inferenceMs: f.inference_ms,
      queueMs: f.queue_ms,
      degraded: isDegraded(f),
    })),
    firstPartialMs,
    partialGapsS,
    firstTextMs,
    unfinalized: stream.utterances.length - timings.length,
    wer: stream.utterances.length > 0 ? corpusWer([{ reference, hypothesis }]).wer : NaN,
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
