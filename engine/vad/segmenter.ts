/**
 * Turns a stream of (512-sample frame, speech probability) pairs into speech segments for whisper.
 * Pure and synchronous: no I/O, no clocks; every position is a sample index in the stream's 16 kHz
 * timeline (seconds = samples / SAMPLE_RATE), counted from the first frame pushed.
 *
 * Rules:
 * - Speech starts after `minSpeechMs` of consecutive frames with probability ≥ startThreshold. The
 *   wait only delays the `speech_start` event, never the audio: the qualifying frames and up to
 *   `preRollMs` before them are in the segment. It rejects clicks and single-frame blips.
 * - Speech ends an endpoint after the first frame below endThreshold, unless a frame at or above
 *   startThreshold comes first (frames in between neither end nor resume speech: hysteresis, as in
 *   Silero's own get_speech_timestamps). `speechEndSample` is that first quiet frame.
 * - The endpoint shrinks as the segment grows, because people who talk on (a lecture, a broadcast)
 *   breathe for 0.1–0.4 s between sentences and rarely pause for the full endpoint: it is `endpointMs`
 *   while the segment (up to the pause) is shorter than `shrinkStartS`, falls linearly to
 *   `minEndpointMs` at `shrinkEndS`, and from `earlyCutS` on any pause of `earlyCutPauseMs` ends the
 *   segment, so a long one ends at a breath before the cap instead of being cut at it. Each pause is
 *   judged by the segment's length where it began, so the rule never depends on how long it lasts.
 * - A segment's audio is pre-roll + speech + `tailPadMs` of the silence after it. The rest of the
 *   silence is kept only as the next segment's pre-roll.
 * - No segment is longer than `maxSegmentS`. When an open segment reaches the cap it is cut after the
 *   frame of lowest probability among its last `cutSearchS` seconds (the likeliest pause between
 *   words); the first part ends with reason 'max_length' and the rest continues at once as a new
 *   segment (a new `speech_start`) — unless the cut fell in a pause that is still going on, in which
 *   case speech has ended (speechEndSample = start of the pause) and the rest waits as pre-roll.
 * - Segments never overlap: pre-roll never reaches back past the end of the previous segment, so no
 *   sample is sent twice; the two parts of a cut through speech are contiguous.
 * - Memory is bounded: a fixed ring of pre-roll frames while idle, at most maxSegmentS of audio while
 *   a segment is open.
 */
import { KolError } from '../errors.js';
import { FRAME_SAMPLES } from './frames.js';
import { SAMPLE_RATE } from '../audio/format.js';

const FRAME_MS = (FRAME_SAMPLES * 1000) / SAMPLE_RATE;

export interface SegmenterOptions {
  /** Probability at or above which a frame is speech. */
  startThreshold: number;
  /** Probability below which a frame, during speech, starts the endpoint count (hysteresis). */
  endThreshold: number;
  /** Consecutive speech frames needed to start a segment. */
  minSpeechMs: number;
  /** Silence that ends a short segment (up to shrinkStartS). */
  endpointMs: number;
  /** Silence that ends a segment of shrinkEndS or more (at most endpointMs: the smaller wins). */
  minEndpointMs: number;
  /** Segment length (s, up to the pause) from which the endpoint starts to shrink... */
  shrinkStartS: number;
  /** ...reaching minEndpointMs here. */
  shrinkEndS: number;
  /** Segment length (s) from which a pause of earlyCutPauseMs ends it: a breath near the cap. */
  earlyCutS: number;
  earlyCutPauseMs: number;
  /** Audio kept before the speech start, so the first phoneme is not clipped. */
  preRollMs: number;
  /** Silence kept after the speech end, so the last word is not clipped. At most endpointMs. */
  tailPadMs: number;
  /** Longest segment, pre-roll and tail included. */
  maxSegmentS: number;
  /** How far back from the cap to look for the quietest frame to cut at. */
  cutSearchS: number;
}

/**
 * Durations are whole 32 ms frames (ms are rounded up to frames, maxSegmentS down). The endpoint
 * values are the server's defaults, chosen by measurement on continuous and paused Hebrew
 * (`node --import tsx bench/segmentation.ts`, bench/RESULTS.md "Segmentation").
 * preRollMs 512 rather than 320: on the joined Hebrew test stream Whisper dropped first words of
 * tightly cut segments, and the longer lead-in took the streamed WER from 0.324 to 0.265.
 */
export const DEFAULT_SEGMENTER_OPTIONS: Readonly<SegmenterOptions> = Object.freeze({
  startThreshold: 0.5,
  endThreshold: 0.35,
  minSpeechMs: 96,
  endpointMs: 500,
  minEndpointMs: 200,
  shrinkStartS: 2,
  shrinkEndS: 5,
  earlyCutS: 7,
  earlyCutPauseMs: 96,
  preRollMs: 512,
  tailPadMs: 160,
  maxSegmentS: 10,
  cutSearchS: 2,
});

