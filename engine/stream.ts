/**
 * One live audio stream through the whole pipeline:
 *   PCM bytes → float32 mono → 16 kHz → 512-sample frames → Silero VAD → segmenter
 *   → partials (greedy, while speech goes on) and finals (beam search, once per segment) via the scheduler
 *   → typed speech events, finals in segment order.
 * Knows nothing of WebSockets: the server's session turns these events into protocol messages.
 */
import { EventEmitter } from 'node:events';
import { SAMPLE_RATE, type PcmEncoding } from './audio/format.js';
import { decodePcm, type PcmStats } from './audio/pcm.js';
import { createResampler, type Resampler } from './audio/resample.js';
import { KolError, toKolError } from './errors.js';
import { FrameChunker } from './vad/frames.js';
import { Segmenter, DEFAULT_SEGMENTER_OPTIONS, type SegmentEndReason, type SegmenterEvent } from './vad/segmenter.js';
import type { SileroVad, VadStream } from './vad/silero.js';
import type { DecodedFinal, Decoding, Scheduler } from './scheduler.js';
import { assessTranscript } from './transcript-guard.js';
import { splitStable } from './partial-agreement.js';
import type { TranscribeOptions, Transcript, TranscriptWord } from './whisper/types.js';

export interface StreamSettings {
  sampleRate: number;
  encoding: PcmEncoding;
  channels: number;
  language: string;
  partials: boolean;
  /** Silence (ms) that ends a segment. */
  endpointMs: number;
  /** A fixed prompt (glossary, names); the previous final is appended to it. */
  prompt: string;
}

/** Server-wide decoding choices; README "Decoding choices" has the measurements behind the defaults. */
export interface StreamTuning {
  finalBeamSize: number;
  /**
   * Encoder context for finals, in frames of 20 ms: undefined = the full 30 s window (1500);
   * "auto" = sized to the segment; a number = that many frames, or more when the segment needs it.
   */
  finalAudioCtx: number | 'auto' | undefined;
  /** New audio (s) between two partials of one segment. */
  partialIntervalS: number;
  /** A segment must be this long (s) before its first partial. */
  firstPartialS: number;
  /**
   * Give the previous final to the model as context for the next. Off by default: on continuous
   * speech it made Whisper drop whole sentences, and each final had to wait for the one before
   * (bench/RESULTS.md "Prompting").
   */
  promptWithPreviousFinal: boolean;
}

export const DEFAULT_TUNING: StreamTuning = {
  finalBeamSize: 5,
  // The full 30 s window, as Whisper was trained: every smaller window cost Hebrew accuracy
  // (bench/decoding.ts, README "Decoding choices"). "auto" is 2.5× cheaper: the setting for
  // latency on a small CPU host, at a measured WER cost.
  finalAudioCtx: undefined,
  partialIntervalS: 0.5,
  firstPartialS: 0.5,
  promptWithPreviousFinal: false,
};

/** How a final was decoded; `retried`: its first decoding lost speech and it was decoded again without the prompt. */
export type FinalDecoding = Decoding & { retried: boolean };

export type SpeechEvent =
  | { type: 'speech_start'; segmentId: number; start: number }
  | { type: 'partial'; segmentId: number; text: string; stable: string; unstable: string; start: number }
  | {
      type: 'final';
      segmentId: number;
      text: string;
      start: number;
      end: number;
      words: TranscriptWord[];
      reason: SegmentEndReason;
      /** From receiving the last audio of the speech to this event. */
      latencyMs: number;
      queueMs: number;
      inferenceMs: number;
      /** Set when the model's text was withheld: it heard no speech, or it looped. */
      discarded?: 'no_speech' | 'repetition' | 'too_short';
      /** Absent when nothing was decoded (a segment too short to transcribe). */
      decoding?: FinalDecoding;
    }
  | { type: 'error'; error: KolError; /** The segment whose final it cost, if any. */ segmentId?: number };

export interface StreamDeps {
  sessionId: string;
  vad: SileroVad;
  scheduler: Scheduler;
  tuning?: Partial<StreamTuning>;
}

/** A frame handed to the VAD pump, or a marker that must be handled in order after the frames before it. */
type PumpItem = { kind: 'frame'; frame: Float32Array } | { kind: 'flush'; onFlushed?: () => void } | { kind: 'eof' };

/** How long the arrival times of received audio are remembered, for the latency figure. */
const ARRIVAL_HISTORY_FRAMES = 4000;

