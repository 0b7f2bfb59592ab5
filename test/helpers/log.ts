import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type LogRecord = { level: number; msg: string; [k: string]: unknown };

/** A pino logger (info and above) whose records are kept in `lines`, parsed, for tests to inspect. */
export function capturingLogger(): { logger: Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogRecord);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}