/** Why a segment ended: a pause, the length limit, the client's flush, the end of the stream. */
export const SEGMENT_END_REASONS = ['silence', 'max_length', 'flush', 'eof'] as const;
export type SegmentEndReason = (typeof SEGMENT_END_REASONS)[number];

export type SegmenterEvent =
  | {
      type: 'speech_start';
      segmentId: number;
      /** First sample of the segment's audio (pre-roll included). */
      startSample: number;
      /** Where the VAD found speech to begin (after a cut: the cut). */
      speechStartSample: number;
    }
  | {
      type: 'segment_end';
      segmentId: number;
      /** Mono 16 kHz; exactly the stream's samples [startSample, endSample). */
      audio: Float32Array;
      startSample: number;
      endSample: number;
      reason: SegmentEndReason;
      /** Where the VAD decided speech ended (the first quiet frame, or the cut / the end of input). */
      speechEndSample: number;
    };

export interface OpenSegment {
  segmentId: number;
  /** The audio so far, from startSample. */
  audio: Float32Array;
  startSample: number;
}

export interface PendingEnd {
  segmentId: number;
  /** Exactly the audio the segment_end will carry if the pause reaches the endpoint. */
  audio: Float32Array;
  startSample: number;
  endSample: number;
  speechEndSample: number;
}

interface Frames {
  segmentId: number;
  startSample: number;
  audio: SampleBuffer;
  probabilities: number[];
  /** Start of the current run of quiet frames, or null while speech goes on. */
  quietSince: number | null;
}

export class Segmenter {
  private readonly startThreshold: number;
  private readonly endThreshold: number;
  private readonly minSpeechFrames: number;
  private readonly endpointFrames: number;
  private readonly minEndpointFrames: number;
  private readonly shrinkStartFrames: number;
  private readonly shrinkEndFrames: number;
  private readonly earlyCutFrames: number;
  private readonly earlyCutPauseFrames: number;
  private readonly preRollFrames: number;
  private readonly tailFrames: number;
  private readonly maxFrames: number;
  private readonly cutSearchFrames: number;

  private samplesSeen = 0;
  private nextSegmentId = 0;
  private ended = false;
  /**
   * Idle: recent frames, for pre-roll and for the frames that qualified the start. It only ever holds
   * frames after the end of the last segment, which is what keeps segments from overlapping.
   */
  private readonly ring: FrameRing;
  /** Idle: consecutive frames at or above startThreshold. */
  private speechRun = 0;
  private open: Frames | null = null;

  constructor(options: Partial<SegmenterOptions> = {}) {
    const o = { ...DEFAULT_SEGMENTER_OPTIONS, ...options };
    const frames = (ms: number) => Math.ceil(ms / FRAME_MS - 1e-9);
    this.startThreshold = o.startThreshold;
    this.endThreshold = o.endThreshold;
    this.minSpeechFrames = Math.max(1, frames(o.minSpeechMs));
    this.endpointFrames = Math.max(1, frames(o.endpointMs));
    this.minEndpointFrames = Math.max(1, Math.min(this.endpointFrames, frames(o.minEndpointMs)));
    this.shrinkStartFrames = frames(o.shrinkStartS * 1000);
    this.shrinkEndFrames = Math.max(this.shrinkStartFrames, frames(o.shrinkEndS * 1000));
    this.earlyCutFrames = frames(o.earlyCutS * 1000);
    this.earlyCutPauseFrames = Math.max(1, Math.min(this.minEndpointFrames, frames(o.earlyCutPauseMs)));
    this.preRollFrames = frames(o.preRollMs);
    this.tailFrames = frames(o.tailPadMs);
    this.maxFrames = Math.floor((o.maxSegmentS * 1000) / FRAME_MS + 1e-9);
    this.cutSearchFrames = Math.max(1, frames(o.cutSearchS * 1000));

    const problem =
      !(o.startThreshold > 0 && o.startThreshold <= 1) ? `startThreshold must be in (0, 1], not ${o.startThreshold}`
      : !(o.endThreshold > 0 && o.endThreshold <= o.startThreshold) ? `endThreshold must be in (0, startThreshold], not ${o.endThreshold}`
      : this.tailFrames > this.endpointFrames ? `tailPadMs (${o.tailPadMs}) must not exceed endpointMs (${o.endpointMs})`
      : this.maxFrames <= this.preRollFrames + this.minSpeechFrames + this.cutSearchFrames
        ? `maxSegmentS (${o.maxSegmentS}) must exceed preRollMs + minSpeechMs + cutSearchS`
      : null;
    if (problem) throw new KolError('invalid_config', `Invalid segmenter options: ${problem}.`);
    this.ring = new FrameRing(this.preRollFrames + this.minSpeechFrames);
  }

