/**
 * One queue across all sessions in front of the worker pool. Finals go before partials; within each
 * kind, sessions take turns (round-robin), so a busy session cannot starve a quiet one. A session has
 * at most one pending partial: a newer one replaces it. When a final waits and every worker is busy,
 * the oldest running partial is cancelled to free its worker — partials never delay a final.
 *
 * Degrade, don't fall behind: a final that meets load — it had to wait for other finals (finals held
 * every worker), other finals wait behind it, or (shared cores) another final is running — is decoded
 * with the cheaper `degraded` settings instead of late. Full accuracy returns by itself once the queue drains. Each final says
 * how it was decoded.
 *
 * Partials: a segment's first partial goes before repeat partials of other segments, so every
 * segment shows text before its final however busy the workers are. A segment that ended without
 * showing text is owed a partial: owed partials wait in a queue of their own, ahead of the finals, and
 * no newer partial replaces them.
 *
 * Workers on the same CPU cores (`sharedCores`, local CPU workers) are not independent: a partial
 * running beside a final takes cores from it. There, no repeat partial starts while a final runs,
 * and starting a final cancels the running repeat partials; a first partial still runs (it is cheap,
 * and without it a segment that starts during a long final would show nothing until its own final).
 */
import { EventEmitter } from 'node:events';
import { KolError } from './errors.js';
import { encoderFrames } from './whisper/client.js';
import type { TranscribeOptions, Transcript } from './whisper/types.js';

export type JobKind = 'final' | 'partial';

/** What the scheduler needs from a pool: WorkerPool provides it. */
export interface SchedulablePool {
  idleCount(): number;
  on(event: 'idle', listener: () => void): unknown;
  transcribe(pcm: Float32Array, options?: TranscribeOptions, signal?: AbortSignal): Promise<Transcript>;
}

/** How a final was decoded: beam width, encoder window (frames of 20 ms; 1500 = 30 s), and whether load degraded it. */
export interface Decoding {
  beam: number;
  audioCtx: number;
  degraded: boolean;
}

export type DecodedFinal = Transcript & { decoding: Decoding };

export interface SchedulerOptions {
  /** Local CPU workers: they share the cores (see the header). Default false. */
  sharedCores?: boolean;
  /** What a final under load is decoded with; null never degrades. Default DEGRADED_DECODING. */
  degraded?: Pick<TranscribeOptions, 'beamSize' | 'audioCtx'> | null;
}

/**
 * Beam 5 on a window sized to the segment: 2.5× less inference than the full window on 2 cores, for
 * +0.05 Hebrew WER whole-clip (README "Decoding choices"); greedy on the full window saves far less.
 */
export const DEGRADED_DECODING: Pick<TranscribeOptions, 'beamSize' | 'audioCtx'> = { beamSize: 5, audioCtx: 'auto' };

export interface ScheduledRecord {
  kind: JobKind;
  sessionId: string;
  waitMs: number;
  outcome: 'done' | 'dropped' | 'failed';
  /** Finals: decoded with the degraded settings. */
  degraded?: boolean;
}

interface Pending {
  kind: JobKind;
  sessionId: string;
  pcm: Float32Array;
  options: TranscribeOptions;
  /** Partials: the segment has shown no partial yet. */
  first: boolean;
  /** A first partial whose segment has ended: it goes before finals (see cancelPartials). */
  owed: boolean;
  /** Finals: when submitted, finals running or waiting already filled every worker. */
  behindFinals: boolean;
  enqueuedAt: number;
  controller: AbortController;
  resolve: (t: DecodedFinal | null) => void;
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
  /** Owed partials of ended segments, oldest first: never superseded, dispatched before finals. */
  private owed: Pending[] = [];
  private readonly running = new Set<Pending>();
  /** When each session last had a partial dispatched. */
  private readonly lastPartialAt = new Map<string, number>();
  /** Round-robin order of sessions: the session served last moves to the back. */
  private turn: string[] = [];
  private closed = false;
  private readonly finalPool: SchedulablePool;
  private readonly partialPool: SchedulablePool;
  private readonly sharedCores: boolean;
  private readonly degraded: SchedulerOptions['degraded'];

