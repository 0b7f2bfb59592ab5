/**
 * Prometheus metrics at GET /metrics (prom-client). Each server has a Registry of its own, so tests
 * can run several servers in one process. docs/OPERATIONS.md lists every series.
 *
 * Sources: the gateway's hooks (sessions, session events, errors), the worker pools' `job` and `restart`
 * events, the scheduler's `scheduled` events, pool/scheduler stats read at scrape time, the event
 * loop (perf_hooks), and nvidia-smi (gpu-metrics.ts) where present.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isKolError, type ErrorCode } from '../engine/errors.js';
import type { ScheduledRecord } from '../engine/scheduler.js';
import type { JobRecord, WorkerPool } from '../engine/whisper/pool.js';
import type { Gateway, GatewayDeps, HttpRoute } from './transport/gateway.js';
import { GpuMonitor, type GpuSnapshot } from './gpu-metrics.js';
import type { Runtime } from './runtime.js';
import { authenticate } from './transport/access.js';
import type { SessionEvent } from './session.js';

/** The sampling timer's own period is part of every reading; it is taken off. */
const LOOP_RESOLUTION_MS = 10;
const LATENCY_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60];

export interface MetricsOptions {
  /** Poll nvidia-smi for GPU figures (default: when it exists). */
  gpu?: boolean;
  gpuIntervalMs?: number;
  /** A monitor to read instead of polling nvidia-smi (tests). */
  gpuMonitor?: GpuMonitor;
}