  /** Feeds the next frame (512 samples at 16 kHz) and its speech probability. */
  push(frame: Float32Array, probability: number): SegmenterEvent[] {
    if (this.ended) throw new Error('Segmenter.push was called after end()');
    if (frame.length !== FRAME_SAMPLES) throw new RangeError(`A frame must hold ${FRAME_SAMPLES} samples, not ${frame.length}.`);
    const frameStart = this.samplesSeen;
    this.samplesSeen += FRAME_SAMPLES;
    return this.open ? this.continueSegment(this.open, frame, probability, frameStart) : this.watchForSpeech(frame, probability);
  }

  /** Ends the open segment now (reason 'flush'); the stream goes on. */
  flush(): SegmenterEvent[] {
    return this.open ? [this.finish(this.open, 'flush')] : [];
  }

  /** End of stream: ends the open segment (reason 'eof'). No push after it. */
  end(): SegmenterEvent[] {
    const events = this.open ? [this.finish(this.open, 'eof')] : [];
    this.ended = true;
    return events;
  }

  /**
   * The open segment's audio so far (for partial transcripts), or null when none is open. `audio` is a
   * view of samples that never change (the buffer is append-only and never reused): keep it as long as
   * needed, but do not write to it.
   */
  openSegment(): OpenSegment | null {
    if (!this.open) return null;
    return { segmentId: this.open.segmentId, audio: this.open.audio.view(0, this.open.audio.length), startSample: this.open.startSample };
  }

  /**
   * While the open segment is in a pause that has already outlasted the tail pad: the segment as it
   * will end if the pause reaches the endpoint (same audio, endSample and speechEndSample as that
   * segment_end, unless the length cap cuts it first), so its final transcript can start early.
   * Null otherwise; speech resuming clears it. `audio` is a view, as in openSegment().
   */
  pendingEnd(): PendingEnd | null {
    const segment = this.open;
    if (!segment || segment.quietSince === null) return null;
    const endSample = segment.quietSince + this.tailFrames * FRAME_SAMPLES;
    if (endSample > this.samplesSeen) return null;
    return {
      segmentId: segment.segmentId,
      audio: segment.audio.view(0, endSample - segment.startSample),
      startSample: segment.startSample,
      endSample,
      speechEndSample: segment.quietSince,
    };
  }

  private watchForSpeech(frame: Float32Array, probability: number): SegmenterEvent[] {
    this.ring.push(frame, probability);
    this.speechRun = probability >= this.startThreshold ? this.speechRun + 1 : 0;
    if (this.speechRun < this.minSpeechFrames) return [];

    const speechStart = this.samplesSeen - this.speechRun * FRAME_SAMPLES;
    const oldestHeld = this.samplesSeen - this.ring.size * FRAME_SAMPLES;
    const startSample = Math.max(speechStart - this.preRollFrames * FRAME_SAMPLES, oldestHeld);
    const segment = this.openAt(startSample);
    for (const held of this.ring.takeLast((this.samplesSeen - startSample) / FRAME_SAMPLES)) {
      segment.audio.append(held.audio);
      segment.probabilities.push(held.probability);
    }
    this.speechRun = 0;
    return [{ type: 'speech_start', segmentId: segment.segmentId, startSample, speechStartSample: speechStart }];
  }

  private continueSegment(segment: Frames, frame: Float32Array, probability: number, frameStart: number): SegmenterEvent[] {
    segment.audio.append(frame);
    segment.probabilities.push(probability);
    if (probability >= this.startThreshold) segment.quietSince = null;
    else if (probability < this.endThreshold && segment.quietSince === null) segment.quietSince = frameStart;

    if (segment.quietSince !== null && this.samplesSeen - segment.quietSince >= this.endpointFramesAt(segment.quietSince - segment.startSample) * FRAME_SAMPLES) {
      return [this.finish(segment, 'silence')];
    }
    if (segment.probabilities.length >= this.maxFrames) return this.cut(segment);
    return [];
  }

  /** The pause (frames) that ends a segment holding `samples` of audio before the pause: see the header. */
  private endpointFramesAt(samples: number): number {
    const length = samples / FRAME_SAMPLES;
    if (length >= this.earlyCutFrames) return this.earlyCutPauseFrames;
    if (length <= this.shrinkStartFrames) return this.endpointFrames;
    if (length >= this.shrinkEndFrames) return this.minEndpointFrames;
    const progress = (length - this.shrinkStartFrames) / (this.shrinkEndFrames - this.shrinkStartFrames);
    return Math.round(this.endpointFrames - progress * (this.endpointFrames - this.minEndpointFrames));
  }

