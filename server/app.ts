/**
 * Assembles a running server: configuration → engine runtime → gateway with its endpoints.
 * `kol serve` and the tests start servers through this one function.
 */
import path from 'node:path';
import type { Logger } from '../engine/log.js';
import { REPO_ROOT } from '../engine/paths.js';
import { resolveCapacity } from './capacity.js';
import { captionsRoute } from './captions/viewers.js';
import type { ServerConfig } from './config.js';
import { dialectRoutes } from './dialects/index.js';
import { Gateway } from './transport/gateway.js';
import { ServerMetrics } from './metrics.js';
import { MemoryRooms, sessionRoomTap, type CaptionRooms } from './captions/rooms.js';
import { RedisRooms } from './captions/redis-rooms.js';
import { startRuntime, type Runtime } from './runtime.js';
import { staticRoute } from './static.js';

export interface RunningServer {
  gateway: Gateway;
  runtime: Runtime;
  /** Caption rooms: sessions with a `room` publish there; /v1/captions and /overlay watch. */
  rooms: CaptionRooms;
  /** Prometheus metrics (GET /metrics); a registry of its own per server. */
  metrics: ServerMetrics;
  /** ws://host:port */
  url: string;
  port: number;
  /** Graceful: stop accepting, deliver pending finals, then stop the workers. */
  drain(): Promise<void>;
  /** Immediate. */
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const runtime = await startRuntime(config, logger);
  // Measured (capacity 0) on the warm pool before any session can compete with the calibration.
  const { streams: capacity } = await resolveCapacity(runtime.finalPool, config, runtime.gpu, logger);
  // With REDIS_URL, rooms fan out across every gateway sharing that Redis; otherwise they live here.
  const rooms: CaptionRooms = config.redisUrl
    ? new RedisRooms(config.redisUrl, { logger })
    : new MemoryRooms({ onListenerError: (err) => logger.warn({ err }, 'caption viewer failed') });
  const captions = captionsRoute(rooms);
  const metrics = new ServerMetrics();
  const gateway = new Gateway({
    ...metrics.gatewayHooks(),
    config,
    vad: runtime.vad,
    scheduler: runtime.scheduler,
    tuning: runtime.tuning,
    logger,
    ready: () => runtime.finalPool.readyCount() > 0,
    capacity,
    routes: [...dialectRoutes(), captions],
    // The browser clients: the microphone page at /, the caption overlay at /overlay.
    httpRoutes: [metrics.route(), staticRoute({ root: path.join(REPO_ROOT, 'clients', 'web'), pages: { '/': 'index.html', '/overlay': 'overlay.html' } })],
    tapSession: (id, send) => sessionRoomTap(rooms, id, send, (err) => logger.warn({ err, session: id }, 'caption room publish failed')),
  });
  metrics.attach(gateway, runtime);
  const closeRooms = () => {
    captions.close();
    rooms.close();
    metrics.close();
  };
  let address;
  try {
    address = await gateway.listen();
  } catch (err) {
    closeRooms();
    await runtime.close();
    throw err;
  }
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  logger.info({ url: `ws://${host}:${address.port}/v1/stream`, page: `http://${host}:${address.port}/` }, 'kol is listening');
  return {
    gateway,
    runtime,
    rooms,
    metrics,
    url: `ws://${host}:${address.port}`,
    port: address.port,
    async drain() {
      const draining = gateway.drain();
      // Viewers hear the finals the draining sessions still deliver, then go; the HTTP server
      // cannot finish closing while their sockets are open.
      await Promise.race([draining, whenNoSessions(gateway)]);
      closeRooms();
      await draining;
      await runtime.close();
    },
    async close() {
      closeRooms();
      await gateway.close();
      await runtime.close();
    },
  };
}

async function whenNoSessions(gateway: Gateway): Promise<void> {
  while (gateway.sessionCount > 0) await new Promise((resolve) => setTimeout(resolve, 100));
}
