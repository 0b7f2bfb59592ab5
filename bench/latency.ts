/**
 * kol under load: starts `kol serve` (bench/server-proc.ts) in its own process and plays N bench
 * streams to it at once, at real-time pace, over real WebSockets; collects what the clients saw and
 * what the server did (worker busy time, scheduler waits, CPU, memory).
 */
import type { ServerConfig } from '../server/config.js';
import { spawnHelper, type Helper } from './lib/child.js';
import { sampleUsage } from './lib/proc.js';
import { dist, EMPTY, loadNow, usageFields, werOf, type LatencyResult } from './lib/result.js';
import type { ServerProcMessage, ServerProcStats } from './server-proc.js';
import type { Clip } from '../corpus/assets.js';
import { shapeStats } from './shapes.js';
import { joinClips, type BenchStream, type StreamShape } from '../corpus/streams.js';
import { runStaggered, runStream } from './stream-run.js';

export interface OurServer {
  helper: Helper<ServerProcMessage>;
  url: string;
  pid: number;
  workers: number;
  close(): Promise<void>;
}

export async function startOurServer(config: Partial<ServerConfig>): Promise<OurServer> {
  const helper = spawnHelper<ServerProcMessage>('server-proc.ts', [JSON.stringify({ port: 0, logLevel: 'error', maxSessions: 10_000, maxSessionsPerKey: 10_000, ...config })]);
  const first = await helper.next((m): m is Extract<ServerProcMessage, { type: 'listening' | 'error' }> => m.type === 'listening' || m.type === 'error', 600_000);
  if (first.type === 'error') {
    await helper.close();
    throw new Error(`kol server did not start: ${first.message}`);
  }
  return { helper, url: first.url, pid: first.pid, workers: first.workers, close: () => helper.close() };
}

/** A fresh worker's first requests are slower: one clip through the server, not measured. */
export async function warmUp(server: OurServer, clip: Clip): Promise<void> {
  await runStream(`${server.url}/v1/stream`, await joinClips([clip], [0.8]));
}

let statsId = 0;
export async function serverStats(server: OurServer): Promise<ServerProcStats> {
  const id = ++statsId;
  server.helper.send({ type: 'stats', id });
  const reply = await server.helper.next((m): m is Extract<ServerProcMessage, { type: 'stats' }> => m.type === 'stats' && m.id === id, 30_000);
  return reply.stats;
}

export interface OursOptions {
  system?: string;
  variant: string;
  /** The shape of speech the streams hold (kol's own runs). */
  shape?: StreamShape;
  /** ms between the starts of consecutive clients, so that N clients do not speak in lockstep. */
  staggerMs?: number;
  /** Extra query parameters of /v1/stream (e.g. partials=false). */
  query?: Record<string, string>;
  onGpuSample?: { start(): void; stop(): LatencyResult['gpu'] };
}

export async function measureOurs(server: OurServer, streams: BenchStream[], options: OursOptions): Promise<LatencyResult> {
  const n = streams.length;
  const query = new URLSearchParams(options.query ?? {});
  const url = `${server.url}/v1/stream${query.size > 0 ? `?${query}` : ''}`;
  const loadBefore = loadNow();
  server.helper.send({ type: 'reset' });
  const before = await serverStats(server);
  const usage = sampleUsage(server.pid);
  options.onGpuSample?.start();
  const runs = await runStaggered(url, streams, options.staggerMs);
  const window = usage.stop();
  const gpu = options.onGpuSample?.stop() ?? null;
  const after = await serverStats(server);
  const audioSeconds = streams.reduce((sum, st) => sum + st.seconds, 0);

  const busyMs = after.pool.workers.reduce((sum, w) => sum + w.busyMs, 0) - before.pool.workers.reduce((sum, w) => sum + w.busyMs, 0);
  const finalsScheduled = after.scheduled.filter((r) => r.kind === 'final' && r.outcome === 'done');
  const eos = runs.flatMap((r) => r.finals.map((f) => f.endOfSpeechToFinalMs));
  return {
    system: options.system ?? 'kol',
    variant: options.variant,
    concurrency: n,
    utterances: streams.reduce((sum, st) => sum + st.utterances.length, 0),
    unfinalized: runs.reduce((sum, r) => sum + r.unfinalized, 0),
    eosToFinal: dist(eos),
    eosToFinalMs: eos,
    segEndToFinal: dist(runs.flatMap((r) => r.finals.map((f) => f.segmentEndToFinalMs))),
    firstText: dist(runs.flatMap((r) => r.firstTextMs)),
    firstPartial: runs.some((r) => r.firstPartialMs.length > 0) ? dist(runs.flatMap((r) => r.firstPartialMs)) : EMPTY,
    partialGapS: dist(runs.flatMap((r) => r.partialGapsS)),
    partials: runs.reduce((sum, r) => sum + r.partials, 0),
    wer: werOf(streams, runs.map((r) => r.hypothesis)),
    audioSeconds,
    ...usageFields(window, audioSeconds),
    busyFraction: busyMs / (window.wallS * 1000 * Math.max(1, after.pool.workers.length)),
    finalQueueWait: dist(finalsScheduled.map((r) => r.waitMs)),
    partialsDropped: after.scheduled.filter((r) => r.kind === 'partial' && r.outcome === 'dropped').length,
    loadBefore,
    loadAfter: loadNow(),
    gpu,
    notes: [],
    shape: options.shape,
    speech: shapeStats(streams, runs),
  };
}