  /**
   * Ends `segment` at its speech end plus the tail pad; later frames go back to the pre-roll ring.
   * At the end of the stream nothing follows, so the segment keeps all of its audio: a pause shorter
   * than the endpoint may still hold the soft end of the last word.
   */
  private finish(segment: Frames, reason: SegmentEndReason): SegmenterEvent {
    const speechEnd = segment.quietSince ?? this.samplesSeen;
    const endSample = reason === 'eof' ? this.samplesSeen : Math.min(speechEnd + this.tailFrames * FRAME_SAMPLES, this.samplesSeen);
    return this.close(segment, endSample, speechEnd, reason);
  }

  /** The segment has reached the cap: cut after the quietest frame of the search window. */
  private cut(segment: Frames): SegmenterEvent[] {
    const { probabilities } = segment;
    let cutFrame = probabilities.length - this.cutSearchFrames;
    for (let i = cutFrame + 1; i < probabilities.length; i++) {
      // `<=`: of equally quiet frames, the latest, which keeps the first part longest.
      if (probabilities[i] <= probabilities[cutFrame]) cutFrame = i;
    }
    const cutSample = segment.startSample + (cutFrame + 1) * FRAME_SAMPLES;
    // A pause that began at or before the cut and is still going on: speech ended where it began.
    const pauseStart = segment.quietSince !== null && segment.quietSince < cutSample ? segment.quietSince : null;
    const remainder = { audio: segment.audio.copy(cutSample - segment.startSample, segment.audio.length), probabilities: probabilities.slice(cutFrame + 1) };
    const ended = this.close(segment, cutSample, pauseStart ?? cutSample, 'max_length');
    if (pauseStart !== null) return [ended];

    // Speech goes on through the cut: the rest continues at once, with nothing lost or repeated.
    const next = this.openAt(cutSample);
    next.audio.append(remainder.audio);
    next.probabilities.push(...remainder.probabilities);
    next.quietSince = segment.quietSince;
    this.ring.clear();
    return [ended, { type: 'speech_start', segmentId: next.segmentId, startSample: cutSample, speechStartSample: cutSample }];
  }

  /** Emits [startSample, endSample) of `segment`; frames after endSample become pre-roll candidates. */
  private close(segment: Frames, endSample: number, speechEndSample: number, reason: SegmentEndReason): SegmenterEvent {
    const keep = endSample - segment.startSample;
    const audio = segment.audio.copy(0, keep);
    for (let i = keep / FRAME_SAMPLES; i < segment.probabilities.length; i++) {
      this.ring.push(segment.audio.view(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES), segment.probabilities[i]);
    }
    this.open = null;
    this.speechRun = 0;
    return { type: 'segment_end', segmentId: segment.segmentId, audio, startSample: segment.startSample, endSample, reason, speechEndSample };
  }

  private openAt(startSample: number): Frames {
    this.open = { segmentId: this.nextSegmentId++, startSample, audio: new SampleBuffer(this.maxFrames * FRAME_SAMPLES), probabilities: [], quietSince: null };
    return this.open;
  }
}

/** A fixed ring of the most recent frames and their probabilities; allocates nothing per frame. */
class FrameRing {
  private readonly audio: Float32Array;
  private readonly probabilities: Float32Array;
  private next = 0;
  size = 0;

  constructor(private readonly capacity: number) {
    this.audio = new Float32Array(capacity * FRAME_SAMPLES);
    this.probabilities = new Float32Array(capacity);
  }

  push(frame: Float32Array, probability: number): void {
    this.audio.set(frame, this.next * FRAME_SAMPLES);
    this.probabilities[this.next] = probability;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** The last `count` frames, oldest first, copied out; empties the ring. */
  takeLast(count: number): { audio: Float32Array; probability: number }[] {
    const frames: { audio: Float32Array; probability: number }[] = [];
    for (let k = count; k >= 1; k--) {
      const slot = (this.next - k + this.capacity) % this.capacity;
      frames.push({ audio: this.audio.slice(slot * FRAME_SAMPLES, (slot + 1) * FRAME_SAMPLES), probability: this.probabilities[slot] });
    }
    this.clear();
    return frames;
  }

  clear(): void {
    this.size = 0;
    this.next = 0;
  }
}

/** Append-only samples that grow by doubling up to a fixed limit, so short segments stay small. */
class SampleBuffer {
  private data = new Float32Array(0);
  length = 0;

  constructor(private readonly limit: number) {}

  append(samples: Float32Array): void {
    const needed = this.length + samples.length;
    if (needed > this.data.length) {
      const grown = new Float32Array(Math.min(this.limit, Math.max(needed, this.data.length * 2, SAMPLE_RATE)));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    this.data.set(samples, this.length);
    this.length = needed;
  }

  view(start: number, end: number): Float32Array {
    return this.data.subarray(start, end);
  }

  copy(start: number, end: number): Float32Array {
    return this.data.slice(start, end);
  }
}
