/**
 * One supervised `whisper-server` process on a loopback port this process chose. Knows how to start,
 * check, kill and restart its process; the pool decides when. Remote workers (another host's
 * whisper-server) implement the same WorkerHandle without a process.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { KolError } from '../errors.js';
import { SILENT_LOGGER, type Logger } from '../log.js';
import { checkHealth } from './client.js';

export type WorkerState = 'starting' | 'ready' | 'stopped';

/** What the pool needs from a worker, local or remote. */
export interface WorkerHandle extends EventEmitter<{ down: [reason: string] }> {
  readonly id: string;
  readonly baseUrl: string;
  readonly state: WorkerState;
  /** Starts (or restarts) the worker and resolves once `GET /health` answers 200. */
  start(): Promise<void>;
  /** Kills a hung or crashed worker so that start() can bring it back. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface LocalWorkerOptions {
  id: string;
  binary: string;
  model: string;
  threads: number;
  flashAttention: boolean;
  /** false adds --no-gpu; a CUDA build otherwise uses `gpuDevice`. */
  useGpu: boolean;
  gpuDevice?: number;
  /** How long model loading may take before the start counts as failed. */
  startTimeoutMs?: number;
  extraArgs?: string[];
  /** Address whisper-server listens on (default 127.0.0.1; `kol worker` uses 0.0.0.0 to serve other hosts). */
  host?: string;
  /** A fixed port (`kol worker`); default: a free loopback port chosen at each start. */
  port?: number;
  /** Where its lines go; default: nowhere. */
  logger?: Logger;
}

/** Ports handed out by this process and not yet released: a second worker must not get the same one. */
const portsInUse = new Set<number>();

/** Asks the kernel for a free loopback port. whisper-server binds even a busy port, so we never guess. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port && !portsInUse.has(port)) {
      portsInUse.add(port);
      return port;
    }
  }
  throw new KolError('worker_start_failed', 'Could not find a free loopback port for a whisper-server worker.');
}

export class LocalWorker extends EventEmitter<{ down: [reason: string] }> implements WorkerHandle {
  readonly id: string;
  private readonly options: LocalWorkerOptions;
  private readonly logger: Logger;
  private child: ResultPromise | null = null;
  private port = 0;
  private stopping = false;
  private _state: WorkerState = 'stopped';

  constructor(options: LocalWorkerOptions) {
    super();
    this.id = options.id;
    this.options = options;
    this.logger = (options.logger ?? SILENT_LOGGER).child({ worker: options.id });
  }

  get state(): WorkerState {
    return this._state;
  }

  get baseUrl(): string {
    const host = this.options.host;
    // A wildcard bind is reached through loopback from here.
    const reach = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `http://${reach}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  args(port: number): string[] {
    const o = this.options;
    const args = ['-m', o.model, '--host', o.host ?? '127.0.0.1', '--port', String(port), '-t', String(o.threads)];
    args.push(o.flashAttention ? '-fa' : '-nfa');
    if (!o.useGpu) args.push('-ng');
    else if (o.gpuDevice !== undefined) args.push('-dev', String(o.gpuDevice));
    return [...args, ...(o.extraArgs ?? [])];
  }

  async start(): Promise<void> {
    const o = this.options;
    if (!fs.existsSync(o.model)) throw new KolError('model_not_found', `Model file not found: ${o.model}`);
    if (!fs.existsSync(o.binary)) throw new KolError('worker_start_failed', `whisper-server binary not found: ${o.binary}. Run \`kol build-engine\`.`);
    await this.kill();
    this.stopping = false;
    this._state = 'starting';
    if (o.port) this.port = o.port;
    else {
      if (this.port) portsInUse.delete(this.port);
      this.port = await freePort();
    }

    const output: string[] = [];
    // cleanup: execa kills the child when this process exits, however it exits short of SIGKILL; and
    // where util-linux's setpriv exists, the kernel kills it even then (parent-death signal; setpriv
    // execs whisper-server, so the pid stays the worker's).
    const [file, args] = withParentDeathSignal(o.binary, this.args(this.port));
    const child = execa(file, args, { cleanup: true, reject: false, buffer: false, stdin: 'ignore' });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (!line.trim()) continue;
          output.push(line);
          if (output.length > 30) output.shift();
          this.logger.debug({ line }, 'whisper-server');
        }
      });
    }
    let exited: string | null = null;
    void child.then((result) => {
      exited = result.signal ? `killed by ${result.signal}` : `exited with code ${result.exitCode}`;
      if (this.child !== child) return; // an old process we replaced
      const wasReady = this._state === 'ready';
      this._state = 'stopped';
      this.child = null;
      if (!this.stopping && wasReady) {
        this.logger.warn({ reason: exited }, 'whisper-server worker went down');
        this.emit('down', exited);
      }
    });

    const deadline = Date.now() + (o.startTimeoutMs ?? 120_000);
    while (Date.now() < deadline) {
      if (exited !== null) {
        throw this.startError(`whisper-server ${exited} before it was ready`, output);
      }
      if (await checkHealth(this.baseUrl, 500)) {
        if (exited !== null || this.child !== child) break;
        this._state = 'ready';
        this.logger.info({ serverPid: child.pid, port: this.port, model: o.model }, 'whisper-server worker ready');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.kill();
    throw this.startError(`whisper-server was not ready within ${o.startTimeoutMs ?? 120_000} ms`, output);
  }

  private startError(what: string, output: string[]): KolError {
    const text = output.join('\n');
    if (/failed to (load|initialize)|invalid model|bad magic|failed to read/i.test(text)) {
      return new KolError('model_invalid', `The model ${this.options.model} could not be loaded by whisper.cpp (${what}). Last output:\n${output.slice(-8).join('\n')}`);
    }
    if (/usage:/.test(text)) {
      return new KolError('worker_start_failed', `whisper-server rejected its command line (${this.args(this.port).join(' ')}); it printed its usage.`);
    }
    return new KolError('worker_start_failed', `Worker ${this.id}: ${what}. Last output:\n${output.slice(-8).join('\n')}`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this._state = 'stopped';
    child.kill('SIGKILL');
    await child.catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await child.catch(() => {});
      clearTimeout(timer);
    }
    this.child = null;
    this._state = 'stopped';
    if (this.port && !this.options.port) portsInUse.delete(this.port);
  }
}

let setprivPath: string | null | undefined;

/** Prefixes `setpriv --pdeathsig KILL --` (Linux, when installed), so the child dies with this process. */
export function withParentDeathSignal(binary: string, args: string[]): [string, string[]] {
  if (setprivPath === undefined) {
    setprivPath = null;
    if (process.platform === 'linux') {
      for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/bin', '/bin')) {
        const candidate = `${dir}/setpriv`;
        try {
          fs.accessSync(candidate, fs.constants.X_OK);
          setprivPath = candidate;
          break;
        } catch {
          // not here
        }
      }
    }
  }
  return setprivPath ? [setprivPath, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
}