type PoolName = 'final' | 'partial';

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly loopDelay: IntervalHistogram;
  private readonly gpuMonitor: GpuMonitor | null;
  private gateway: Gateway | null = null;
  private runtime: Runtime | null = null;
  private openSessions = 0;
  private closedAudioSeconds = 0;
  private reportedAudioSeconds = 0;
  private readonly reportedBusyMs = new Map<string, number>();
  private readonly detach: Array<() => void> = [];

  private readonly sessionsActive: Gauge;
  private readonly sessionsTotal: Counter;
  private readonly sessionSeconds: Histogram;
  private readonly audioSeconds: Counter;
  private readonly nonFiniteSamples: Counter;
  private readonly segments: Counter;
  private readonly partialsSent: Counter;
  private readonly partialsDropped: Counter;
  private readonly finals: Counter<'outcome'>;
  private readonly finalLatency: Histogram;
  private readonly finalsDegraded: Counter;
  private readonly finalsRetried: Counter;
  private readonly schedulerWait: Histogram<'kind'>;
  private readonly queueWait: Histogram<'pool'>;
  private readonly inference: Histogram<'pool'>;
  private readonly transcribedSeconds: Counter<'pool'>;
  private readonly workerRequests: Counter<'pool' | 'worker' | 'outcome'>;
  private readonly workerFailures: Counter<'pool' | 'worker' | 'code'>;
  private readonly workerRestarts: Counter<'pool' | 'worker'>;
  private readonly workerBusySeconds: Counter<'pool' | 'worker'>;
  private readonly errors: Counter<'code'>;

  constructor(options: MetricsOptions = {}) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loopDelay.enable();
    this.gpuMonitor = options.gpuMonitor ?? (options.gpu === false ? null : new GpuMonitor(options.gpuIntervalMs));
    if (this.gpuMonitor && !options.gpuMonitor) void this.gpuMonitor.start();

    const self = this;
    const r = [registry];
    this.sessionsActive = new Gauge({ name: 'kol_sessions_active', help: 'Open transcription sessions (all endpoints).', registers: r });
    this.sessionsTotal = new Counter({ name: 'kol_sessions_total', help: 'Sessions opened.', registers: r });
    this.sessionSeconds = new Histogram({ name: 'kol_session_duration_seconds', help: 'Length of closed sessions.', buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600], registers: r });
    this.audioSeconds = new Counter({
      name: 'kol_audio_seconds_total',
      help: 'Seconds of audio received from clients (open sessions included).',
      registers: r,
      collect() {
        const open = self.gateway?.sessions().reduce((sum, s) => sum + s.audioSeconds, 0) ?? 0;
        const total = self.closedAudioSeconds + open;
        if (total > self.reportedAudioSeconds) this.inc(total - self.reportedAudioSeconds);
        self.reportedAudioSeconds = Math.max(self.reportedAudioSeconds, total);
      },
    });
    this.nonFiniteSamples = new Counter({
      name: 'kol_audio_nonfinite_samples_total',
      help: 'Float samples received that were NaN or ±Infinity, heard as silence (closed sessions).',
      registers: r,
    });
    this.segments = new Counter({ name: 'kol_segments_total', help: 'Speech segments detected (speech_start).', registers: r });
    this.partialsSent = new Counter({ name: 'kol_partials_sent_total', help: 'Partial transcripts sent to clients.', registers: r });
    this.partialsDropped = new Counter({ name: 'kol_partials_dropped_total', help: 'Partial transcriptions dropped: superseded by a newer one, preempted by a final, or failed.', registers: r });
    this.finals = new Counter({ name: 'kol_finals_total', help: 'Finals sent; outcome "text", or "empty" (no speech, noise, too short).', labelNames: ['outcome'], registers: r });
    this.finalsDegraded = new Counter({ name: 'kol_finals_degraded_total', help: 'Finals decoded with the cheaper settings because finals queued (beam 5 on a window sized to the segment).', registers: r });
    this.finalsRetried = new Counter({ name: 'kol_finals_retried_total', help: 'Finals decoded again without the prompt because the first decoding lost speech.', registers: r });
    this.finalLatency = new Histogram({ name: 'kol_final_latency_seconds', help: 'End of speech (its last audio received) to its final sent.', buckets: LATENCY_BUCKETS, registers: r });
    this.schedulerWait = new Histogram({ name: 'kol_scheduler_wait_seconds', help: 'Time a transcription waited in the scheduler for a worker.', labelNames: ['kind'], buckets: LATENCY_BUCKETS, registers: r });
    this.queueWait = new Histogram({ name: 'kol_queue_wait_seconds', help: 'Time a request waited in the worker pool queue.', labelNames: ['pool'], buckets: LATENCY_BUCKETS, registers: r });
    this.inference = new Histogram({ name: 'kol_inference_seconds', help: 'whisper-server inference time per request.', labelNames: ['pool'], buckets: LATENCY_BUCKETS, registers: r });
    this.transcribedSeconds = new Counter({ name: 'kol_transcribed_audio_seconds_total', help: 'Seconds of audio sent to workers (partials re-send audio, so above kol_audio_seconds_total).', labelNames: ['pool'], registers: r });
    this.workerRequests = new Counter({ name: 'kol_worker_requests_total', help: 'Requests per worker, by outcome (ok, error, aborted).', labelNames: ['pool', 'worker', 'outcome'], registers: r });
    this.workerFailures = new Counter({ name: 'kol_worker_failures_total', help: 'Failed requests per worker, by error code.', labelNames: ['pool', 'worker', 'code'], registers: r });
    this.workerRestarts = new Counter({ name: 'kol_worker_restarts_total', help: 'Worker restarts after a crash or hang.', labelNames: ['pool', 'worker'], registers: r });
    this.workerBusySeconds = new Counter({
      name: 'kol_worker_busy_seconds_total',
      help: 'Time each worker spent on requests (rate() gives its utilisation).',
      labelNames: ['pool', 'worker'],
      registers: r,
      collect() {
        for (const [pool, p] of self.pools()) {
          for (const w of p.stats().workers) {
            const key = `${pool}/${w.id}`;
            const delta = w.busyMs - (self.reportedBusyMs.get(key) ?? 0);
            if (delta > 0) this.inc({ pool, worker: w.id }, delta / 1000);
            self.reportedBusyMs.set(key, w.busyMs);
          }
        }
      },
    });
    new Gauge({
      name: 'kol_worker_busy',
      help: '1 while a worker runs a request.',
      labelNames: ['pool', 'worker'],
      registers: r,
      collect() {
        this.reset();
        for (const [pool, p] of self.pools()) for (const w of p.stats().workers) this.set({ pool, worker: w.id }, w.state === 'busy' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'kol_worker_up',
      help: '1 when a worker is running and answering (ready or busy).',
      labelNames: ['pool', 'worker', 'url'],
      registers: r,
      collect() {
        this.reset();
        for (const [pool, p] of self.pools()) for (const w of p.stats().workers) this.set({ pool, worker: w.id, url: w.url }, w.state === 'ready' || w.state === 'busy' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'kol_pool_queue_depth',
      help: 'Requests waiting for a worker in each pool.',
      labelNames: ['pool'],
      registers: r,
      collect() {
        this.reset();
        for (const [pool, p] of self.pools()) this.set({ pool }, p.stats().queueDepth);
      },
    });
    new Gauge({
      name: 'kol_scheduler_pending',
      help: 'Transcriptions waiting in the scheduler, by kind.',
      labelNames: ['kind'],
      registers: r,
      collect() {
        const s = self.runtime?.scheduler.stats();
        if (!s) return;
        this.set({ kind: 'final' }, s.pendingFinals);
        this.set({ kind: 'partial' }, s.pendingPartials);
      },
    });
    this.errors = new Counter({ name: 'kol_errors_total', help: 'Errors reported to clients and refused connections, by error code (engine/errors.ts).', labelNames: ['code'], registers: r });
    new Gauge({
      name: 'kol_event_loop_lag_seconds',
      help: 'Event-loop delay since the previous scrape (quantile 0.5, 0.99, and max).',
      labelNames: ['quantile'],
      registers: r,
      collect() {
        const h = self.loopDelay;
        const lag = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1000) : 0);
        this.set({ quantile: '0.5' }, lag(h.percentile(50)));
        this.set({ quantile: '0.99' }, lag(h.percentile(99)));
        this.set({ quantile: 'max' }, lag(h.max));
        h.reset();
      },
    });
    new Gauge({
      name: 'kol_ready',
      help: '1 when /readyz answers 200 (a worker is ready and the server is not draining).',
      registers: r,
      collect() {
        this.set(self.runtime && self.runtime.finalPool.readyCount() > 0 ? 1 : 0);
      },
    });
    new Gauge({
      name: 'kol_capacity_streams',
      help: 'Real-time streams admitted at once (configured, or measured at start); beyond it sessions get 503 server_at_capacity. 0: no limit but maxSessions.',
      registers: r,
      collect() {
        this.set(self.gateway?.capacity ?? 0);
      },
    });
    this.defineGpuMetrics(r);
  }

  /** Hooks to spread into the Gateway's dependencies. */
  gatewayHooks(): Pick<GatewayDeps, 'onSessionCount' | 'onError' | 'onSessionEvent' | 'onSessionClosed'> {
    return {
      onSessionCount: (open) => {
        if (open > this.openSessions) this.sessionsTotal.inc(open - this.openSessions);
        this.openSessions = open;
        this.sessionsActive.set(open);
      },
      onError: (code: ErrorCode) => this.errors.inc({ code }),
      onSessionEvent: (_id, event) => this.onSessionEvent(event),
      onSessionClosed: ({ audioSeconds, seconds, nonFiniteSamples }) => {
        this.closedAudioSeconds += audioSeconds;
        this.nonFiniteSamples.inc(nonFiniteSamples);
        this.sessionSeconds.observe(seconds);
      },
    };
  }

  /** Starts listening to the engine's events; call once the gateway exists. */
  attach(gateway: Gateway, runtime: Runtime): void {
    this.gateway = gateway;
    this.runtime = runtime;
    for (const [pool, p] of this.pools()) {
      const onJob = (job: JobRecord) => this.onJob(pool, job);
      const onRestart = (worker: string) => this.workerRestarts.inc({ pool, worker });
      p.on('job', onJob);
      p.on('restart', onRestart);
      this.detach.push(() => {
        p.off('job', onJob);
        p.off('restart', onRestart);
      });
    }
    const onScheduled = (record: ScheduledRecord) => {
      if (record.kind === 'partial' && record.outcome === 'dropped') this.partialsDropped.inc();
      if (record.outcome !== 'dropped') this.schedulerWait.observe({ kind: record.kind }, record.waitMs / 1000);
    };
    runtime.scheduler.on('scheduled', onScheduled);
    this.detach.push(() => runtime.scheduler.off('scheduled', onScheduled));
  }

  /** GET /metrics in the Prometheus text format. With API keys configured it needs a key of full scope. */
  route(): HttpRoute {
    return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
      if (url.pathname !== '/metrics') return false;
      if (this.gateway && this.gateway.config.apiKeys.length > 0) {
        try {
          const caller = authenticate(this.gateway.config.apiKeys, req, url);
          if (caller.scope !== 'all') return deny(res, 403, 'forbidden_scope', 'Metrics need an API key without a :publish or :view limit.');
        } catch (err) {
          return deny(res, 401, 'unauthorized', isKolError(err) ? err.message : 'An API key is required.');
        }
      }
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return true;
    };
  }

  close(): void {
    for (const undo of this.detach.splice(0)) undo();
    this.loopDelay.disable();
    this.gpuMonitor?.stop();
  }

  private *pools(): Generator<[PoolName, WorkerPool]> {
    if (!this.runtime) return;
    yield ['final', this.runtime.finalPool];
    if (this.runtime.partialPool) yield ['partial', this.runtime.partialPool];
  }

  private onSessionEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'speech_start':
        this.segments.inc();
        break;
      case 'partial':
        this.partialsSent.inc();
        break;
      case 'final':
        this.finals.inc({ outcome: event.text ? 'text' : 'empty' });
        if (event.text) this.finalLatency.observe(event.latencyMs / 1000);
        if (event.decoding?.degraded) this.finalsDegraded.inc();
        if (event.decoding?.retried) this.finalsRetried.inc();
        break;
      default:
        break;
    }
  }

  private onJob(pool: PoolName, job: JobRecord): void {
    this.queueWait.observe({ pool }, job.queueWaitMs / 1000);
    // "aborted": a partial preempted by a final, or a session that went away: not a worker fault.
    const outcome = job.ok ? 'ok' : job.code === 'transcription_aborted' ? 'aborted' : 'error';
    this.workerRequests.inc({ pool, worker: job.worker, outcome });
    if (job.ok) {
      this.inference.observe({ pool }, job.inferenceMs / 1000);
      this.transcribedSeconds.inc({ pool }, job.audioSeconds);
    } else if (job.code !== 'transcription_aborted') {
      this.workerFailures.inc({ pool, worker: job.worker, code: job.code ?? 'unknown' });
    }
  }

  private defineGpuMetrics(r: Registry[]): void {
    const self = this;
    const snapshot = () => self.gpuMonitor?.latest ?? null;
    new Gauge({
      name: 'kol_gpu_utilization_ratio',
      help: 'GPU utilisation (0–1) from nvidia-smi.',
      labelNames: ['gpu', 'name'],
      registers: r,
      collect() {
        this.reset();
        for (const g of snapshot()?.gpus ?? []) if (g.utilization !== undefined) this.set({ gpu: String(g.index), name: g.name }, g.utilization);
      },
    });
    new Gauge({
      name: 'kol_gpu_memory_used_bytes',
      help: 'GPU memory in use (all processes) from nvidia-smi.',
      labelNames: ['gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const g of snapshot()?.gpus ?? []) if (g.memoryUsedBytes !== undefined) this.set({ gpu: String(g.index) }, g.memoryUsedBytes);
      },
    });
    new Gauge({
      name: 'kol_gpu_memory_total_bytes',
      help: 'GPU memory size from nvidia-smi.',
      labelNames: ['gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const g of snapshot()?.gpus ?? []) if (g.memoryTotalBytes !== undefined) this.set({ gpu: String(g.index) }, g.memoryTotalBytes);
      },
    });
    // Per worker: nvidia-smi's per-process figures, matched to our workers by process id.
    const perWorkerGauge = (name: string, help: string, values: (snap: GpuSnapshot, pid: number) => Array<{ gpu: string; value: number }>) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'worker', 'gpu'],
        registers: r,
        collect() {
          this.reset();
          const snap = snapshot();
          if (!snap) return;
          for (const [pool, w] of self.localWorkers()) for (const { gpu, value } of values(snap, w.pid)) this.set({ pool, worker: w.id, gpu }, value);
        },
      });
    perWorkerGauge('kol_worker_gpu_memory_bytes', 'GPU memory used by each local whisper-server worker (matched by process id).', (snap, pid) =>
      snap.processes.flatMap((p) => {
        if (p.pid !== pid || p.memoryUsedBytes === undefined) return [];
        const gpu = snap.gpus.find((g) => g.uuid === p.gpuUuid);
        return [{ gpu: gpu ? String(gpu.index) : p.gpuUuid, value: p.memoryUsedBytes }];
      }),
    );
    perWorkerGauge('kol_worker_gpu_utilization_ratio', 'SM utilisation (0–1) of each local whisper-server worker, from nvidia-smi pmon.', (snap, pid) =>
      snap.utilization.flatMap((u) => (u.pid === pid && u.sm !== undefined ? [{ gpu: String(u.gpu), value: u.sm }] : [])),
    );
  }

  private *localWorkers(): Generator<[PoolName, { id: string; pid: number }]> {
    for (const [pool, p] of this.pools()) for (const w of p.stats().workers) if (w.pid !== undefined) yield [pool, { id: w.id, pid: w.pid }];
  }
}

function deny(res: ServerResponse, status: number, code: string, message: string): true {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ code, message }));
  return true;
}