export class SpeechStream extends EventEmitter<{ event: [SpeechEvent] }> {
  readonly sessionId: string;
  readonly settings: StreamSettings;
  private readonly tuning: StreamTuning;
  private readonly scheduler: Scheduler;
  private readonly resampler: Resampler;
  private readonly vadStream: VadStream;
  private readonly chunker = new FrameChunker();
  private readonly pcmStats: PcmStats = { nonFinite: 0 };
  private readonly segmenter: Segmenter;

  private readonly queue: PumpItem[] = [];
  private pumping = false;
  private drained: (() => void) | null = null;
  private ended = false;
  private closed = false;

  /** Samples of 16 kHz audio received so far, and when (wall clock) each frame's audio arrived. */
  private receivedSamples = 0;
  private readonly arrivals: Array<{ endSample: number; at: number }> = [];

  private openSegmentId: number | null = null;
  /** A final started during the endpoint wait, valid while the pause that started it goes on. */
  private speculation: { segmentId: number; endSample: number; controller: AbortController; result: Promise<FinalOutcome> } | null = null;
  private samplesAtLastPartial = 0;
  private lastPartialWords: string[] = [];
  /** The open segment has shown a partial (see Scheduler: a first partial goes first). */
  private segmentShownPartial = false;
  /** The latest partial request: true once it is shown, false when dropped or it heard nothing. */
  private partialSettled: Promise<boolean> = Promise.resolve(false);
  /**
   * Ended segments that showed no text and are owed a partial before their final, by segment id:
   * settles once the owed partial is shown or given up. Its final waits for it, then removes it.
   */
  private readonly owedPartials = new Map<number, { settled: Promise<void>; shown: boolean }>();
  private previousFinal = '';
  private finalsInFlight: Promise<void> = Promise.resolve();
  /** Finals requested and not yet emitted. */
  private finalsPending = 0;
  private finalsSent = 0;

  private constructor(settings: StreamSettings, deps: StreamDeps, resampler: Resampler) {
    super();
    this.sessionId = deps.sessionId;
    this.settings = settings;
    this.tuning = { ...DEFAULT_TUNING, ...deps.tuning };
    this.scheduler = deps.scheduler;
    this.resampler = resampler;
    this.vadStream = deps.vad.createStream();
    this.segmenter = new Segmenter({ ...DEFAULT_SEGMENTER_OPTIONS, endpointMs: settings.endpointMs });
  }

  static async create(settings: StreamSettings, deps: StreamDeps): Promise<SpeechStream> {
    const resampler = await createResampler(settings.sampleRate);
    return new SpeechStream(settings, deps, resampler);
  }

  get segmentsFinalized(): number {
    return this.finalsSent;
  }

  /** Audio received so far, in seconds of the stream. */
  get receivedSeconds(): number {
    return this.receivedSamples / SAMPLE_RATE;
  }

  /** Float samples that were NaN or ±Infinity, heard as silence (engine/audio/pcm.ts). */
  get nonFiniteSamples(): number {
    return this.pcmStats.nonFinite;
  }

  /** Takes one chunk of client PCM. Throws a KolError (odd_pcm_length, session_ended) for bad input. */
  pushPcm(bytes: Uint8Array): void {
    if (this.ended || this.closed) throw new KolError('session_ended');
    const samples = decodePcm(bytes, { encoding: this.settings.encoding, channels: this.settings.channels }, this.pcmStats);
    this.pushSamples(this.resampler.process(samples));
  }

  /**
   * Finalizes the current speech now (the client's `flush`). `onFlushed` runs once every final of the
   * audio pushed before this call has been emitted, and before any final of later audio.
   */
  flush(onFlushed?: () => void): void {
    if (this.ended || this.closed) return;
    this.enqueue({ kind: 'flush', onFlushed });
  }

  /** Ends the stream: resolves once every pending final has been emitted. */
  async end(): Promise<void> {
    if (!this.ended && !this.closed) {
      this.ended = true;
      this.pushSamples(this.resampler.flush());
      const tail = this.chunker.flushPadded();
      if (tail) this.enqueue({ kind: 'frame', frame: tail });
      this.enqueue({ kind: 'eof' });
    }
    await this.idle();
    await this.finalsInFlight;
  }

