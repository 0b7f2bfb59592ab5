/**
 * The lifecycle every dialect shares, written once: the connection's URL → a session configuration,
 * the session opened, each frame taken through the connection's limits (size, pace) and handed to
 * the dialect, every error replied to in the dialect's format and counted once for metrics, and the
 * close after a fatal one. A dialect only maps: client frames in (`onFrame`), session events out
 * (`onEvent`), and its error message (`renderError`). After deepgram-js-sdk's split between
 * AbstractLiveClient (the lifecycle) and ListenLiveClient (the messages).
 */
import { KolError, toKolError } from '../../engine/errors.js';
import { errorEvent, type Session, type SessionEvent } from '../session.js';
import { closeCodeFor, type Connection } from '../transport/connection.js';
import type { SessionHost } from '../transport/gateway.js';
import { bytesPerSecond, type SessionConfig } from '../session-config.js';

/**
 * How an error reply ends things: `no`, the session lives on; `soon`, the connection closes once the
 * reply is out (unless the session's own end closes it first); `now`, at once (nothing was set up).
 * After `soon` or `now` further frames are ignored.
 */
export type ErrorClose = 'no' | 'soon' | 'now';

export abstract class DialectConnection {
  protected session: Session | null = null;
  private dead = false;

  constructor(
    protected readonly connection: Connection,
    protected readonly host: SessionHost,
  ) {}

  /** The session's configuration from the URL (and whatever else is known at the start). Throws a KolError. */
  protected abstract configure(): SessionConfig;
  /** One client frame. Throws a KolError for a bad one; the session lives on. */
  protected abstract onFrame(bytes: Buffer, isBinary: boolean): void;
  /** One session event (the gateway's notices included), rendered in the dialect's format. */
  protected abstract onEvent(event: SessionEvent): void;
  /** The dialect's error message. */
  protected abstract renderError(error: KolError, fatal: boolean): object;

  /** Runs once the session is open, before any frame is read (a greeting, if the dialect has one). */
  protected opened(): void {}

  /** What a frame counts as, in bytes of the session's audio format, for the frame-size and pace limits. */
  protected frameCost(bytes: Buffer, _isBinary: boolean): number {
    return bytes.length;
  }

  /** A bad frame's reply; the session lives on. */
  protected frameError(error: KolError): void {
    this.sendError(error);
  }

  start(): void {
    let config: SessionConfig;
    try {
      config = this.configure();
    } catch (err) {
      this.sendError(toKolError(err), 'now');
      return;
    }
    this.session = this.host.openSession(this.connection, config, (event) => this.onEvent(event));
    if (!this.session) return;
    this.opened();
    this.connection.onMessage((bytes, isBinary) => this.receive(bytes, isBinary));
  }

  /** Replies with an error (counted once, if it went out) and closes as `close` says. */
  protected sendError(error: KolError, close: ErrorClose = 'no', message: object = this.renderError(error, close !== 'no')): void {
    if (this.connection.send(message)) this.host.errorReported(error.code);
    if (close === 'no') return;
    this.dead = true;
    if (close === 'now') {
      this.connection.close(closeCodeFor(error.code), error.code);
      return;
    }
    setImmediate(() => {
      if (this.connection.isOpen) this.connection.close(closeCodeFor(error.code), error.code);
    });
  }

  private receive(bytes: Buffer, isBinary: boolean): void {
    const session = this.session;
    if (this.dead || !session) return;
    try {
      const notice = this.connection.admit(this.frameCost(bytes, isBinary), bytesPerSecond(session.effectiveConfig));
      if (notice) this.onEvent(errorEvent(notice));
      this.onFrame(bytes, isBinary);
    } catch (err) {
      const error = toKolError(err);
      if (!(err instanceof KolError)) this.host.logger.error({ err, session: session.id, path: this.connection.url.pathname }, 'unexpected error handling a frame');
      this.frameError(error);
    }
  }
}
