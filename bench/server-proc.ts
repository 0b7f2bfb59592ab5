/**
 * Bench-only: a `kol serve` in a process of its own — the same `startServer(config)` the command runs —
 * so that the server's CPU and memory are not mixed with the simulated clients'. Talks to the bench
 * over IPC: announces its URL, and answers `stats` with what only the server can see (worker busy
 * time, scheduler queue waits, VAD runs, event-loop lag).
 *   node --import tsx bench/server-proc.ts '<ServerConfig JSON>'   (spawned by bench/run.ts with an IPC channel)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createLogger } from '../engine/log.js';
import type { ScheduledRecord } from '../engine/scheduler.js';
import type { JobRecord, PoolStats } from '../engine/whisper/pool.js';
import { startServer } from '../server/app.js';
import { DEFAULT_CONFIG, serverConfigSchema } from '../server/config.js';

export type ServerProcMessage =
  | { type: 'listening'; url: string; pid: number; workers: number }
  | { type: 'stats'; id: number; stats: ServerProcStats }
  | { type: 'error'; message: string };

export interface ServerProcStats {
  pool: PoolStats;
  /** Scheduler records since the last `reset`. */
  scheduled: ScheduledRecord[];
  jobs: JobRecord[];
  vad: { runs: number; frames: number };
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  sessions: number;
}

// The benches load the server beyond its capacity on purpose: admission is left to the session limit.
const config = serverConfigSchema.parse({ ...DEFAULT_CONFIG, capacity: DEFAULT_CONFIG.maxSessions, ...(JSON.parse(process.argv[2] ?? '{}') as object) });
try {
  const server = await startServer(config, createLogger());
  let scheduled: ScheduledRecord[] = [];
  let jobs: JobRecord[] = [];
  server.runtime.scheduler.on('scheduled', (r) => scheduled.push(r));
  server.runtime.finalPool.on('job', (j) => jobs.push(j));
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  process.on('message', (raw) => {
    const message = raw as { type: string; id?: number };
    if (message.type === 'reset') {
      scheduled = [];
      jobs = [];
      lag.reset();
    } else if (message.type === 'stats') {
      const stats: ServerProcStats = {
        pool: server.runtime.finalPool.stats(),
        scheduled,
        jobs,
        vad: server.runtime.vad.stats(),
        eventLoopP99Ms: lag.percentile(99) / 1e6,
        eventLoopMaxMs: lag.max / 1e6,
        sessions: server.gateway.sessionCount,
      };
      process.send?.({ type: 'stats', id: message.id ?? 0, stats } satisfies ServerProcMessage);
    } else if (message.type === 'close') {
      void server.close().then(() => process.exit(0));
    }
  });
  process.send?.({ type: 'listening', url: server.url, pid: process.pid, workers: server.runtime.finalPool.size } satisfies ServerProcMessage);
} catch (err) {
  process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies ServerProcMessage);
  process.exit(1);
}
