/**
 * `kol worker`: one supervised whisper-server for a GPU host, reached by gateways over HTTP
 * (`kol serve --worker-url http://gpu-host:8910`). Builds the engine and fetches the model as
 * `kol serve` does (the same configuration: KOL_MODEL, KOL_GPU, KOL_GPU_FALLBACK, KOL_THREADS, …),
 * then keeps the process up:
 *   - a crash (the process exits) → restarted, with backoff while restarts keep failing (the pool's
 *     own restarter, engine/whisper/supervisor.ts);
 *   - a hang (GET /health unanswered 3 times, 5 s apart) → killed and restarted;
 *   - `kol worker` exits (signal, error) → whisper-server goes with it (and with SIGKILL too, where
 *     util-linux's setpriv gives it a parent-death signal); the launching process dies → it exits.
 * whisper-server has no authentication: bind it to a private address or firewall the port.
 */
import net from 'node:net';
import type { Command } from 'commander';
import { KolError } from '../engine/errors.js';
import { createLogger, type Logger } from '../engine/log.js';
import { checkHealth } from '../engine/whisper/client.js';
import { defaultThreads } from '../engine/whisper/local-workers.js';
import { provisionEngine, provisionModel } from '../engine/whisper/provision.js';
import { WorkerRestarter } from '../engine/whisper/supervisor.js';
import { LocalWorker } from '../engine/whisper/worker.js';
import { loadConfig, type ServerConfig } from '../server/config.js';
import { chooseEngine } from '../server/gpu.js';
import { provisionBars } from './progress.js';

export const DEFAULT_WORKER_HOST = '0.0.0.0';
export const DEFAULT_WORKER_PORT = 8910;
const HEALTH_INTERVAL_MS = 5000;
const HEALTH_FAILURES_FOR_HANG = 3;

interface WorkerFlags {
  config?: string;
  host?: string;
  port?: string;
  model?: string;
  threads?: string;
  gpu?: string;
  gpuDevice?: string;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description(`run one supervised whisper-server for gateways on other hosts (kol serve --worker-url http://THIS-HOST:${DEFAULT_WORKER_PORT})`)
    .option('-c, --config <file>', 'JSON config file (model, gpu, threads… as for serve)')
    .option('--host <host>', `address to listen on (KOL_WORKER_HOST, default ${DEFAULT_WORKER_HOST}); whisper-server has no authentication`)
    .option('-p, --port <port>', `port to listen on (KOL_WORKER_PORT, default ${DEFAULT_WORKER_PORT})`)
    .option('-m, --model <name|path>', 'model (KOL_MODEL; default: the host default)')
    .option('-t, --threads <n>', 'CPU threads (KOL_THREADS; default: the cores, at most 8)')
    .option('--gpu <auto|on|off>', 'use the GPU (KOL_GPU)')
    .option('--gpu-device <n>', 'which GPU (default: the first of KOL_GPU_DEVICES, else 0)')
    .action(async (flags: WorkerFlags) => {
      const { config } = loadConfig({
        file: flags.config,
        flags: { model: flags.model, threads: flags.threads, gpu: flags.gpu } satisfies Partial<Record<keyof ServerConfig, unknown>>,
      });
      const log = createLogger(config.logLevel);
      const host = flags.host ?? process.env.KOL_WORKER_HOST ?? DEFAULT_WORKER_HOST;
      const port = parsePort(flags.port ?? process.env.KOL_WORKER_PORT ?? String(DEFAULT_WORKER_PORT));
      const device = flags.gpuDevice !== undefined ? Number(flags.gpuDevice) : config.gpuDevices[0];
      const supervisor = await startWorker({ config, host, port, gpuDevice: device, logger: log });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        log.info({ signal }, 'kol worker stopping');
        void supervisor.stop().then(() => process.exit(0));
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      // Dies with the process that launched it (a test, a shell): once re-parented, nobody wants it.
      const parent = process.ppid;
      if (parent > 1) {
        setInterval(() => {
          if (process.ppid !== parent) stop('parent exited');
        }, 1000).unref();
      }
    });
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KolError('invalid_config', `The worker port must be 1–65535, got ${JSON.stringify(raw)}.`);
  return port;
}

export interface WorkerOptions {
  config: ServerConfig;
  host: string;
  port: number;
  gpuDevice?: number;
  logger: Logger;
}

export interface WorkerSupervisor {
  worker: LocalWorker;
  /** http://host:port as reached from this machine. */
  url: string;
  stop(): Promise<void>;
}

/** Builds, fetches, starts and supervises the whisper-server. The first start's failure is thrown. */
export async function startWorker(options: WorkerOptions): Promise<WorkerSupervisor> {
  const { config, host, port, logger: log } = options;
  const progress = provisionBars();
  const { engine, gpu } = await chooseEngine(config, log, (build) => provisionEngine({ ...build, logger: log }, progress));
  const model = await provisionModel(config.model, { gpu }, progress);
  await assertPortFree(host, port);
  const threads = config.threads || defaultThreads();
  const worker = new LocalWorker({ id: 'worker', binary: engine.binary, model, threads, flashAttention: config.flashAttention, useGpu: gpu, gpuDevice: gpu ? options.gpuDevice : undefined, host, port, logger: log });

  let stopped = false;
  let restarts = 0;
  let unhealthy = 0;

  await worker.start();
  const url = worker.baseUrl;
  log.info({ url: `http://${host}:${port}`, serverPid: worker.pid, model, gpu, threads }, 'kol worker ready');
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    log.warn({ host, port }, 'whisper-server has no authentication: keep this port on a private network or behind a firewall');
  }

  const restarter = new WorkerRestarter(worker, {
    stopped: () => stopped,
    restarted: () => {
      restarts++;
      unhealthy = 0;
      // Each restart begins at the shortest delay: only failed starts in a row lengthen it.
      restarter.healthy();
      log.info({ serverPid: worker.pid, restarts }, 'whisper-server restarted');
    },
    failed: (err, failures) => log.error({ code: err.code, err: err.message.split('\n')[0], attempt: failures - 1 }, 'whisper-server restart failed; retrying'),
  });
  const restart = (why: string): void => {
    if (!restarter.restarting) log.warn({ why, restarts }, 'restarting whisper-server');
    void restarter.restart();
  };

  worker.on('down', (reason) => restart(`whisper-server ${reason}`));
  const health = setInterval(() => {
    if (stopped || restarter.restarting || worker.state !== 'ready') return;
    void checkHealth(url, HEALTH_INTERVAL_MS).then((ok) => {
      if (stopped || restarter.restarting) return;
      unhealthy = ok ? 0 : unhealthy + 1;
      if (unhealthy >= HEALTH_FAILURES_FOR_HANG) restart(`GET /health unanswered ${unhealthy} times (hung)`);
    });
  }, HEALTH_INTERVAL_MS);
  health.unref();

  return {
    worker,
    url,
    async stop() {
      stopped = true;
      clearInterval(health);
      await worker.stop();
    },
  };
}

async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(new KolError('worker_start_failed', `Cannot listen on ${host}:${port} (${err.code ?? err.message}); is another worker running? Choose another --port.`)),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}
