/**
 * A whole audio file → its transcript, through the same Silero VAD and transcript guard as live
 * streams, in the manner of faster-whisper's `vad_filter`:
 *   16 kHz mono → VAD probability per 512-sample frame → speech spans (long pauses removed, the rest
 *   padded and kept) → the spans joined into one request → whisper → the guard, per stretch of at most
 *   one streamed segment's length → segment and word times mapped back to the file's own timeline.
 * A file with no speech (silence, noise, tones) is never sent to whisper: it has no words.
 */
import { KolError } from './errors.js';
import { assessTranscript } from './transcript-guard.js';
import { FRAME_SAMPLES } from './vad/frames.js';
import { DEFAULT_SEGMENTER_OPTIONS } from './vad/segmenter.js';
import type { SileroVad } from './vad/silero.js';
import { MIN_AUDIO_SAMPLES } from './whisper/pool.js';
import { SAMPLE_RATE } from './audio/format.js';
import type { TranscribeOptions, Transcriber, Transcript, TranscriptSegment } from './whisper/types.js';

export interface SpanOptions {
  /** Probability at or above which a frame is speech; below `endThreshold` it may end speech (hysteresis). */
  startThreshold: number;
  endThreshold: number;
  /** Consecutive speech frames needed to start speech (rejects clicks). */
  minSpeechMs: number;
  /** A pause at least this long is removed, less the padding on either side; shorter ones are kept whole. */
  minSilenceMs: number;
  /** Audio kept before and after each stretch of speech. */
  padMs: number;
}

/**
 * The streams' VAD thresholds, with faster-whisper's vad_filter defaults for the rest (min_silence_duration_ms
 * 2000, speech_pad_ms 400): only pauses of 2 s or more are cut, each to 0.8 s.
 * Measured with ggml-base-q8_0.bin, beam 5, corpus WER Hebrew / English:
 * - the 12 Hebrew and 6 English shared clips: 0.272 / 0.080 before and after (none has a 2 s pause, and
 *   lead-ins and tails under 2 s are kept, so whisper hears the same audio);
 * - each clip with 3 s of room tone (26 dB under its level) before and after: whole file 0.346 / 0.136,
 *   VAD with 400 ms padding 0.360 / 0.096, with 1000 ms 0.360 / 0.120 (no gain from more padding);
 * - 6 Hebrew clips joined by 3 s of quiet noise (58 s): whole file 0.308, VAD 0.218 (39 s sent).
 * On silence alone whisper loops rather than stopping: 3 s of zeros took over 66 s and timed out.
 */
export const DEFAULT_SPAN_OPTIONS: Readonly<SpanOptions> = Object.freeze({
  startThreshold: DEFAULT_SEGMENTER_OPTIONS.startThreshold,
  endThreshold: DEFAULT_SEGMENTER_OPTIONS.endThreshold,
  minSpeechMs: DEFAULT_SEGMENTER_OPTIONS.minSpeechMs,
  minSilenceMs: 2000,
  padMs: 400,
});

/**
 * The guard judges whisper's text in stretches no longer than a streamed segment, as it does live: its
 * repetition and compression checks are tuned to that length, and over a long file's whole text the
 * compression ratio of ordinary Hebrew alone would exceed them.
 */
const GUARD_STRETCH_S = DEFAULT_SEGMENTER_OPTIONS.maxSegmentS;

/** [start, end) in samples of the file. */
export interface Span {
  start: number;
  end: number;
}

export interface OfflineTranscript {
  /** Empty when the file holds no speech, or whisper's text for it was withheld. */
  text: string;
  /** As whisper names it ("hebrew"); empty when nothing was sent to it. */
  language: string;
  /** Seconds of the file. */
  duration: number;
  /** Seconds of it sent to whisper (speech, with its padding and short pauses). */
  speechSeconds: number;
  /** Whisper's segments that were kept, with times (and word times) in the file's timeline. */
  segments: TranscriptSegment[];
  /** Wall time of the inference request; 0 when nothing was sent. */
  inferenceMs: number;
}

export interface OfflineDeps {
  vad: SileroVad;
  transcriber: Transcriber;
}

