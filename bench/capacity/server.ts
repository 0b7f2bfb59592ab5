/**
 * Bench-only gateway for the capacity probe: the real Gateway, native endpoint, sessions, resampler,
 * Silero VAD and segmenter, and the real Scheduler — over `NoTranscriptionPoolForBench`, a pool stub
 * that never runs whisper and answers every request at once with a fixed short text. What is left is
 * the ingest side of `kol serve`: how many real-time streams one process can take in and run VAD on.
 * No product code changes: nothing here is reachable from `kol serve`.
 *
 *   node --import tsx bench/capacity/server.ts <mode> [maxBatch]   (spawned by bench/capacity/probe.ts, IPC)
 *   mode: batched   — VAD frames of all streams gathered into one model run per tick (the product's way)
 *         unbatched — SileroVad { batching: false }: one model run per stream per frame
 *         transport — WebSocket only: frames are received and counted, nothing else (the transport's own cost)
 */
import { EventEmitter } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { Scheduler, type SchedulablePool } from '../../engine/scheduler.js';
import { SileroVad } from '../../engine/vad/silero.js';
import type { TranscribeOptions, Transcript } from '../../engine/whisper/types.js';
import { DEFAULT_CONFIG } from '../../server/config.js';
import { nativeRoute } from '../../server/dialects/native.js';
import { Gateway, type WsRoute } from '../../server/transport/gateway.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';

export type CapacityMode = 'batched' | 'unbatched' | 'transport';

export type CapacityServerMessage =
  | { type: 'listening'; url: string; pid: number }
  | { type: 'stats'; id: number; stats: CapacityServerStats };

export interface CapacityServerStats {
  /** process.cpuUsage() totals, µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Event-loop delay since the last stats call (ms). */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Audio bytes received (s16le 16 kHz: 32,000 per second) and VAD frames classified, totals. */
  bytesIn: number;
  vadFrames: number;
  vadRuns: number;
  sessions: number;
  rssBytes: number;
}

/** The pool stub: never transcribes. Named so that nobody mistakes it for a product component. */
export class NoTranscriptionPoolForBench extends EventEmitter implements SchedulablePool {
  requests = 0;
  idleCount(): number {
    return 1;
  }
  transcribe(pcm: Float32Array, _options?: TranscribeOptions): Promise<Transcript> {
    this.requests++;
    const duration = pcm.length / SAMPLE_RATE;
    const text = 'שלום עולם';
    return Promise.resolve({ text, language: 'he', duration, segments: [{ text, start: 0, end: duration, noSpeechProb: 0, avgLogprob: -0.2, words: [] }], worker: 'bench-stub', inferenceMs: 0 });
  }
}

const mode = (process.argv[2] ?? 'batched') as CapacityMode;
const logger = pino({ level: 'error' });
/** Optional second argument: SileroVad's maxBatch (frames per model run; its default is 512). */
const maxBatch = process.argv[3] ? Number(process.argv[3]) : undefined;
const vad = await SileroVad.load(undefined, { batching: mode !== 'unbatched', maxBatch });
const scheduler = new Scheduler(new NoTranscriptionPoolForBench());
let bytesIn = 0;

const stream: WsRoute = {
  path: '/v1/stream',
  needs: 'publish',
  handle(connection, host) {
    connection.onMessage((bytes, isBinary) => {
      if (isBinary) bytesIn += bytes.length;
    });
    if (mode !== 'transport') nativeRoute.handle(connection, host);
  },
};
const gateway = new Gateway({
  config: { ...DEFAULT_CONFIG, port: 0, maxSessions: 100_000, maxSessionsPerKey: 100_000, idleTimeoutSeconds: 600, logLevel: 'warn' },
  vad,
  scheduler,
  tuning: {},
  logger,
  ready: () => true,
  routes: [stream],
});
const address = await gateway.listen();
const lag = monitorEventLoopDelay({ resolution: 5 });
lag.enable();

process.on('message', (raw) => {
  const message = raw as { type: string; id?: number };
  if (message.type === 'stats') {
    const cpu = process.cpuUsage();
    const v = vad.stats();
    const stats: CapacityServerStats = {
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      lagP50Ms: lag.percentile(50) / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
      bytesIn,
      vadFrames: v.frames,
      vadRuns: v.runs,
      sessions: gateway.sessionCount,
      rssBytes: process.memoryUsage().rss,
    };
    lag.reset();
    process.send?.({ type: 'stats', id: message.id ?? 0, stats } satisfies CapacityServerMessage);
  } else if (message.type === 'close') {
    // process.exit (not a signal) so that --cpu-prof writes its profile.
    void Promise.race([gateway.close(), new Promise((resolve) => setTimeout(resolve, 3000))]).then(() => process.exit(0));
  }
});
process.send?.({ type: 'listening', url: `ws://127.0.0.1:${address.port}`, pid: process.pid } satisfies CapacityServerMessage);
