import { createLogger, type Logger } from '../../engine/log.js';
import { startServer, type RunningServer } from '../../server/app.js';
import { DEFAULT_CONFIG, type ServerConfig } from '../../server/config.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import type { WorkerSetup } from './baselines.js';
import { engine } from './engine.js';

/**
 * A real server on a free port with real whisper-server workers on the real base model (2 workers,
 * 1 thread each: this machine has 2 cores). Quiet logs unless KOL_LOG_LEVEL says otherwise, or a
 * logger is given (test/helpers/log.ts captures one). Admission capacity is set out of the way (above
 * any session limit a test sets): measuring it would cost every test server seconds of inference at
 * start, and the session limits have tests of their own (server/capacity.test.ts measures it).
 */
/** One thread per worker: two workers on this machine's two cores. */
export const TEST_THREADS = 1;

/** How a test server's workers (and engine/whisper/pool.test.ts's) are started: what decides their text. */
export async function testWorkerSetup(): Promise<WorkerSetup> {
  return { binary: (await engine()).binary, model: REAL_MODEL, threads: TEST_THREADS, flashAttention: DEFAULT_CONFIG.flashAttention };
}

/** More streams than any test opens. */
const UNLIMITED_CAPACITY = 1_000_000;

export async function startTestServer(overrides: Partial<ServerConfig> = {}, logger?: Logger): Promise<RunningServer> {
  return startServer(
    {
      ...DEFAULT_CONFIG,
      port: 0,
      model: REAL_MODEL,
      workers: 2,
      threads: TEST_THREADS,
      gpu: 'off',
      logLevel: 'warn',
      capacity: UNLIMITED_CAPACITY,
      ...overrides,
    },
    logger ?? createLogger(process.env.KOL_LOG_LEVEL ?? 'silent'),
  );
}
