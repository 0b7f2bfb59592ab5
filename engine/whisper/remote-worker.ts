/**
 * A whisper-server on another host (e.g. `kol worker` on a GPU box), used by the pool like a local
 * worker: health-checked before use and after a failure. It cannot be restarted from here, so "start"
 * waits for it to answer /health again.
 */
import { EventEmitter } from 'node:events';
import { KolError } from '../errors.js';
import { SILENT_LOGGER, type Logger } from '../log.js';
import { checkHealth } from './client.js';
import type { WorkerHandle, WorkerState } from './worker.js';

export interface RemoteWorkerOptions {
  id: string;
  baseUrl: string;
  /** How long start() waits for /health before it counts as failed. */
  startTimeoutMs?: number;
  /** Where its lines go; default: nowhere. */
  logger?: Logger;
}

export class RemoteWorker extends EventEmitter<{ down: [reason: string] }> implements WorkerHandle {
  readonly id: string;
  readonly baseUrl: string;
  private readonly startTimeoutMs: number;
  private readonly logger: Logger;
  private _state: WorkerState = 'stopped';

  constructor(options: RemoteWorkerOptions) {
    super();
    this.id = options.id;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.logger = options.logger ?? SILENT_LOGGER;
  }

  get state(): WorkerState {
    return this._state;
  }

  async start(): Promise<void> {
    this._state = 'starting';
    const deadline = Date.now() + this.startTimeoutMs;
    while (Date.now() < deadline) {
      if (await checkHealth(this.baseUrl, 2000)) {
        this._state = 'ready';
        this.logger.info({ worker: this.id, url: this.baseUrl }, 'remote whisper-server ready');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    this._state = 'stopped';
    throw new KolError('worker_start_failed', `Remote worker ${this.baseUrl} did not answer GET /health within ${this.startTimeoutMs} ms.`);
  }

  /** A remote process cannot be killed from here; it is marked down until it answers again. */
  async kill(): Promise<void> {
    this._state = 'stopped';
  }

  async stop(): Promise<void> {
    this._state = 'stopped';
  }
}
