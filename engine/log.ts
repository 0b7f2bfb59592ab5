import { pino, type Logger } from 'pino';

/**
 * The process's structured logger, made once at the top (a CLI command, a benchmark) and handed down:
 * JSON lines on stderr, so that stdout stays clean for command output such as `kol transcribe`.
 * Level: the one given, else KOL_LOG_LEVEL, else "info".
 */
export function createLogger(level: string = process.env.KOL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

/** What a part of the engine logs to when its caller gives no logger (unit tests, one-off tools): nothing. */
export const SILENT_LOGGER: Logger = pino({ level: 'silent' });

export type { Logger };