  /** Stops at once: pending work is cancelled, nothing more is emitted. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.speculation?.controller.abort();
    this.scheduler.cancelSession(this.sessionId);
    this.resampler.close();
    this.drained?.();
  }

  private pushSamples(samples: Float32Array): void {
    if (samples.length === 0) return;
    const at = performance.now();
    for (const frame of this.chunker.push(samples)) {
      this.receivedSamples += frame.length;
      this.arrivals.push({ endSample: this.receivedSamples, at });
      if (this.arrivals.length > ARRIVAL_HISTORY_FRAMES) this.arrivals.shift();
      this.enqueue({ kind: 'frame', frame });
    }
  }

  private enqueue(item: PumpItem): void {
    this.queue.push(item);
    if (!this.pumping) void this.pump();
  }

  private idle(): Promise<void> {
    if (!this.pumping && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  /** Runs frames through the VAD strictly in order, one at a time (the VAD batches across streams). */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const item = this.queue.shift()!;
        if (item.kind === 'frame') {
          const probability = await this.vadStream.process(item.frame);
          if (this.closed) break;
          this.handle(this.segmenter.push(item.frame, probability));
          this.updateSpeculation();
          this.maybeRequestPartial();
        } else if (item.kind === 'flush') {
          this.handle(this.segmenter.flush());
          const onFlushed = item.onFlushed;
          if (onFlushed) {
            // A throwing callback must not break the chain that orders the finals.
            this.finalsInFlight = this.finalsInFlight
              .then(() => (this.closed ? undefined : onFlushed()))
              .catch((err: unknown) => void this.emit('event', { type: 'error', error: toKolError(err) }));
          }
        } else {
          this.handle(this.segmenter.end());
        }
      }
    } catch (err) {
      this.emit('event', { type: 'error', error: toKolError(err) });
    } finally {
      this.pumping = false;
      const drained = this.drained;
      this.drained = null;
      drained?.();
    }
  }

  private handle(events: SegmenterEvent[]): void {
    for (const event of events) {
      if (event.type === 'speech_start') {
        this.openSegmentId = event.segmentId;
        this.samplesAtLastPartial = this.receivedSamples;
        this.lastPartialWords = [];
        this.segmentShownPartial = false;
        this.emit('event', { type: 'speech_start', segmentId: event.segmentId, start: event.startSample / SAMPLE_RATE });
      } else {
        if (this.openSegmentId === event.segmentId) this.openSegmentId = null;
        // A segment long enough to be read that has shown no text keeps its first partial.
        const owed = this.settings.partials && !this.segmentShownPartial && event.audio.length >= OWED_PARTIAL_S * SAMPLE_RATE;
        const kept = this.scheduler.cancelPartials(this.sessionId, owed);
        if (owed) this.owePartial(event, kept);
        this.requestFinal(event);
      }
    }
  }

  /**
   * Starts the final during the endpoint wait: once a pause has outlasted the tail pad, the segment's
   * audio is what it will be if the pause is the end of speech, so its final can start now and be
   * ready (or nearly) when the endpoint is reached. Speech resuming cancels it. Only when a worker is
   * free, so speculation never queues in front of real work.
   */
  private updateSpeculation(): void {
    const pending = this.segmenter.pendingEnd();
    const current = this.speculation;
    if (current && (!pending || pending.segmentId !== current.segmentId || pending.endSample !== current.endSample)) {
      current.controller.abort();
      this.speculation = null;
    }
    if (this.speculation || !pending || pending.audio.length < SAMPLE_RATE / 10) return;
    // With the previous final as prompt, speculate only once it is settled, so that the result is
    // the same as the final would have been.
    if (this.tuning.promptWithPreviousFinal && this.finalsPending > 0) return;
    // In a pause a new partial would only repeat itself. A running one may finish: speculation
    // starts only on an idle worker, and the real final preempts it when none is.
    this.scheduler.dropQueuedPartial(this.sessionId);
    if (!this.scheduler.hasIdleFinalWorker()) return; // tried again on the next frame
    const controller = new AbortController();
    this.speculation = {
      segmentId: pending.segmentId,
      endSample: pending.endSample,
      controller,
      result: this.decodeFinal(pending.audio, pending.speechEndSample - pending.startSample, controller.signal),
    };
  }

  /**
   * Decodes a segment's final. A final that decodes much less speech than the segment holds (see
   * lostSpeech) and had a prompt is decoded again without it: a prompt can make Whisper skip a
   * sentence. Never rejects: an error comes back as a KolError.
   */
  private async decodeFinal(audio: Float32Array, speechSamples: number, signal?: AbortSignal): Promise<FinalOutcome> {
    const partialWords = this.lastPartialWords.length;
    try {
      const options = this.finalOptions();
      const first = await this.scheduler.submitFinal(this.sessionId, audio, options, signal);
      if (!options.prompt || !lostSpeech(first, speechSamples / SAMPLE_RATE, partialWords)) return { ...first, retried: false };
      const again = await this.scheduler.submitFinal(this.sessionId, audio, { ...options, prompt: undefined }, signal);
      return { ...again, inferenceMs: first.inferenceMs + again.inferenceMs, retried: true };
    } catch (err) {
      return toKolError(err);
    }
  }

  private finalOptions(): TranscribeOptions {
    return { language: this.settings.language, beamSize: this.tuning.finalBeamSize, audioCtx: this.tuning.finalAudioCtx, prompt: this.promptText() };
  }

  private maybeRequestPartial(): void {
    if (!this.settings.partials || this.openSegmentId === null || this.speculation || this.segmenter.pendingEnd()) return;
    const open = this.segmenter.openSegment();
    if (!open) return;
    const newAudio = this.receivedSamples - this.samplesAtLastPartial;
    if (newAudio < this.tuning.partialIntervalS * SAMPLE_RATE) return;
    if (open.audio.length < this.tuning.firstPartialS * SAMPLE_RATE) return;
    this.samplesAtLastPartial = this.receivedSamples;
    this.requestPartial(open.segmentId, open.audio, open.startSample, false);
  }

  /**
   * The ended segment showed no text: it is owed a partial before its final. A first partial still on
   * its way (`kept`) may serve, but it holds only the segment's first words and may hear nothing in
   * them (seen on jfk.wav: 0.9 s of "ask" came back as a repetition); then one of the whole segment
   * goes. Either runs ahead of the finals (see Scheduler).
   */
  private owePartial(event: Extract<SegmenterEvent, { type: 'segment_end' }>, kept: boolean): void {
    const { segmentId, audio, startSample } = event;
    const ofWholeSegment = () => this.requestPartial(segmentId, audio, startSample, true);
    const shownOrGivenUp = kept ? this.partialSettled.then((shown) => (shown || this.closed ? true : ofWholeSegment())) : ofWholeSegment();
    const settled = shownOrGivenUp.then(
      () => undefined,
      () => undefined,
    );
    this.owedPartials.set(segmentId, { settled, shown: false });
  }

  /** `owed`: the segment has ended without showing text; this partial goes before the finals. Settles true once shown. */
  private requestPartial(segmentId: number, audio: Float32Array, startSample: number, owed: boolean): Promise<boolean> {
    const first = owed || !this.segmentShownPartial;
    this.partialSettled = this.scheduler.submitPartial(this.sessionId, audio, partialOptions(this.settings.language, this.promptText()), first, owed).then((transcript) => {
      // A partial that lands after its segment closed would move the caption backwards: drop it,
      // unless its segment is owed one and its final has not been sent.
      const owedTo = this.owedPartials.get(segmentId);
      if (!transcript || this.closed || (this.openSegmentId !== segmentId && (!owedTo || owedTo.shown))) return false;
      const verdict = assessTranscript(transcript);
      if (verdict.discarded) return false;
      const start = startSample / SAMPLE_RATE;
      if (owedTo) {
        // The owed partial of an ended segment, shown once: nothing to agree with, and the open segment's state is not its own.
        owedTo.shown = true;
        this.emit('event', { type: 'partial', segmentId, text: verdict.text, stable: '', unstable: verdict.text, start });
        return true;
      }
      this.segmentShownPartial = true;
      const words = verdict.text.split(/\s+/).filter(Boolean);
      const { stable, unstable } = splitStable(this.lastPartialWords, words);
      this.lastPartialWords = words;
      this.emit('event', { type: 'partial', segmentId, text: verdict.text, stable, unstable, start });
      return true;
    });
    return this.partialSettled;
  }

  private requestFinal(event: Extract<SegmenterEvent, { type: 'segment_end' }>): void {
    const speechEndAt = this.arrivalOf(event.speechEndSample);
    const closedAt = performance.now();
    const start = event.startSample / SAMPLE_RATE;
    const end = event.endSample / SAMPLE_RATE;
    const base = { type: 'final' as const, segmentId: event.segmentId, start, end, reason: event.reason };

    let result: Promise<FinalOutcome | null>;
    const speculation = this.speculation;
    this.speculation = null;
    const speechSamples = event.speechEndSample - event.startSample;
    if (speculation && speculation.segmentId === event.segmentId && speculation.endSample === event.endSample) {
      result = speculation.result;
    } else if (event.audio.length < SAMPLE_RATE / 10) {
      speculation?.controller.abort();
      result = Promise.resolve(null);
    } else if (this.tuning.promptWithPreviousFinal) {
      speculation?.controller.abort();
      // Submitted once the previous final is out, so its prompt (the previous final's text) is the
      // same however busy the workers are: finals depend on the audio, not on timing.
      result = this.finalsInFlight.then(() => (this.closed ? null : this.decodeFinal(event.audio, speechSamples)));
    } else {
      speculation?.controller.abort();
      // No final depends on another: each starts as soon as a worker is free.
      result = this.decodeFinal(event.audio, speechSamples);
    }
    this.finalsPending++;
    // Emitted in segment order; a session's finals do not overlap (each waits for the one before).
    this.finalsInFlight = this.finalsInFlight.then(async () => {
      const outcome = await result;
      // The segment's owed partial is shown first (it is cheap and runs ahead of the finals).
      await this.owedPartials.get(event.segmentId)?.settled;
      this.owedPartials.delete(event.segmentId);
      this.finalsPending--;
      if (this.closed) return;
      if (outcome instanceof KolError) {
        if (outcome.code !== 'transcription_aborted') this.emit('event', { type: 'error', error: outcome, segmentId: event.segmentId });
        return;
      }
      const latencyMs = Math.round(performance.now() - speechEndAt);
      this.finalsSent++;
      if (outcome === null) {
        this.emit('event', { ...base, text: '', words: [], latencyMs, queueMs: 0, inferenceMs: 0, discarded: 'too_short' });
        return;
      }
      const verdict = assessTranscript(outcome);
      if (!verdict.discarded) this.previousFinal = verdict.text;
      const words = verdict.words.map((w) => ({ ...w, start: round(start + w.start), end: round(start + w.end) }));
      this.emit('event', {
        ...base,
        text: verdict.discarded ? '' : verdict.text,
        words,
        latencyMs,
        // Time between closing the segment and sending its final that was not inference: queueing.
        queueMs: Math.max(0, Math.round(performance.now() - closedAt - outcome.inferenceMs)),
        inferenceMs: Math.round(outcome.inferenceMs),
        decoding: { ...outcome.decoding, retried: outcome.retried },
        ...(verdict.discarded ? { discarded: verdict.discarded } : {}),
      });
    });
  }

  private promptText(): string {
    const previous = this.tuning.promptWithPreviousFinal ? this.previousFinal : '';
    // Whisper takes at most 224 prompt tokens; the last ~200 characters carry the useful context.
    return [this.settings.prompt, previous.slice(-200)].filter(Boolean).join(' ');
  }

  /** When the audio holding `sample` arrived (wall clock), for the latency figure. */
  private arrivalOf(sample: number): number {
    for (const entry of this.arrivals) if (entry.endSample >= sample) return entry.at;
    return this.arrivals.at(-1)?.at ?? performance.now();
  }
}

