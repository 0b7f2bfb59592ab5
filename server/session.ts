/**
 * A client session: its configuration and its SpeechStream. Transport-free and format-free: it reports
 * the engine's speech events, with its own start and end around them (SessionEvent), and every output
 * (the native protocol, the vendor dialects, caption rooms, metrics) renders from those.
 */
import { checkWholeFrames } from '../engine/audio/pcm.js';
import { KolError, toKolError } from '../engine/errors.js';
import type { Logger } from '../engine/log.js';
import type { Scheduler } from '../engine/scheduler.js';
import { SpeechStream, type SpeechEvent, type StreamTuning } from '../engine/stream.js';
import type { SileroVad } from '../engine/vad/silero.js';
import { applyConfig, type SessionConfig } from './session-config.js';

export interface SessionDeps {
  id: string;
  config: SessionConfig;
  vad: SileroVad;
  scheduler: Scheduler;
  tuning?: Partial<StreamTuning>;
  logger: Logger;
  /** Where this session's events go (a dialect renders them). */
  send: (event: SessionEvent) => void;
}

/**
 * What a session reports: the engine's speech events, plus `ready` (the configuration it runs with,
 * again after every change) and `closed` (every final delivered). Errors say whether they end the session.
 */
export type SessionEvent =
  | Exclude<SpeechEvent, { type: 'error' }>
  | SessionError
  | { type: 'ready'; sessionId: string; config: SessionConfig }
  | { type: 'closed'; reason: string; segments: number };

export interface SessionError {
  type: 'error';
  error: KolError;
  fatal: boolean;
  /** The segment whose final the error cost. */
  segmentId?: number;
}

/** An error event; the gateway's notices (limits, drain) use the same shape as the session's own. */
export function errorEvent(error: KolError, fatal = false, segmentId?: number): SessionError {
  return { type: 'error', error, fatal, ...(segmentId === undefined ? {} : { segmentId }) };
}

export type SpeechFinal = Extract<SpeechEvent, { type: 'final' }>;

type State = 'configuring' | 'streaming' | 'ending' | 'closed';

export class Session {
  readonly id: string;
  private config: SessionConfig;
  private readonly deps: SessionDeps;
  private readonly logger: Logger;
  private state: State = 'configuring';
  private stream: SpeechStream | null = null;
  /** Audio that arrived while the stream was being created, in order. */
  private starting: Promise<SpeechStream> | null = null;
  private readonly startedAt = Date.now();

  constructor(deps: SessionDeps) {
    this.id = deps.id;
    this.deps = deps;
    this.config = deps.config;
    this.logger = deps.logger;
  }

  get effectiveConfig(): SessionConfig {
    return this.config;
  }

  /** Seconds of audio received (16 kHz timeline). */
  get audioSeconds(): number {
    return this.stream?.receivedSeconds ?? 0;
  }

  /** NaN or ±Infinity samples received, heard as silence. */
  get nonFiniteSamples(): number {
    return this.stream?.nonFiniteSamples ?? 0;
  }

  /** True once eof (or a drain) started: the session is delivering its last finals. */
  get finishing(): boolean {
    return this.state === 'ending' || this.state === 'closed';
  }

  get ageMs(): number {
    return Date.now() - this.startedAt;
  }

  /** Reports `ready` with the current configuration. */
  announce(): void {
    this.deps.send({ type: 'ready', sessionId: this.id, config: this.config });
  }

  /** Applies a `config` message. Only before the first audio: the pipeline is built from it. */
  configure(update: Record<string, unknown>): void {
    if (this.state !== 'configuring') throw new KolError('config_after_audio');
    this.config = applyConfig(this.config, update);
    this.announce();
  }

