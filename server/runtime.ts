/**
 * Starts the engine side of a server from its configuration: the whisper.cpp build, the model(s),
 * the worker pool(s) (local processes and remote whisper-servers), the scheduler and the shared VAD.
 */
import os from 'node:os';
import type { Logger } from '../engine/log.js';
import { DEGRADED_DECODING, Scheduler } from '../engine/scheduler.js';
import type { StreamTuning } from '../engine/stream.js';
import { SileroVad } from '../engine/vad/silero.js';
import { createLocalWorkers, defaultThreads } from '../engine/whisper/local-workers.js';
import { WorkerPool } from '../engine/whisper/pool.js';
import { logProgress, provisionEngine, provisionModel } from '../engine/whisper/provision.js';
import { RemoteWorker } from '../engine/whisper/remote-worker.js';
import type { WorkerHandle } from '../engine/whisper/worker.js';
import type { ServerConfig } from './config.js';
import { chooseEngine, type EngineBuilder } from './gpu.js';

export interface Runtime {
  vad: SileroVad;
  scheduler: Scheduler;
  finalPool: WorkerPool;
  /** A second pool on a smaller model for partials, when configured. */
  partialPool: WorkerPool | null;
  tuning: Partial<StreamTuning>;
  /** Whether the engine runs on a GPU. */
  gpu: boolean;
  close(): Promise<void>;
}

/**
 * `build` builds or finds whisper-server (default `provisionEngine`); tests pass a failing one to
 * exercise the GPU fallback. A first build or model download is logged as it goes.
 */
export async function startRuntime(config: ServerConfig, logger: Logger, build?: EngineBuilder): Promise<Runtime> {
  const progress = logProgress(logger);
  const needLocal = config.workers > 0 || (config.partialModel !== '' && config.partialWorkers > 0);
  // GPU or CPU (with the configured fallback when the GPU or its CUDA build is unusable): gpu.ts.
  const choice = needLocal ? await chooseEngine(config, logger, build ?? ((options) => provisionEngine({ ...options, logger }, progress))) : null;
  const engine = choice?.engine ?? null;
  const gpu = choice?.gpu ?? false;

  const finalWorkers: WorkerHandle[] = config.workerUrls.map((url, i) => new RemoteWorker({ id: `r${i}`, baseUrl: url, logger }));
  if (engine && config.workers > 0) {
    const model = await provisionModel(config.model, { gpu }, progress);
    finalWorkers.push(...createLocalWorkers({ binary: engine.binary, model, count: config.workers, threads: config.threads || undefined, flashAttention: config.flashAttention, useGpu: gpu, gpuDevices: config.gpuDevices, logger }));
    logger.info({ model, workers: config.workers, gpu }, 'starting whisper workers');
  }
  const finalPool = new WorkerPool(finalWorkers, { requestTimeoutMs: config.requestTimeoutMs, logger });
  let partialPool: WorkerPool | null = null;
  if (engine && config.partialModel && config.partialWorkers > 0) {
    const model = await provisionModel(config.partialModel, { gpu }, progress);
    partialPool = new WorkerPool(
      createLocalWorkers({ binary: engine.binary, model, count: config.partialWorkers, threads: config.threads || undefined, flashAttention: config.flashAttention, useGpu: gpu, gpuDevices: config.gpuDevices, idPrefix: 'p', logger }),
      { requestTimeoutMs: config.requestTimeoutMs, logger },
    );
    logger.info({ model, workers: config.partialWorkers }, 'starting partial-only workers');
  }

  const [vad] = await Promise.all([SileroVad.load(), finalPool.start(), partialPool?.start()]);
  // Local CPU workers whose threads outnumber the cores share them: a partial or a second final
  // beside a final slows it down (the default, every core for each worker). One thread per worker on
  // as many cores does not.
  const localThreads = (config.workers + (partialPool ? config.partialWorkers : 0)) * (config.threads || defaultThreads());
  const sharedCores = !gpu && config.workerUrls.length === 0 && localThreads > os.availableParallelism();
  const scheduler = new Scheduler(finalPool, partialPool ?? finalPool, { sharedCores, degraded: config.degradeFinals ? DEGRADED_DECODING : null });
  const tuning: Partial<StreamTuning> = {
    finalBeamSize: config.finalBeamSize,
    finalAudioCtx: config.finalAudioCtx === 'full' ? undefined : config.finalAudioCtx,
    promptWithPreviousFinal: config.promptWithPreviousFinal,
  };
  return {
    vad,
    scheduler,
    finalPool,
    partialPool,
    tuning,
    gpu,
    async close() {
      scheduler.close();
      await Promise.all([finalPool.close(), partialPool?.close(), vad.close()]);
    },
  };
}
