/**
 * One client's WebSocket as the routes see it: JSON out through a bounded send buffer, frames in,
 * frame-size and real-time pace limits, liveness for the heartbeat, close. The same object serves
 * transcription sessions and caption viewers; it knows nothing of sessions or message formats.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { ERROR_CATALOG, KolError, type ErrorCode } from '../../engine/errors.js';
import type { Logger } from '../../engine/log.js';
import type { Caller } from './access.js';
import { PaceLimiter } from './pace.js';

/** WebSocket close codes the server uses; the close reason carries the error code. */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  internal: 1011,
  tryAgainLater: 1013,
} as const;

/** The close code for a fatal error: 1008 for what the client did, 1013 for "try again later", 1011 otherwise. */
export function closeCodeFor(code: ErrorCode): number {
  const status = ERROR_CATALOG[code].status;
  if (status === 503 || status === 429) return CLOSE_CODES.tryAgainLater;
  return status < 500 ? CLOSE_CODES.policy : CLOSE_CODES.internal;
}

export interface ConnectionLimits {
  /** Bytes queued for a client before it is cut off as a slow consumer. */
  sendBufferBytes: number;
  maxFrameBytes: number;
  /** Audio is read at most this many times real time (after a burst). */
  maxRealtimeFactor: number;
}

/** Audio a client may send ahead of real time × maxRealtimeFactor before reading is paused. */
const PACE_BURST_SECONDS = 10;
/** A client cut off may not answer the close handshake either. */
const TERMINATE_AFTER_MS = 2000;

export class Connection {
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  /** Who connected, as the gateway admitted them. */
  readonly caller: Caller;
  readonly openedAt = Date.now();
  /** When the client last sent a frame (idle timer, heartbeat). */
  lastHeardAt = this.openedAt;
  /** Named in log lines about this connection: its session's id, once it has one. */
  label: string | null = null;
  private answeredPing = true;
  private readonly pace: PaceLimiter;
  private throttled = false;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ws: WebSocket,
    req: IncomingMessage,
    caller: Caller,
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
    /** Called when the client is cut off for not reading (metrics). */
    private readonly onSlowConsumer: () => void,
  ) {
    this.url = new URL(req.url ?? '/', 'http://localhost');
    this.headers = req.headers;
    this.caller = caller;
    this.pace = new PaceLimiter(limits.maxRealtimeFactor, PACE_BURST_SECONDS, this.openedAt);
    ws.on('pong', () => (this.answeredPing = true));
    ws.on('close', () => {
      if (this.resumeTimer) clearTimeout(this.resumeTimer);
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Bytes sent but not yet taken by the network. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  onMessage(handler: (bytes: Buffer, isBinary: boolean) => void): void {
    this.ws.on('message', (data, isBinary) => handler(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer), isBinary));
  }

  onClose(handler: () => void): void {
    this.ws.on('close', handler);
  }

  /**
   * Sends a JSON message unless the client has stopped reading; a client that falls too far behind
   * is cut off. True when the message went out.
   */
  send(message: object): boolean {
    if (!this.isOpen) return false;
    if (this.ws.bufferedAmount > this.limits.sendBufferBytes) {
      this.logger.warn({ session: this.label, buffered: this.ws.bufferedAmount }, 'closing a client that does not read its messages');
      this.onSlowConsumer();
      this.ws.close(CLOSE_CODES.tryAgainLater, 'slow_consumer');
      setTimeout(() => this.ws.terminate(), TERMINATE_AFTER_MS).unref();
      return false;
    }
    this.ws.send(JSON.stringify(message));
    return true;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  /** Closes, and cuts off a client that does not answer the close handshake. */
  closeFirmly(code: number, reason: string): void {
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), TERMINATE_AFTER_MS).unref();
  }

  terminate(): void {
    this.ws.terminate();
  }

  /**
   * Checks one incoming frame, `bytes` long as audio of `bytesPerSecond`, against the limits. Throws
   * frame_too_large. A client sending faster than maxRealtimeFactor × real time has its reads held
   * (TCP backpressure); the first time, the audio_too_fast notice to tell it is returned.
   */
  admit(bytes: number, bytesPerSecond: number): KolError | null {
    this.lastHeardAt = Date.now();
    if (bytes > this.limits.maxFrameBytes) {
      throw new KolError('frame_too_large', `A frame of ${bytes} bytes exceeds the limit of ${this.limits.maxFrameBytes} bytes; send audio in smaller frames (e.g. 100 ms each).`);
    }
    // A token bucket (pace.ts): credit never exceeds the burst, so a client cannot save it up by
    // sending slowly (or not at all) and then blast hours of audio at once.
    const waitMs = this.pace.spend(bytes / bytesPerSecond);
    if (waitMs <= 0) return null;
    this.holdReads(waitMs);
    if (this.throttled) return null;
    this.throttled = true;
    return new KolError('audio_too_fast', `Audio is arriving faster than ${this.limits.maxRealtimeFactor}× real time; the server now reads it at that pace (no audio is lost).`);
  }

  /** Stops reading for `ms`. One timer, moved later as more audio arrives, so an earlier one cannot resume too soon. */
  private holdReads(ms: number): void {
    this.ws.pause();
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      this.ws.resume();
    }, ms);
    this.resumeTimer.unref();
  }

  /**
   * The heartbeat's turn: a client that answered no ping and sent nothing since `since` is
   * terminated (false); otherwise it is pinged again (true). A socket whose reads we are holding
   * counts as heard from: its pong may be queued behind audio we have not read yet.
   */
  beat(since: number): boolean {
    const heardFrom = this.lastHeardAt >= since || this.resumeTimer !== null;
    if (!this.answeredPing && !heardFrom) {
      this.ws.terminate();
      return false;
    }
    this.answeredPing = false;
    this.ws.ping();
    return true;
  }
}
