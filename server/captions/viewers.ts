/**
 * `/v1/captions?room=NAME`: a read-only WebSocket that follows one caption room (rooms.ts).
 * The first message is the room's status with its backlog; then partials, finals and status
 * changes as they happen. Needs a key that may "view" (or an open server). The overlay page uses
 * it, and so can anything else: `npx wscat -c ws://host:8009/v1/captions?room=NAME`.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { KolError } from '../../engine/errors.js';
import type { Gateway, WsRoute } from '../transport/gateway.js';
import { CLOSE_CODES, errorMessage } from '../dialects/protocol.js';
import { ROOM_NAME, type CaptionRooms } from './rooms.js';

const HEARTBEAT_MS = 15_000;

export interface CaptionsRoute extends WsRoute {
  /** Viewers connected now. */
  readonly viewers: number;
  /** Closes every viewer (server shutdown) and stops the heartbeat. */
  close(code?: number, reason?: string): void;
}

export function captionsRoute(rooms: CaptionRooms, heartbeatMs = HEARTBEAT_MS): CaptionsRoute {
  const viewers = new Set<WebSocket>();
  const alive = new WeakSet<WebSocket>();
  // Viewers are not sessions, so the gateway's heartbeat does not cover them: a viewer that
  // vanished without a close (a laptop lid, a dropped mobile link) is found here.
  const heartbeat = setInterval(() => {
    for (const ws of viewers) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  return {
    path: '/v1/captions',
    needs: 'view',
    get viewers() {
      return viewers.size;
    },
    handle(ws: WebSocket, req: IncomingMessage, gateway: Gateway) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const room = url.searchParams.get('room') ?? '';
      if (!ROOM_NAME.test(room)) {
        const message =
          room === ''
            ? 'Name the caption room to watch: /v1/captions?room=NAME.'
            : `Invalid room name ${JSON.stringify(room.slice(0, 80))}: use 1 to 64 letters, digits, ".", "_" or "-".`;
        gateway.sendJson(ws, errorMessage(new KolError('room_required', message), true));
        ws.close(CLOSE_CODES.policy, 'room_required');
        return;
      }
      viewers.add(ws);
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      const subscription = rooms.subscribe(room, (message) => gateway.sendJson(ws, message));
      ws.on('message', () => {
        gateway.sendJson(ws, errorMessage(new KolError('invalid_message', 'This is a read-only caption stream; to publish, stream audio to /v1/stream with "room" in its config.')));
      });
      ws.on('close', () => {
        subscription.close();
        viewers.delete(ws);
      });
      gateway.logger.debug({ room, viewers: viewers.size }, 'caption viewer joined');
    },
    close(code: number = CLOSE_CODES.goingAway, reason = 'server_shutting_down') {
      clearInterval(heartbeat);
      for (const ws of viewers) ws.close(code, reason);
      // A viewer that does not answer the close handshake is cut off.
      const stragglers = [...viewers];
      setTimeout(() => stragglers.forEach((ws) => ws.terminate()), 2000).unref();
    },
  };
}
