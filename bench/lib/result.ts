/** The one shape every system's latency run is reported in, so that kol, the baselines and the peers line up. */
import os from 'node:os';
import { corpusWer } from '../../engine/wer.js';
import type { BenchStream, StreamShape } from '../../corpus/streams.js';
import type { FinalRecord } from '../stream-run.js';
import { load1 } from './machine.js';
import type { UsageWindow } from './proc.js';
import { dist, type Dist } from './stats.js';

export interface LatencyResult {
  system: string;
  variant: string;
  concurrency: number;
  utterances: number;
  /** Utterances no final covered (by the end of the run). */
  unfinalized: number;
  /** True end of speech → final received (ms): what the user waits for. */
  eosToFinal: Dist;
  /** Raw values, for the CDF plot. */
  eosToFinalMs: number[];
  /** The segment's last audio sent (pause included) → final received (ms). */
  segEndToFinal: Dist;
  /** An utterance's first audio sent → first text covering it (ms). */
  firstText: Dist;
  /** speech_start → first partial (ms), kol only. */
  firstPartial: Dist;
  /** Audio seconds between consecutive partials of a segment. */
  partialGapS: Dist;
  partials: number;
  wer: number;
  audioSeconds: number;
  wallS: number;
  /** Server-side CPU (cores averaged over the run) and per second of audio; memory (MB). */
  serverCores: number;
  workerCores: number;
  cpuSecondsPerAudioSecond: number;
  serverRssMB: number;
  workerRssMB: number;
  /** Share of the wall time the whisper workers were busy, and the final jobs' wait for a worker (ms). */
  busyFraction: number;
  finalQueueWait: Dist;
  partialsDropped: number;
  loadBefore: string;
  loadAfter: string;
  /** Cores' worth of CPU other processes (not this bench) used during the run. */
  foreignCores: number | null;
  gpu?: { utilPct: Dist; memMiB: Dist } | null;
  notes: string[];
  /** kol only: the shape of speech played, and its segments, cut reasons, decoding and partial rate. */
  shape?: StreamShape;
  speech?: ShapeStats;
}

/** How a kol run's speech was cut and decoded, per shape × speakers (computed by shapes.ts). */
export interface ShapeStats {
  /** Final messages received, and the known utterances a final covered (of all). */
  finals: number;
  covered: number;
  utterances: number;
  /**
   * End of speech → final (ms). Where the stream has known utterances, the client's clock from the
   * utterance's last sample sent; where it has none (a recording without a transcript), the server's
   * own `latency_ms` of every final.
   */
  eosToFinal: Dist;
  eosSource: 'client' | 'server';
  /** Every final's inference and queueing (server figures, ms). */
  inference: Dist;
  queue: Dist;
  /** Every final's segment length (s), and its 5th percentile. */
  segmentS: Dist;
  segmentP5S: number;
  reasons: Record<FinalRecord['reason'], number>;
  degraded: number;
  partials: number;
  speechSeconds: number;
  firstPartial: Dist;
}

export const EMPTY: Dist = { n: 0, p50: NaN, p95: NaN, max: NaN, mean: NaN };

/** Corpus WER of the streams' finals; NaN where a stream has no transcript. */
export function werOf(streams: BenchStream[], hypotheses: string[]): number {
  if (streams.some((st) => st.utterances.length === 0)) return NaN;
  return corpusWer(streams.map((st, i) => ({ reference: st.utterances.map((u) => u.reference).join(' '), hypothesis: hypotheses[i] ?? '' }))).wer;
}

export function usageFields(usage: UsageWindow, audioSeconds: number) {
  return {
    wallS: usage.wallS,
    serverCores: usage.rootCpuS / usage.wallS,
    workerCores: usage.childCpuS / usage.wallS,
    cpuSecondsPerAudioSecond: (usage.rootCpuS + usage.childCpuS) / audioSeconds,
    serverRssMB: usage.maxRootRss / 2 ** 20,
    workerRssMB: usage.maxChildRss / 2 ** 20,
    foreignCores: usage.foreignCores,
  };
}

export function loadNow(): string {
  return `${load1()}/${os.availableParallelism()}`;
}

export { dist };
