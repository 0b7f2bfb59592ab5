/**
 * The native endpoint `/v1/stream`: one WebSocket, one Session. Binary frames are PCM; text frames
 * are the JSON messages of protocol.ts. Every bad frame gets an `error` with its code and the
 * session carries on; only a bad configuration in the URL ends it, since nothing could be decoded.
 */
import type { KolError } from '../../engine/errors.js';
import type { SessionEvent } from '../session.js';
import type { WsRoute } from '../transport/gateway.js';
import { DialectConnection } from './base.js';
import { errorMessage, parseClientMessage, readyHint, type ServerMessage } from './protocol.js';
import { applyConfig, configFromQuery, type SessionConfig } from '../session-config.js';

export const NATIVE_PATH = '/v1/stream';

export const nativeRoute: WsRoute = {
  path: NATIVE_PATH,
  needs: 'publish',
  handle: (connection, host) => new NativeConnection(connection, host).start(),
};

class NativeConnection extends DialectConnection {
  protected configure(): SessionConfig {
    return applyConfig(this.host.defaultSessionConfig(), configFromQuery(this.connection.url.searchParams));
  }

  protected override opened(): void {
    this.session!.announce();
  }

  protected onFrame(bytes: Buffer, isBinary: boolean): void {
    const session = this.session!;
    if (isBinary) return session.audio(bytes);
    const message = parseClientMessage(bytes.toString('utf8'));
    switch (message.type) {
      case 'config':
        session.configure(message.update);
        break;
      case 'audio':
        session.audio(Buffer.from(message.data, 'base64'));
        break;
      case 'flush':
        session.flush();
        break;
      case 'eof':
        void session.finish().then(() => this.connection.close(1000, 'eof'));
        break;
    }
  }

  protected onEvent(event: SessionEvent): void {
    // Native clients are told `fatal` and the server's own close follows; nothing closes here.
    if (event.type === 'error') this.sendError(event.error, 'no', toWire(event));
    else this.connection.send(toWire(event));
  }

  protected renderError(error: KolError, fatal: boolean): ServerMessage {
    return errorMessage(error, fatal);
  }
}

/** A session event in the native wire format (snake_case, PROTOCOL.md). */
export function toWire(event: SessionEvent): ServerMessage {
  switch (event.type) {
    case 'ready':
      return { type: 'ready', session_id: event.sessionId, config: event.config, hint: readyHint(event.config) };
    case 'speech_start':
      return { type: 'speech_start', segment_id: event.segmentId, start: event.start };
    case 'partial':
      return { type: 'partial', segment_id: event.segmentId, text: event.text, stable: event.stable, unstable: event.unstable, start: event.start };
    case 'final':
      return {
        type: 'final',
        segment_id: event.segmentId,
        text: event.text,
        start: event.start,
        end: event.end,
        words: event.words,
        reason: event.reason,
        latency_ms: event.latencyMs,
        queue_ms: event.queueMs,
        inference_ms: event.inferenceMs,
        ...(event.decoding ? { decoding: { beam: event.decoding.beam, audio_ctx: event.decoding.audioCtx, degraded: event.decoding.degraded, retried: event.decoding.retried } } : {}),
      };
    case 'error':
      return errorMessage(event.error, event.fatal, event.segmentId);
    case 'closed':
      return { type: 'closed', reason: event.reason, segments: event.segments };
  }
}
