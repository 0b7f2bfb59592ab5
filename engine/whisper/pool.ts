/**
 * A pool of whisper-server workers behind one `transcribe()`. whisper-server runs one inference at a
 * time, so the pool hands each worker one request at a time from a FIFO queue. A crashed or hung
 * worker is restarted with backoff (supervisor.ts) and its request retried once on the next free worker.
 */
import { EventEmitter } from 'node:events';
import { KolError, toKolError } from '../errors.js';
import { SILENT_LOGGER, type Logger } from '../log.js';
import { SAMPLE_RATE } from '../audio/format.js';
import type { TranscribeOptions, Transcriber, Transcript } from './types.js';
import { requestInference } from './client.js';
import { WorkerRestarter } from './supervisor.js';
import type { WorkerHandle } from './worker.js';

/** whisper.cpp refuses audio under 100 ms. */
export const MIN_AUDIO_SAMPLES = SAMPLE_RATE / 10;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export interface PoolOptions {
  /** Time limit per request; past it the worker counts as hung, is restarted and the request retried. */
  requestTimeoutMs?: number;
  /** Where its lines go; default: nowhere. */
  logger?: Logger;
}

export interface WorkerStats {
  id: string;
  url: string;
  state: 'ready' | 'busy' | 'starting' | 'restarting' | 'stopped';
  requests: number;
  failures: number;
  restarts: number;
  busyMs: number;
  /** The whisper-server process id of a local worker (for GPU memory per worker); absent for remote ones. */
  pid?: number;
}

export interface PoolStats {
  queueDepth: number;
  readyWorkers: number;
  idleWorkers: number;
  workers: WorkerStats[];
}

/** Emitted for every finished request, successful or not, for metrics. */
export interface JobRecord {
  worker: string;
  queueWaitMs: number;
  inferenceMs: number;
  audioSeconds: number;
  ok: boolean;
  code?: string;
}

interface Job {
  pcm: Float32Array;
  options: TranscribeOptions;
  signal?: AbortSignal;
  attempts: number;
  enqueuedAt: number;
  resolve: (t: Transcript) => void;
  reject: (e: KolError) => void;
}

interface Slot {
  worker: WorkerHandle;
  busy: boolean;
  restarter: WorkerRestarter;
  stats: Omit<WorkerStats, 'state' | 'id' | 'url'>;
}

export class WorkerPool extends EventEmitter<{ job: [JobRecord]; restart: [workerId: string]; idle: [] }> implements Transcriber {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly requestTimeoutMs: number;
  private readonly logger: Logger;
  private closed = false;

  constructor(workers: WorkerHandle[], options: PoolOptions = {}) {
    super();
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.slots = workers.map((worker) => this.supervise(worker));
    for (const slot of this.slots) {
      slot.worker.on('down', (reason) => {
        this.logger.warn({ worker: slot.worker.id, reason }, 'worker down; restarting');
        void slot.restarter.restart();
      });
    }
  }

  /** A worker's slot, with the restarter that brings it back (backing off while its starts keep failing). */
  private supervise(worker: WorkerHandle): Slot {
    const stats = { requests: 0, failures: 0, restarts: 0, busyMs: 0 };
    const restarter = new WorkerRestarter(worker, {
      stopped: () => this.closed,
      restarted: () => {
        stats.restarts++;
        this.emit('restart', worker.id);
        this.logger.info({ worker: worker.id, restarts: stats.restarts }, 'worker restarted');
      },
      failed: (err) => {
        this.logger.error({ worker: worker.id, code: err.code, err: err.message }, 'worker restart failed');
        if (this.readyCount() === 0) this.failQueued(new KolError('worker_unavailable', `No whisper-server worker is running: ${err.message.split('\n')[0]}`));
      },
      settled: () => {
        this.dispatch();
        if (this.idleCount() > 0) this.emit('idle');
      },
    });
    return { worker, busy: false, restarter, stats };
  }

  /** Starts every worker. Resolves when at least one is ready; rejects with the first error if none is. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.slots.map((slot) => slot.worker.start()));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [[this.slots[i], toKolError(r.reason)] as const] : []));
    if (failures.length === this.slots.length) {
      await this.close();
      throw failures[0][1];
    }
    for (const [slot, err] of failures) {
      this.logger.error({ worker: slot.worker.id, code: err.code, err: err.message }, 'worker failed to start; retrying in the background');
      void slot.restarter.restart();
    }
    this.dispatch();
  }

  get size(): number {
    return this.slots.length;
  }

  /** Workers ready and not busy: the scheduler hands out work only when this is above zero. */
  idleCount(): number {
    return this.slots.filter((s) => !s.busy && s.worker.state === 'ready').length;
  }

