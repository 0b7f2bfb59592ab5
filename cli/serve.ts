import type { Command } from 'commander';
import { createLogger } from '../engine/log.js';
import { startServer } from '../server/app.js';
import { describeKey, loadConfig, redactUrl, type ServerConfig } from '../server/config.js';

interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  model?: string;
  partialModel?: string;
  workers?: string;
  threads?: string;
  workerUrl?: string[];
  gpu?: string;
  capacity?: string;
  printConfig?: boolean;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the streaming server (WebSocket /v1/stream, /healthz, /readyz)')
    .option('-c, --config <file>', 'JSON config file (default: KOL_CONFIG or ./kol.config.json)')
    .option('--host <host>', 'address to listen on')
    .option('-p, --port <port>', 'port to listen on (KOL_PORT, default 8009)')
    .option('-m, --model <name|path>', 'model for finals (and partials)')
    .option('--partial-model <name|path>', 'a smaller model for partials, in workers of their own')
    .option('-w, --workers <n>', 'local whisper-server processes')
    .option('-t, --threads <n>', 'threads per worker')
    .option('--worker-url <url>', 'a remote whisper-server to use (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .option('--gpu <auto|on|off>', 'use the GPU')
    .option('--capacity <n>', 'real-time streams admitted at once; 0 = measure the workers at start (KOL_CAPACITY, default 0)')
    .option('--print-config', 'print the effective configuration and exit')
    .action(async (flags: ServeFlags) => {
      const { config, origin } = loadConfig({
        file: flags.config,
        flags: {
          host: flags.host,
          port: flags.port,
          model: flags.model,
          partialModel: flags.partialModel,
          workers: flags.workers,
          threads: flags.threads,
          workerUrls: flags.workerUrl,
          gpu: flags.gpu,
          capacity: flags.capacity,
        } satisfies Partial<Record<keyof ServerConfig, unknown>>,
      });
      if (flags.printConfig) {
        const shown = { ...config, apiKeys: config.apiKeys.map(describeKey), redisUrl: redactUrl(config.redisUrl) };
        process.stdout.write(`${JSON.stringify({ config: shown, origin }, null, 2)}\n`);
        return;
      }
      const log = createLogger(config.logLevel);
      const server = await startServer(config, log);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        stopping = true;
        log.info({ signal }, 'draining before exit (send the signal again to exit at once)');
        void server.drain().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'drain failed; exiting');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
