import { pino, type Logger } from 'pino';

/**
 * The process-wide structured logger. Level from KOL_LOG_LEVEL (default "info"); JSON lines to stderr
 * so that stdout stays clean for command output such as `kol transcribe`.
 */
export const log: Logger = pino(
  { level: process.env.KOL_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ dest: 2, sync: true }),
);

export type { Logger };