  /** `partialPool` may be a second pool on a smaller model; by default partials share the final pool. */
  constructor(finalPool: SchedulablePool, partialPool: SchedulablePool = finalPool, options: SchedulerOptions = {}) {
    super();
    this.finalPool = finalPool;
    this.partialPool = partialPool;
    this.sharedCores = options.sharedCores ?? false;
    this.degraded = options.degraded === undefined ? DEGRADED_DECODING : options.degraded;
    finalPool.on('idle', () => this.dispatch());
    if (partialPool !== finalPool) partialPool.on('idle', () => this.dispatch());
  }

  /**
   * Resolves with the transcript; rejects with the pool's error. Never dropped by the scheduler; the
   * caller may cancel it through `signal` (a speculative final whose pause turned out not to be the end).
   */
  submitFinal(sessionId: string, pcm: Float32Array, options: TranscribeOptions, signal?: AbortSignal): Promise<DecodedFinal> {
    return new Promise<DecodedFinal | null>((resolve, reject) => {
      const job = this.pending('final', sessionId, pcm, options, false, resolve, reject);
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

  /**
   * Resolves with the transcript, or null when the partial was dropped (superseded, preempted,
   * cancelled). `first`: the segment has shown no partial yet (see the header).
   */
  submitPartial(sessionId: string, pcm: Float32Array, options: TranscribeOptions, first = false, owed = false): Promise<Transcript | null> {
    return new Promise<Transcript | null>((resolve, reject) => {
      const job = this.pending('partial', sessionId, pcm, options, first, resolve, reject);
      if (owed) {
        job.owed = true;
        this.owed.push(job);
      } else {
        this.dropQueuedPartial(sessionId);
        this.partials.set(sessionId, job);
      }
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

  /**
   * Drops a session's pending and running partials (its segment ended, or it closed). With
   * `keepFirst` (a segment ended that has shown no text yet), its first partial is kept and goes
   * before every final: the only way a caption shows text before that segment's final when the
   * workers were busy with finals for the whole segment.
   */
  cancelPartials(sessionId: string, keepFirst = false): boolean {
    const queued = this.partials.get(sessionId);
    let kept = false;
    if (keepFirst && queued?.first) {
      this.partials.delete(sessionId);
      queued.owed = true;
      this.owed.push(queued);
      kept = true;
      this.dispatch();
    } else {
      this.dropQueuedPartial(sessionId);
    }
    // Partials already owed to earlier segments are left alone: their finals wait for them.
    for (const job of this.running) {
      if (job.kind !== 'partial' || job.sessionId !== sessionId || job.owed) continue;
      if (keepFirst && job.first) {
        job.owed = true; // not preempted by the finals now queued
        kept = true;
      } else job.controller.abort();
    }
    return kept;
  }

  /** Drops everything of a session, finals included (the client went away). */
  cancelSession(sessionId: string): void {
    this.cancelPartials(sessionId);
    for (const job of this.owed.filter((j) => j.sessionId === sessionId)) {
      this.record(job, 'dropped');
      job.resolve(null);
    }
    this.owed = this.owed.filter((j) => j.sessionId !== sessionId);
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
      pendingPartials: this.partials.size + this.owed.length,
      runningFinals: running.filter((j) => j.kind === 'final').length,
      runningPartials: running.filter((j) => j.kind === 'partial').length,
    };
  }

  close(): void {
    this.closed = true;
    for (const id of new Set([...this.finals.keys(), ...this.partials.keys(), ...this.owed.map((j) => j.sessionId)])) this.cancelSession(id);
  }

  private pending(kind: JobKind, sessionId: string, pcm: Float32Array, options: TranscribeOptions, first: boolean, resolve: Pending['resolve'], reject: Pending['reject']): Pending {
    if (!this.turn.includes(sessionId)) this.turn.push(sessionId);
    const behindFinals = kind === 'final' && this.finalsFillWorkers();
    return { kind, sessionId, pcm, options, first, owed: false, behindFinals, enqueuedAt: performance.now(), controller: new AbortController(), resolve, reject };
  }

  private dispatch(): void {
    if (this.closed) return;
    // A first partial owed to a segment that ended without text, then finals, sessions in turn.
    while (this.owed.length > 0 && this.partialPool.idleCount() > 0) this.run(this.owed.shift()!, this.partialPool, false);
    while (this.finalPool.idleCount() > 0) {
      const job = this.takeNext(this.finals);
      if (!job) break;
      const degraded = this.degraded !== null && this.underLoad(job);
      if (degraded) job.options = { ...job.options, ...this.degraded };
      if (this.sharedCores) this.abortRunningPartials();
      this.run(job, this.finalPool, degraded);
    }
    if (this.hasQueuedFinals() && this.finalPool.idleCount() === 0) this.preemptPartial();
    // Then partials, only on workers that nothing more urgent wants; on shared cores, while a final
    // runs, only first partials.
    const onlyFirst = this.sharedCores && this.hasRunningFinal();
    while (this.partialPool.idleCount() > 0 && !(this.partialPool === this.finalPool && this.hasQueuedFinals())) {
      const job = this.takeNextPartial(onlyFirst);
      if (!job) break;
      this.run(job, this.partialPool, false);
    }
  }

  /**
   * A final meets load when it had to wait for other finals, others wait behind it, or (shared cores)
   * one is running. Waiting for a partial to be preempted is not load.
   */
  private underLoad(job: Pending): boolean {
    return job.behindFinals || this.hasQueuedFinals() || (this.sharedCores && this.hasRunningFinal());
  }

  /**
   * Finals running or queued hold every worker of the final pool, so a new final would wait for a
   * final. A worker held by a partial (preempted for a final) or by a cancelled job winding down is
   * not held by a final: one speaker's final that waits only for those is decoded in full.
   */
  private finalsFillWorkers(): boolean {
    let workers = this.finalPool.idleCount();
    let finals = 0;
    for (const job of this.running) {
      // Finals run on the final pool; partials too, unless they have workers of their own.
      if (job.kind === 'partial' && this.partialPool !== this.finalPool) continue;
      workers++;
      if (job.kind === 'final' && !job.controller.signal.aborted) finals++;
    }
    for (const q of this.finals.values()) finals += q.length;
    return finals >= workers;
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

  /**
   * A first partial before repeat ones; among equals, the session that has gone longest without a
   * partial: every live caption keeps moving.
   */
  private takeNextPartial(onlyFirst: boolean): Pending | undefined {
    let best: Pending | undefined;
    const since = (job: Pending) => this.lastPartialAt.get(job.sessionId) ?? -Infinity;
    for (const job of this.partials.values()) {
      if (onlyFirst && !job.first) continue;
      if (!best || (job.first && !best.first) || (job.first === best.first && since(job) < since(best))) best = job;
    }
    if (!best) return undefined;
    this.partials.delete(best.sessionId);
    this.lastPartialAt.set(best.sessionId, performance.now());
    return best;
  }

  private served(sessionId: string): void {
    this.turn = [...this.turn.filter((id) => id !== sessionId), sessionId];
  }

  /** A final is running (one cancelled and still winding down, such as a speculation, does not count). */
  private hasRunningFinal(): boolean {
    for (const job of this.running) if (job.kind === 'final' && !job.controller.signal.aborted) return true;
    return false;
  }

  private abortRunningPartials(): void {
    for (const job of this.running) if (job.kind === 'partial' && !job.first) job.controller.abort();
  }

  private preemptPartial(): void {
    if (this.partialPool !== this.finalPool) return; // partials have workers of their own
    const victim = [...this.running].find((j) => j.kind === 'partial' && !j.owed && !j.controller.signal.aborted);
    victim?.controller.abort();
  }

  private run(job: Pending, pool: SchedulablePool, degraded: boolean): void {
    this.running.add(job);
    const waitMs = performance.now() - job.enqueuedAt;
    const decoding: Decoding = { beam: job.options.beamSize ?? 1, audioCtx: encoderFrames(job.pcm.length, job.options.audioCtx), degraded };
    pool
      .transcribe(job.pcm, job.options, job.controller.signal)
      .then(
        (transcript) => {
          this.record(job, 'done', waitMs, degraded);
          job.resolve({ ...transcript, decoding });
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

  private record(job: Pending, outcome: ScheduledRecord['outcome'], waitMs = performance.now() - job.enqueuedAt, degraded = false): void {
    this.emit('scheduled', { kind: job.kind, sessionId: job.sessionId, waitMs, outcome, ...(job.kind === 'final' ? { degraded } : {}) });
  }
}
