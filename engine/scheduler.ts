/**
 * One queue across all sessions in front of the worker pool. Finals go before partials; within each
 * kind, sessions take turns (round-robin), so a busy session cannot starve a quiet one. A session has
 * at most one pending partial: a newer one replaces it. When a final waits and every worker is busy,
 * the oldest running partial is cancelled to free its worker — partials never delay a final.
 *
 * Workers on the same CPU cores are not independent: a partial running beside a final takes cores
 * from it. With `partialsYieldToFinals` (local CPU workers), no partial starts while a final runs,
 * and starting a final cancels the running partials.
 */
import { EventEmitter } from 'node:events';
import { KolError } from './errors.js';
import type { TranscribeOptions, Transcript } from './whisper/types.js';

export type JobKind = 'final' | 'partial';

/** What the scheduler needs from a pool: WorkerPool provides it. */
export interface SchedulablePool {
  idleCount(): number;
  on(event: 'idle', listener: () => void): unknown;
  transcribe(pcm: Float32Array, options?: TranscribeOptions, signal?: AbortSignal): Promise<Transcript>;
}

export interface ScheduledRecord {
  kind: JobKind;
  sessionId: string;
  waitMs: number;
  outcome: 'done' | 'dropped' | 'failed';
}

interface Pending {
  kind: JobKind;
  sessionId: string;
  pcm: Float32Array;
  options: TranscribeOptions;
  enqueuedAt: number;
  controller: AbortController;
  resolve: (t: Transcript | null) => void;
  reject: (e: unknown) => void;
}

export interface SchedulerStats {
  pendingFinals: number;
  pendingPartials: number;
  runningFinals: number;
  runningPartials: number;
}

export class Scheduler extends EventEmitter<{ scheduled: [ScheduledRecord] }> {
  private readonly finals = new Map<string, Pending[]>();
  private readonly partials = new Map<string, Pending>();
  private readonly running = new Set<Pending>();
  /** When each session last had a partial dispatched. */
  private readonly lastPartialAt = new Map<string, number>();
  /** Round-robin order of sessions: the session served last moves to the back. */
  private turn: string[] = [];
  private closed = false;
  private readonly finalPool: SchedulablePool;
  private readonly partialPool: SchedulablePool;
  private readonly partialsYieldToFinals: boolean;

  /** `partialPool` may be a second pool on a smaller model; by default partials share the final pool. */
  constructor(finalPool: SchedulablePool, partialPool: SchedulablePool = finalPool, options: { partialsYieldToFinals?: boolean } = {}) {
    super();
    this.finalPool = finalPool;
    this.partialPool = partialPool;
    this.partialsYieldToFinals = options.partialsYieldToFinals ?? false;
    finalPool.on('idle', () => this.dispatch());
    if (partialPool !== finalPool) partialPool.on('idle', () => this.dispatch());
  }

  /**
   * Resolves with the transcript; rejects with the pool's error. Never dropped by the scheduler; the
   * caller may cancel it through `signal` (a speculative final whose pause turned out not to be the end).
   */
  submitFinal(sessionId: string, pcm: Float32Array, options: TranscribeOptions, signal?: AbortSignal): Promise<Transcript> {
    return new Promise<Transcript | null>((resolve, reject) => {
      const job = this.pending('final', sessionId, pcm, options, resolve, reject);
      const queue = this.finals.get(sessionId) ?? [];
      queue.push(job);
      this.finals.set(sessionId, queue);
      signal?.addEventListener('abort', () => this.cancelFinal(job), { once: true });
      this.dispatch();
    }).then((t) => {
      if (t === null) throw new KolError('transcription_aborted');
      return t;
    });
  }

  /** Resolves with the transcript, or null when the partial was dropped (superseded, preempted, cancelled). */
  submitPartial(sessionId: string, pcm: Float32Array, options: TranscribeOptions): Promise<Transcript | null> {
    return new Promise<Transcript | null>((resolve, reject) => {
      const superseded = this.partials.get(sessionId);
      if (superseded) {
        this.record(superseded, 'dropped');
        superseded.resolve(null);
      }
      this.partials.set(sessionId, this.pending('partial', sessionId, pcm, options, resolve, reject));
      this.dispatch();
    });
  }

  /** Whether a worker for finals is free right now (speculative work is only worth starting then). */
  hasIdleFinalWorker(): boolean {
    return this.finalPool.idleCount() > 0;
  }

  private cancelFinal(job: Pending): void {
    const queue = this.finals.get(job.sessionId);
    const at = queue?.indexOf(job) ?? -1;
    if (queue && at >= 0) {
      queue.splice(at, 1);
      this.record(job, 'dropped');
      job.resolve(null);
    } else if (this.running.has(job)) {
      job.controller.abort();
    }
  }

  /**
   * Drops a session's partial that waits for a worker, but lets a running one finish: in a pause a
   * new partial would only repeat itself, while the running one is the caption's next step.
   */
  dropQueuedPartial(sessionId: string): void {
    const queued = this.partials.get(sessionId);
    if (!queued) return;
    this.partials.delete(sessionId);
    this.record(queued, 'dropped');
    queued.resolve(null);
  }