/** Transcribes 16 kHz mono audio. Rejects with a KolError (audio_empty, audio_too_short, or the transcriber's). */
export async function transcribeOffline(pcm: Float32Array, deps: OfflineDeps, options: TranscribeOptions = {}): Promise<OfflineTranscript> {
  if (pcm.length === 0) throw new KolError('audio_empty');
  if (pcm.length < MIN_AUDIO_SAMPLES) {
    throw new KolError('audio_too_short', `The audio is ${(pcm.length / SAMPLE_RATE).toFixed(3)} s long; whisper needs at least 0.1 s.`);
  }
  const duration = pcm.length / SAMPLE_RATE;
  const spans = speechSpans(await speechProbabilities(pcm, deps.vad), pcm.length);
  const timeline = new Timeline(spans);
  const silent: OfflineTranscript = { text: '', language: '', duration, speechSeconds: timeline.samples / SAMPLE_RATE, segments: [], inferenceMs: 0 };
  // Under 0.1 s of speech is what a streamed final calls too short: no words.
  if (timeline.samples < MIN_AUDIO_SAMPLES) return silent;

  const transcript = await deps.transcriber.transcribe(timeline.join(pcm), options);
  const kept: Stretch[] = [];
  for (const stretch of guardStretches(transcript, timeline)) {
    const verdict = assessTranscript({ ...transcript, text: stretch.text, segments: stretch.segments });
    if (!verdict.discarded && verdict.text) kept.push({ ...stretch, text: verdict.text });
  }
  // Kept stretches that were neighbours in whisper's text keep its separator (a word split across two
  // segments stays whole); a gap left by a withheld stretch becomes a space.
  let text = '';
  for (const [i, stretch] of kept.entries()) {
    const gap = i === 0 ? '' : transcript.text.slice(kept[i - 1].range[1], stretch.range[0]);
    text += (/^\s*$/.test(gap) ? gap : ' ') + stretch.text;
  }
  return {
    ...silent,
    text,
    language: transcript.language,
    segments: kept.flatMap((s) => s.segments).map((segment) => timeline.segmentToFile(segment)),
    inferenceMs: transcript.inferenceMs,
  };
}

/** The VAD's speech probability for each 512-sample frame of `pcm` (the last frame zero-padded). */
async function speechProbabilities(pcm: Float32Array, vad: SileroVad): Promise<Float32Array> {
  const stream = vad.createStream();
  const frames = Math.ceil(pcm.length / FRAME_SAMPLES);
  const probabilities = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    const start = i * FRAME_SAMPLES;
    let frame = pcm.subarray(start, start + FRAME_SAMPLES);
    if (frame.length < FRAME_SAMPLES) {
      const padded = new Float32Array(FRAME_SAMPLES);
      padded.set(frame);
      frame = padded;
    }
    probabilities[i] = await stream.process(frame);
  }
  return probabilities;
}

/**
 * Where speech is, from one probability per frame: the streams' start rule and hysteresis (as in the
 * segmenter), pauses of at least minSilenceMs ending speech, then each stretch padded by padMs and
 * overlapping ones merged. Spans are in samples, clipped to `totalSamples`, sorted and disjoint.
 */
export function speechSpans(probabilities: ArrayLike<number>, totalSamples: number, options: Partial<SpanOptions> = {}): Span[] {
  const o = { ...DEFAULT_SPAN_OPTIONS, ...options };
  const frames = (ms: number) => Math.max(1, Math.ceil((ms * SAMPLE_RATE) / 1000 / FRAME_SAMPLES - 1e-9));
  const minSpeech = frames(o.minSpeechMs);
  const minSilence = frames(o.minSilenceMs);
  const pad = o.padMs > 0 ? frames(o.padMs) : 0;

  const speech: [number, number][] = [];
  let open: number | null = null;
  let run = 0;
  let quietSince: number | null = null;
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i];
    if (open === null) {
      run = p >= o.startThreshold ? run + 1 : 0;
      if (run >= minSpeech) {
        open = i + 1 - run;
        quietSince = null;
        run = 0;
      }
      continue;
    }
    if (p >= o.startThreshold) quietSince = null;
    else if (!(p >= o.endThreshold) && quietSince === null) quietSince = i; // NaN counts as quiet
    if (quietSince !== null && i + 1 - quietSince >= minSilence) {
      speech.push([open, quietSince]);
      open = null;
    }
  }
  if (open !== null) speech.push([open, quietSince ?? probabilities.length]);

  // The file's start and end are pauses too: a lead-in or a tail shorter than minSilenceMs is kept
  // whole. (Trimming even 32–96 ms before tightly cut clips changed 3 of the 12 Hebrew transcripts.)
  const spans: Span[] = [];
  for (const [from, to] of speech) {
    const start = from < minSilence ? 0 : (from - pad) * FRAME_SAMPLES;
    const end = probabilities.length - to < minSilence ? totalSamples : Math.min(totalSamples, (to + pad) * FRAME_SAMPLES);
    const last = spans.at(-1);
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else if (end > start) spans.push({ start, end });
  }
  return spans;
}

