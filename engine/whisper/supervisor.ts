/**
 * The one way a whisper-server is brought back after a crash or a hang: kill what is left of it,
 * start it again, and while starts keep failing, wait longer before each next try. The pool runs one
 * of these per worker; `kol worker` runs one for its single whisper-server. Deciding *when* a worker
 * needs it (a crash, a request timeout, an unanswered /health) stays with them.
 */
import { toKolError, type KolError } from '../errors.js';
import type { WorkerHandle } from './worker.js';

/** Delays before restarting a worker, longer while its starts keep failing. */
export const RESTART_BACKOFF_MS = [200, 500, 1000, 2000, 5000, 10_000];

export interface RestartHooks {
  /** Checked before every try: once true, the restart gives up (the pool closed, `kol worker` stopping). */
  stopped(): boolean;
  /** The worker is running again. */
  restarted(): void;
  /** A start failed; `failures` counts the starts that failed in a row. Another try follows. */
  failed(err: KolError, failures: number): void;
  /** The restart is over, the worker back or given up on. */
  settled?(): void;
}

export class WorkerRestarter {
  private running: Promise<void> | null = null;
  /** Starts that failed in a row: picks the backoff. Cleared by `healthy()`. */
  private failures = 0;

  constructor(
    private readonly worker: WorkerHandle,
    private readonly hooks: RestartHooks,
  ) {}

  get restarting(): boolean {
    return this.running !== null;
  }

  /** The worker proved itself (a request served, a restart that held): the next restart waits the least. */
  healthy(): void {
    this.failures = 0;
  }

  /** Restarts the worker, or joins the restart already under way. */
  restart(): Promise<void> {
    if (this.running) return this.running;
    if (this.hooks.stopped()) return Promise.resolve();
    this.running = this.run().finally(() => {
      this.running = null;
      this.hooks.settled?.();
    });
    return this.running;
  }

  private async run(): Promise<void> {
    while (!this.hooks.stopped()) {
      await new Promise((resolve) => setTimeout(resolve, RESTART_BACKOFF_MS[Math.min(this.failures, RESTART_BACKOFF_MS.length - 1)]));
      if (this.hooks.stopped()) return;
      try {
        await this.worker.kill();
        await this.worker.start();
        this.hooks.restarted();
        return;
      } catch (err) {
        this.failures++;
        this.hooks.failed(toKolError(err), this.failures);
      }
    }
  }
}
