import os from 'node:os';
import { LocalWorker } from './worker.js';

export interface LocalWorkersOptions {
  binary: string;
  model: string;
  count: number;
  /** CPU threads per worker. Default: the cores shared out between the workers, at least 1. */
  threads?: number;
  flashAttention?: boolean;
  useGpu?: boolean;
  /** GPU ids, assigned to workers round-robin (several workers may share one GPU). */
  gpuDevices?: number[];
  /** Prefix of the worker ids, e.g. "w" gives w0, w1, …; "p" for a partials-only pool. */
  idPrefix?: string;
}

/** The local whisper-server workers for a pool: one process each, sharing out cores and GPUs. */
export function createLocalWorkers(options: LocalWorkersOptions): LocalWorker[] {
  const threads = options.threads ?? Math.max(1, Math.floor(os.availableParallelism() / options.count));
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
    });
  });
}