/** The spans of a file joined end to end, and the way back from a time in the join to the file's time. */
class Timeline {
  /** Where each span starts in the joined audio. */
  private readonly offsets: number[] = [];
  readonly samples: number;

  constructor(private readonly spans: Span[]) {
    let at = 0;
    for (const span of spans) {
      this.offsets.push(at);
      at += span.end - span.start;
    }
    this.samples = at;
  }

  join(pcm: Float32Array): Float32Array {
    if (this.spans.length === 1 && this.samples === pcm.length) return pcm;
    const out = new Float32Array(this.samples);
    this.spans.forEach((span, i) => out.set(pcm.subarray(span.start, span.end), this.offsets[i]));
    return out;
  }

  /** Which span a time (s, in the joined audio) falls in; an end time on a join belongs to the span before. */
  spanOf(seconds: number, isEnd = false): number {
    const sample = seconds * SAMPLE_RATE;
    for (let i = 0; i < this.spans.length - 1; i++) {
      const end = this.offsets[i + 1];
      if (isEnd ? sample <= end : sample < end) return i;
    }
    return this.spans.length - 1;
  }

  /**
   * A start and end in the joined audio as times in the file (s, to the ms). The end is placed in the
   * start's span or a later one, never before the start: whisper's times for a word at a join can be
   * a little out of order.
   */
  toFile(start: number, end: number): [number, number] {
    const first = this.spanOf(start);
    const from = this.place(start, first);
    return [from, Math.max(from, this.place(end, Math.max(first, this.spanOf(end, true))))];
  }

  segmentToFile(segment: TranscriptSegment): TranscriptSegment {
    const [start, end] = this.toFile(segment.start, segment.end);
    const words = segment.words.map((w) => {
      const [wordStart, wordEnd] = this.toFile(w.start, w.end);
      return { ...w, start: wordStart, end: wordEnd };
    });
    return { ...segment, start, end, words };
  }

  /** A time in the joined audio, inside span `i`, as a time in the file. */
  private place(seconds: number, i: number): number {
    const span = this.spans[i];
    const sample = span.start + Math.min(Math.max(0, seconds * SAMPLE_RATE - this.offsets[i]), span.end - span.start);
    return Math.round((sample / SAMPLE_RATE) * 1000) / 1000;
  }
}

interface Stretch {
  segments: TranscriptSegment[];
  /** The stretch's text, as it stands in the transcript's text at `range`. */
  text: string;
  range: [number, number];
}

/**
 * Whisper's segments in runs for the guard: a run ends where speech in the file paused (a span ends)
 * or where it would grow past GUARD_STRETCH_S.
 */
function guardStretches(transcript: Transcript, timeline: Timeline): Stretch[] {
  const ranges = textRanges(transcript);
  const stretches: (Stretch & { span: number; start: number })[] = [];
  for (const [i, segment] of transcript.segments.entries()) {
    const span = timeline.spanOf(segment.start);
    let current = stretches.at(-1);
    if (!current || span !== current.span || segment.end - current.start > GUARD_STRETCH_S) {
      current = { segments: [], text: '', range: [ranges[i][0], ranges[i][0]], span, start: segment.start };
      stretches.push(current);
    }
    current.segments.push(segment);
    current.range[1] = ranges[i][1];
    current.text = transcript.text.slice(current.range[0], current.range[1]);
  }
  return stretches;
}

/**
 * Where each segment's text lies in the transcript's text, which is the segments' texts in order with
 * whitespace collapsed (engine/whisper/client.ts). A segment not found there (never expected) gets an
 * empty range at the position reached, so it is judged with its neighbours' text.
 */
function textRanges(transcript: Transcript): [number, number][] {
  let at = 0;
  return transcript.segments.map((segment) => {
    const text = segment.text.replace(/\s+/g, ' ').trim();
    const found = text ? transcript.text.indexOf(text, at) : -1;
    if (found < 0) return [at, at];
    at = found + text.length;
    return [found, at];
  });
}