  /**
   * Takes client PCM. Throws for bad input; the session lives on. A frame that is rejected, or holds
   * no bytes, is not audio: it does not start the stream, so a `config` may still follow it.
   */
  audio(bytes: Uint8Array): void {
    if (this.state === 'ending' || this.state === 'closed') return this.lateAudio();
    if (bytes.length === 0) return;
    checkWholeFrames(bytes.length, { encoding: this.config.encoding, channels: this.config.channels });
    if (this.stream) {
      this.stream.pushPcm(bytes);
      return;
    }
    this.state = 'streaming';
    this.starting ??= this.startStream();
    // The first chunks wait for the stream (its resampler loads asynchronously); order is kept
    // because every waiter was queued on the same promise in arrival order.
    void this.starting.then(
      (stream) => this.pushSafely(stream, bytes),
      () => {},
    );
  }

  /**
   * Audio after the session began to end is dropped. After the client's own eof that is a client bug,
   * said once (not once per frame: a client streaming on would be flooded); when the server ends the
   * session (a drain, a limit) the client was already told why, so it is dropped quietly.
   */
  private lateAudio(): void {
    if (this.endReason !== 'eof' || this.toldLateAudio) return;
    this.toldLateAudio = true;
    throw new KolError('session_ended', 'Audio arrived after eof; it was ignored, and so is any more (this is said once).');
  }

  /** `onFlushed` (optional) runs once every final of the audio received so far has been sent. */
  flush(onFlushed?: () => void): void {
    if (this.state !== 'streaming') {
      if (this.state === 'configuring') onFlushed?.();
      return;
    }
    void this.withStream((stream) => stream.flush(onFlushed));
  }

  /** The client's eof: every pending final is delivered, then `closed`. */
  finish(reason = 'eof'): Promise<void> {
    // A second call (a drain or idle close during the client's eof) waits for the first to deliver.
    this.finished ??= this.finishOnce(reason);
    return this.finished;
  }

  private finished: Promise<void> | null = null;
  /** What ended the session: the client's `eof`, or the error code of the server's reason. */
  private endReason: string | null = null;
  private toldLateAudio = false;

  private async finishOnce(reason: string): Promise<void> {
    if (this.state === 'ending' || this.state === 'closed') return;
    this.state = 'ending';
    this.endReason = reason;
    const stream = this.stream ?? (this.starting ? await this.starting.catch(() => null) : null);
    if (stream) await stream.end();
    if (this.state === 'ending') {
      this.deps.send({ type: 'closed', reason, segments: stream?.segmentsFinalized ?? 0 });
      this.state = 'closed';
    }
    stream?.close();
  }

  /** The client went away (or was cut off): cancel everything, send nothing more. */
  abort(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stream?.close();
    void this.starting?.then((s) => s.close(), () => {});
  }

  private async startStream(): Promise<SpeechStream> {
    const c = this.config;
    try {
      const stream = await SpeechStream.create(
        { sampleRate: c.sample_rate, encoding: c.encoding, channels: c.channels, language: c.language, partials: c.partials, endpointMs: c.endpoint_ms, prompt: c.prompt },
        { sessionId: this.id, vad: this.deps.vad, scheduler: this.deps.scheduler, tuning: this.deps.tuning },
      );
      stream.on('event', (event) => this.onSpeechEvent(event));
      if (this.state === 'closed') stream.close();
      this.stream = stream;
      return stream;
    } catch (err) {
      const error = toKolError(err);
      this.deps.send(errorEvent(error, true));
      throw error;
    }
  }

  private pushSafely(stream: SpeechStream, bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    try {
      stream.pushPcm(bytes);
    } catch (err) {
      this.deps.send(errorEvent(toKolError(err)));
    }
  }

  private async withStream(action: (stream: SpeechStream) => void): Promise<void> {
    const stream = this.stream ?? (await this.starting?.catch(() => null));
    if (stream) action(stream);
  }

  private onSpeechEvent(event: SpeechEvent): void {
    if (this.state === 'closed') return;
    if (event.type === 'final') this.logger.debug({ segment: event.segmentId, latencyMs: event.latencyMs, reason: event.reason, discarded: event.discarded }, 'final');
    if (event.type !== 'error') return this.deps.send(event);
    this.logger.warn({ code: event.error.code, err: event.error.message, segment: event.segmentId }, 'stream error');
    this.deps.send(errorEvent(event.error, false, event.segmentId));
  }
}
