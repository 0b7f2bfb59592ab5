/**
 * The native endpoint `/v1/stream`: one WebSocket, one Session. Binary frames are PCM; text frames
 * are the JSON messages of protocol.ts. Every bad frame gets an `error` with its code and the
 * session carries on; only a bad configuration in the URL ends it, since nothing could be decoded.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { KolError, toKolError } from '../../engine/errors.js';
import { errorEvent, type SessionEvent } from '../session.js';
import { applyConfig, configFromQuery, errorMessage, parseClientMessage, readyHint, type ServerMessage, type SessionConfig } from './protocol.js';
import type { Gateway } from '../transport/gateway.js';

export function handleNativeStream(ws: WebSocket, req: IncomingMessage, gateway: Gateway): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const send = (event: SessionEvent) => gateway.sendJson(ws, toWire(event));

  let config: SessionConfig;
  try {
    config = applyConfig(gateway.defaultSessionConfig(), configFromQuery(url.searchParams));
  } catch (err) {
    send(errorEvent(toKolError(err), true));
    ws.close(1008, toKolError(err).code);
    return;
  }

  const session = gateway.openSession(ws, req, config, send);
  if (!session) return;
  session.announce();

  ws.on('message', (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    try {
      gateway.checkFrame(ws, session, bytes.length);
      if (isBinary) {
        session.audio(bytes);
        return;
      }
      const message = parseClientMessage(bytes.toString('utf8'));
      switch (message.type) {
        case 'config':
          session.configure(message.update);
          break;
        case 'audio': {
          const pcm = Buffer.from(message.data, 'base64');
          session.audio(pcm);
          break;
        }
        case 'flush':
          session.flush();
          break;
        case 'eof':
          void session.finish().then(() => ws.close(1000, 'eof'));
          break;
      }
    } catch (err) {
      const error = toKolError(err);
      if (!(err instanceof KolError)) gateway.logger.error({ err, session: session.id }, 'unexpected error handling a frame');
      send(errorEvent(error));
    }
  });
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
