/**
 * A fake worker pool for unit tests of scheduling policy: each job runs until the test finishes it
 * (or it is aborted), and answers with what `answer` makes of it. Never a stand-in for real workers
 * in end-to-end tests.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { KolError } from '../../engine/errors.js';
import type { TranscribeOptions, Transcript } from '../../engine/whisper/types.js';

export interface FakeJob {
  /** The job's name: the first sample of its audio, as a string. */
  label: string;
  pcm: Float32Array;
  options: TranscribeOptions;
  aborted: boolean;
  /** Answers the job (with `answer`'s transcript, or rejects with `error`). */
  finish(error?: KolError): void;
}

/** By default a transcript whose text is the job's label. */
export type Answer = (job: FakeJob) => Omit<Transcript, 'inferenceMs' | 'worker' | 'language'>;

export class FakePool extends EventEmitter {
  readonly running: FakeJob[] = [];
  readonly started: FakeJob[] = [];

  constructor(
    private readonly size: number,
    private readonly answer: Answer = (job) => ({ text: job.label, duration: job.pcm.length / 16_000, segments: [] }),
  ) {
    super();
  }

  idleCount(): number {
    return this.size - this.running.length;
  }

  transcribe(pcm: Float32Array, options: TranscribeOptions = {}, signal?: AbortSignal): Promise<Transcript> {
    assert.ok(this.idleCount() > 0, 'the scheduler never overfills the pool');
    return new Promise((resolve, reject) => {
      const job: FakeJob = {
        label: String(pcm[0]),
        pcm,
        options,
        aborted: false,
        finish: (error) => {
          this.release(job);
          if (error) reject(error);
          else resolve({ ...this.answer(job), language: 'he', worker: 'fake', inferenceMs: 1 });
        },
      };
      signal?.addEventListener('abort', () => {
        job.aborted = true;
        this.release(job);
        reject(new KolError('transcription_aborted'));
      });
      this.running.push(job);
      this.started.push(job);
      this.emit('started', job);
    });
  }

  /** Finishes the running job with this label. */
  finish(label: string, error?: KolError): void {
    const job = this.running.find((j) => j.label === label);
    assert.ok(job, `job ${label} is running (running: ${this.labels().join(', ') || 'none'})`);
    job.finish(error);
  }

  labels(): string[] {
    return this.running.map((j) => j.label);
  }

  private release(job: FakeJob): void {
    const at = this.running.indexOf(job);
    if (at < 0) return;
    this.running.splice(at, 1);
    // As WorkerPool does: 'idle' after the job's promise settles.
    queueMicrotask(() => this.emit('idle'));
  }
}
