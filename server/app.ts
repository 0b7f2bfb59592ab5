/**
 * Assembles a running server: configuration → engine runtime → gateway with its endpoints.
 * `kol serve` and the tests start servers through this one function.
 */
import { log as rootLogger, type Logger } from '../engine/log.js';
import type { ServerConfig } from './config.js';
import { Gateway } from './gateway.js';
import { handleNativeStream } from './native.js';
import { startRuntime, type Runtime } from './runtime.js';

export interface RunningServer {
  gateway: Gateway;
  runtime: Runtime;
  /** ws://host:port */
  url: string;
  port: number;
  /** Graceful: stop accepting, deliver pending finals, then stop the workers. */
  drain(): Promise<void>;
  /** Immediate. */
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger = rootLogger): Promise<RunningServer> {
  const runtime = await startRuntime(config, logger);
  const gateway = new Gateway({
    config,
    vad: runtime.vad,
    scheduler: runtime.scheduler,
    tuning: runtime.tuning,
    logger,
    ready: () => runtime.finalPool.readyCount() > 0,
    routes: [{ path: '/v1/stream', needs: 'publish', handle: handleNativeStream }],
  });
  let address;
  try {
    address = await gateway.listen();
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  logger.info({ url: `ws://${host}:${address.port}/v1/stream` }, 'kol is listening');
  return {
    gateway,
    runtime,
    url: `ws://${host}:${address.port}`,
    port: address.port,
    async drain() {
      await gateway.drain();
      await runtime.close();
    },
    async close() {
      await gateway.close();
      await runtime.close();
    },
  };
}