type FinalOutcome = (DecodedFinal & { retried: boolean }) | KolError;

/**
 * A final lost speech when its words end well before the speech the VAD heard, or when it has under
 * half the words of the segment's last partial (a preview of only part of the same audio). Either
 * is what a prompt-induced skip looks like: a sentence missing from the segment's text.
 */
export function lostSpeech(transcript: Transcript, speechSeconds: number, partialWords: number): boolean {
  const words = transcript.segments.flatMap((s) => s.words);
  const lastWordEnd = words.at(-1)?.end ?? 0;
  if (speechSeconds - lastWordEnd > LOST_SPEECH_S) return true;
  return partialWords >= 4 && words.length < partialWords / 2;
}

/** A segment at least this long (s) that ended without showing text is owed its first partial. */
const OWED_PARTIAL_S = 2;

/** Speech (s) after a final's last word that counts as lost: longer than any pause inside a segment. */
const LOST_SPEECH_S = 2;

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/**
 * How a partial is decoded: a preview, so greedy and with the encoder window sized to the audio
 * (three to four times cheaper than a beam-5 full-window final). That this leaves nothing behind
 * on the worker that could change a later final is our mask-cross-attention-padding patch to
 * whisper.cpp (engine/whisper/build.ts), checked in engine/whisper/pool.test.ts.
 */
export function partialOptions(language: string, prompt?: string): TranscribeOptions {
  return { language, beamSize: 1, temperatureFallback: false, prompt, audioCtx: 'auto' };
}
