/**
 * `/v1/captions?room=NAME`: a read-only WebSocket that follows one caption room (rooms.ts).
 * The first message is the room's status with its backlog; then partials, finals and status
 * changes as they happen. Needs a key that may "view" (or an open server). The overlay page uses
 * it, and so can anything else: `npx wscat -c ws://host:8009/v1/captions?room=NAME`.
 * Viewers are Connections like sessions: the gateway's heartbeat and send buffer cover them.
 */
import { KolError } from '../../engine/errors.js';
import { errorMessage } from '../dialects/protocol.js';
import { ROOM_NAME } from '../session-config.js';
import { CLOSE_CODES, type Connection } from '../transport/connection.js';
import type { SessionHost, WsRoute } from '../transport/gateway.js';
import type { CaptionRooms } from './rooms.js';

export interface CaptionsRoute extends WsRoute {
  /** Viewers connected now. */
  readonly viewers: number;
  /** Closes every viewer (server shutdown). */
  close(code?: number, reason?: string): void;
}

export function captionsRoute(rooms: CaptionRooms): CaptionsRoute {
  const viewers = new Set<Connection>();
  const reply = (connection: Connection, host: SessionHost, error: KolError, fatal = false) => {
    if (connection.send(errorMessage(error, fatal))) host.errorReported(error.code);
  };

  return {
    path: '/v1/captions',
    needs: 'view',
    get viewers() {
      return viewers.size;
    },
    handle(connection, host) {
      const room = connection.url.searchParams.get('room') ?? '';
      if (!ROOM_NAME.test(room)) {
        const message =
          room === ''
            ? 'Name the caption room to watch: /v1/captions?room=NAME.'
            : `Invalid room name ${JSON.stringify(room.slice(0, 80))}: use 1 to 64 letters, digits, ".", "_" or "-".`;
        reply(connection, host, new KolError('room_required', message), true);
        connection.close(CLOSE_CODES.policy, 'room_required');
        return;
      }
      viewers.add(connection);
      const subscription = rooms.subscribe(room, (message) => connection.send(message));
      connection.onMessage(() => {
        reply(connection, host, new KolError('invalid_message', 'This is a read-only caption stream; to publish, stream audio to /v1/stream with "room" in its config.'));
      });
      connection.onClose(() => {
        subscription.close();
        viewers.delete(connection);
      });
      host.logger.debug({ room, viewers: viewers.size }, 'caption viewer joined');
    },
    close(code: number = CLOSE_CODES.goingAway, reason = 'server_shutting_down') {
      // A viewer that does not answer the close handshake is cut off.
      for (const connection of viewers) connection.closeFirmly(code, reason);
    },
  };
}