  readyCount(): number {
    return this.slots.filter((s) => s.worker.state === 'ready').length;
  }

  stats(): PoolStats {
    return {
      queueDepth: this.queue.length,
      readyWorkers: this.readyCount(),
      idleWorkers: this.idleCount(),
      workers: this.slots.map((s) => ({
        id: s.worker.id,
        url: s.worker.baseUrl,
        state: s.restarter.restarting ? 'restarting' : s.worker.state === 'ready' ? (s.busy ? 'busy' : 'ready') : s.worker.state,
        ...s.stats,
        pid: (s.worker as WorkerHandle & { pid?: number }).pid,
      })),
    };
  }

  transcribe(pcm: Float32Array, options: TranscribeOptions = {}, signal?: AbortSignal): Promise<Transcript> {
    if (this.closed) return Promise.reject(new KolError('pool_closed'));
    if (pcm.length === 0) return Promise.reject(new KolError('audio_empty'));
    if (pcm.length < MIN_AUDIO_SAMPLES) {
      return Promise.reject(new KolError('audio_too_short', `The audio is ${(pcm.length / SAMPLE_RATE).toFixed(3)} s long; whisper needs at least 0.1 s.`));
    }
    if (signal?.aborted) return Promise.reject(new KolError('transcription_aborted'));
    return new Promise<Transcript>((resolve, reject) => {
      const job: Job = { pcm, options, signal, attempts: 0, enqueuedAt: performance.now(), resolve, reject };
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.queue.indexOf(job);
          if (at >= 0) {
            this.queue.splice(at, 1);
            reject(new KolError('transcription_aborted'));
          }
        },
        { once: true },
      );
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => !s.busy && !s.restarter.restarting && s.worker.state === 'ready');
      if (!slot) return;
      const job = this.queue.shift()!;
      void this.run(slot, job);
    }
  }

  private async run(slot: Slot, job: Job): Promise<void> {
    slot.busy = true;
    job.attempts++;
    const queueWaitMs = performance.now() - job.enqueuedAt;
    const started = performance.now();
    // Long audio takes longer: the limit grows by 2 s per second of audio (a hung worker is still caught).
    // Whole ms: timers take integers, and audio lengths are any number of samples.
    const timeoutMs = job.options.timeoutMs ?? this.requestTimeoutMs + Math.ceil((job.pcm.length / SAMPLE_RATE) * 2000);
    try {
      const transcript = await requestInference(slot.worker.baseUrl, slot.worker.id, job.pcm, { ...job.options, timeoutMs }, job.signal);
      slot.stats.requests++;
      slot.restarter.healthy();
      this.emit('job', { worker: slot.worker.id, queueWaitMs, inferenceMs: transcript.inferenceMs, audioSeconds: transcript.duration, ok: true });
      job.resolve(transcript);
    } catch (raw) {
      const err = toKolError(raw);
      slot.stats.failures++;
      this.emit('job', { worker: slot.worker.id, queueWaitMs, inferenceMs: performance.now() - started, audioSeconds: job.pcm.length / SAMPLE_RATE, ok: false, code: err.code });
      const workerBroken = err.code === 'worker_crashed' || err.code === 'worker_timeout';
      if (workerBroken) {
        this.logger.warn({ worker: slot.worker.id, code: err.code, attempt: job.attempts }, 'request failed on a broken worker');
        void slot.restarter.restart();
      }
      if (workerBroken && job.attempts < 2 && !this.closed) {
        // Retry once, ahead of newer work, on whichever worker is free first (maybe the restarted one).
        job.enqueuedAt = performance.now();
        this.queue.unshift(job);
      } else {
        job.reject(err);
      }
    } finally {
      slot.stats.busyMs += performance.now() - started;
      slot.busy = false;
      this.dispatch();
      if (this.idleCount() > 0) this.emit('idle');
    }
  }

  private failQueued(err: KolError): void {
    for (const job of this.queue.splice(0)) job.reject(err);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failQueued(new KolError('pool_closed'));
    await Promise.all(this.slots.map((s) => s.worker.stop()));
  }
}
