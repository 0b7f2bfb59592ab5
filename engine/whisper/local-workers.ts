import os from 'node:os';
import type { Logger } from '../log.js';
import { LocalWorker } from './worker.js';

export interface LocalWorkersOptions {
  binary: string;
  model: string;
  count: number;
  /**
   * CPU threads per worker. Default: every core (at most 8) for each worker. Measured on 2 cores
   * (bench/RESULTS.md): a lone request runs 37 % faster with 2 threads than with 1, while two
   * concurrent requests on 2 × 2 threads lose 18 % throughput to oversubscription — latency for the
   * common case (one person speaking) wins.
   */
  threads?: number;
  flashAttention?: boolean;
  useGpu?: boolean;
  /** GPU ids, assigned to workers round-robin (several workers may share one GPU). */
  gpuDevices?: number[];
  /** Prefix of the worker ids, e.g. "w" gives w0, w1, …; "p" for a partials-only pool. */
  idPrefix?: string;
  /** Where the workers' lines go; default: nowhere. */
  logger?: Logger;
}

/** CPU threads per worker when none are configured: every core, at most 8 (see `threads` above). */
export function defaultThreads(): number {
  return Math.max(1, Math.min(8, os.availableParallelism()));
}

/** The local whisper-server workers for a pool: one process each, sharing out cores and GPUs. */
export function createLocalWorkers(options: LocalWorkersOptions): LocalWorker[] {
  const threads = options.threads ?? defaultThreads();
  return Array.from({ length: options.count }, (_, i) => {
    const gpus = options.gpuDevices ?? [];
    return new LocalWorker({
      id: `${options.idPrefix ?? 'w'}${i}`,
      binary: options.binary,
      model: options.model,
      threads,
      flashAttention: options.flashAttention ?? true,
      useGpu: options.useGpu ?? false,
      gpuDevice: gpus.length > 0 ? gpus[i % gpus.length] : undefined,
      logger: options.logger,
    });
  });
}
