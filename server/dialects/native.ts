/**
 * The native endpoint `/v1/stream`: one WebSocket, one Session. Binary frames are PCM; text frames
 * are the JSON messages of protocol.ts. Every bad frame gets an `error` with its code and the
 * session carries on; only a bad configuration in the URL ends it, since nothing could be decoded.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { KolError, toKolError } from '../../engine/errors.js';
import { applyConfig, configFromQuery, errorMessage, parseClientMessage, type ServerMessage, type SessionConfig } from './protocol.js';
import type { Gateway } from '../transport/gateway.js';

export function handleNativeStream(ws: WebSocket, req: IncomingMessage, gateway: Gateway): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const send = (message: ServerMessage) => gateway.sendJson(ws, message);

  let config: SessionConfig;
  try {
    config = applyConfig(gateway.defaultSessionConfig(), configFromQuery(url.searchParams));
  } catch (err) {
    send(errorMessage(toKolError(err), true));
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
      send(errorMessage(error));
    }
  });
}