  /** Drops a session's pending and running partials (its segment ended, or it closed). */
  cancelPartials(sessionId: string): void {
    this.dropQueuedPartial(sessionId);
    for (const job of this.running) if (job.kind === 'partial' && job.sessionId === sessionId) job.controller.abort();
  }

  /** Drops everything of a session, finals included (the client went away). */
  cancelSession(sessionId: string): void {
    this.cancelPartials(sessionId);
    for (const job of this.finals.get(sessionId) ?? []) job.reject(new KolError('transcription_aborted'));
    this.finals.delete(sessionId);
    for (const job of this.running) if (job.sessionId === sessionId) job.controller.abort();
    this.turn = this.turn.filter((id) => id !== sessionId);
    this.lastPartialAt.delete(sessionId);
  }

  stats(): SchedulerStats {
    let pendingFinals = 0;
    for (const q of this.finals.values()) pendingFinals += q.length;
    const running = [...this.running];
    return {
      pendingFinals,
      pendingPartials: this.partials.size,
      runningFinals: running.filter((j) => j.kind === 'final').length,
      runningPartials: running.filter((j) => j.kind === 'partial').length,
    };
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.finals.keys(), ...this.partials.keys()]) this.cancelSession(id);
  }

  private pending(kind: JobKind, sessionId: string, pcm: Float32Array, options: TranscribeOptions, resolve: Pending['resolve'], reject: Pending['reject']): Pending {
    if (!this.turn.includes(sessionId)) this.turn.push(sessionId);
    return { kind, sessionId, pcm, options, enqueuedAt: performance.now(), controller: new AbortController(), resolve, reject };
  }

  private dispatch(): void {
    if (this.closed) return;
    // Finals first, sessions in turn.
    while (this.finalPool.idleCount() > 0) {
      const job = this.takeNext(this.finals);
      if (!job) break;
      if (this.partialsYieldToFinals) this.abortRunningPartials();
      this.run(job, this.finalPool);
    }
    if (this.hasQueuedFinals() && this.finalPool.idleCount() === 0) this.preemptPartial();
    if (this.partialsYieldToFinals && this.hasRunningFinal()) return;
    // Then partials, only on workers that nothing more urgent wants.
    while (this.partialPool.idleCount() > 0 && !(this.partialPool === this.finalPool && this.hasQueuedFinals())) {
      const job = this.takeNextPartial();
      if (!job) break;
      this.run(job, this.partialPool);
    }
  }

  private hasQueuedFinals(): boolean {
    for (const q of this.finals.values()) if (q.length > 0) return true;
    return false;
  }

  private takeNext(queues: Map<string, Pending[]>): Pending | undefined {
    for (const sessionId of this.turn) {
      const queue = queues.get(sessionId);
      if (!queue || queue.length === 0) continue;
      const job = queue.shift()!;
      if (queue.length === 0) queues.delete(sessionId);
      this.served(sessionId);
      return job;
    }
    return undefined;
  }

  /** The partial of the session that has gone longest without one: every live caption keeps moving. */
  private takeNextPartial(): Pending | undefined {
    let best: Pending | undefined;
    for (const job of this.partials.values()) {
      const since = this.lastPartialAt.get(job.sessionId) ?? -Infinity;
      if (!best || since < (this.lastPartialAt.get(best.sessionId) ?? -Infinity)) best = job;
    }
    if (!best) return undefined;
    this.partials.delete(best.sessionId);
    this.lastPartialAt.set(best.sessionId, performance.now());
    return best;
  }

  private served(sessionId: string): void {
    this.turn = [...this.turn.filter((id) => id !== sessionId), sessionId];
  }

  private hasRunningFinal(): boolean {
    for (const job of this.running) if (job.kind === 'final') return true;
    return false;
  }

  private abortRunningPartials(): void {
    for (const job of this.running) if (job.kind === 'partial') job.controller.abort();
  }

  private preemptPartial(): void {
    if (this.partialPool !== this.finalPool) return; // partials have workers of their own
    const victim = [...this.running].find((j) => j.kind === 'partial' && !j.controller.signal.aborted);
    victim?.controller.abort();
  }

  private run(job: Pending, pool: SchedulablePool): void {
    this.running.add(job);
    const waitMs = performance.now() - job.enqueuedAt;
    pool
      .transcribe(job.pcm, job.options, job.controller.signal)
      .then(
        (transcript) => {
          this.record(job, 'done', waitMs);
          job.resolve(transcript);
        },
        (err: unknown) => {
          if (job.kind === 'partial' || job.controller.signal.aborted) {
            // A failed or preempted partial is only a missed preview; the final will come.
            this.record(job, 'dropped', waitMs);
            job.resolve(null);
          } else {
            this.record(job, 'failed', waitMs);
            job.reject(err);
          }
        },
      )
      .finally(() => {
        this.running.delete(job);
        this.dispatch();
      });
  }

  private record(job: Pending, outcome: ScheduledRecord['outcome'], waitMs = performance.now() - job.enqueuedAt): void {
    this.emit('scheduled', { kind: job.kind, sessionId: job.sessionId, waitMs, outcome });
  }
}
