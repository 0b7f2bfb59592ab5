/**
 * The HTTP and WebSocket front: routes, the upgrade and admission (origins, API keys, capacity),
 * the sessions' registry with their limits (count, per key, idle time, length), readiness, and
 * graceful shutdown. A route gets a narrow Connection (connection.ts) and this gateway as its
 * SessionHost; everything after admission happens in the dialects.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { ERROR_CATALOG, KolError, type ErrorCode } from '../../engine/errors.js';
import type { Logger } from '../../engine/log.js';
import type { Scheduler } from '../../engine/scheduler.js';
import type { StreamTuning } from '../../engine/stream.js';
import type { SileroVad } from '../../engine/vad/silero.js';
import { atCapacityError, RETRY_AFTER_SECONDS } from '../capacity.js';
import { maskKey, type ServerConfig } from '../config.js';
import type { SessionConfig } from '../session-config.js';
import { errorEvent, Session, type SessionEvent } from '../session.js';
import { authenticate, chooseSubprotocol, originAllowed, type Caller } from './access.js';
import { CLOSE_CODES, Connection } from './connection.js';
import { Heartbeat, heartbeatIntervalMs } from './heartbeat.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';

/** What a route may ask of the server: sessions, and where to log and count. */
export interface SessionHost {
  readonly logger: Logger;
  /** The configured model (name or path; empty: the host default), for vendors' metadata. */
  readonly model: string;
  defaultSessionConfig(): SessionConfig;
  /** Opens a session for a connection; null when a limit refused it (the listener was told, the connection is closing). */
  openSession(connection: Connection, config: SessionConfig, listener: (event: SessionEvent) => void): Session | null;
  /** Counts an error reported to a client, once, for metrics. */
  errorReported(code: ErrorCode): void;
}

/** A WebSocket endpoint: its path, what a key must allow, and what to do with a connection. */
export interface WsRoute {
  path: string;
  /** "publish" routes transcribe audio; "view" routes only watch caption rooms. */
  needs: 'publish' | 'view';
  handle(connection: Connection, host: SessionHost): void;
}

/** A plain HTTP endpoint (pages, metrics); answers true when it handled the request. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface GatewayDeps {
  config: ServerConfig;
  vad: SileroVad;
  scheduler: Scheduler;
  tuning: Partial<StreamTuning>;
  logger: Logger;
  /** Whether at least one whisper worker is ready (for /readyz). */
  ready: () => boolean;
  routes: WsRoute[];
  httpRoutes?: HttpRoute[];
  /** Streams admitted at once on "publish" routes (server/capacity.ts); null: only maxSessions limits them. */
  capacity?: number | null;
  /** Called for every session opened and closed, for metrics. */
  onSessionCount?: (open: number) => void;
  /** Called once for every error reported to a client (any dialect) or refused connection, for metrics. */
  onError?: (code: ErrorCode) => void;
  /** Sees every event a session reports (before a dialect renders it), for metrics. */
  onSessionEvent?: (sessionId: string, event: SessionEvent) => void;
  /** Called when a session's connection has closed, with the audio it received. */
  onSessionClosed?: (info: { id: string; audioSeconds: number; seconds: number; nonFiniteSamples: number }) => void;
  /** Wraps each session's events (caption rooms publish from here); `close` runs when its connection closes. */
  tapSession?: (sessionId: string, send: (event: SessionEvent) => void) => { send: (event: SessionEvent) => void; close: () => void };
}

interface Tracked {
  session: Session;
  connection: Connection;
  /** The route's own listener (its dialect), for notices from the gateway (drain, limits). */
  listener: (event: SessionEvent) => void;
  /** Set once the gateway started closing it (idle, too long), so that happens only once. */
  closing: boolean;
}

const HEARTBEAT_MS = 15_000;

export class Gateway implements SessionHost {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly server: http.Server;
  private readonly deps: GatewayDeps;
  private readonly wss: WebSocketServer;
  private readonly tracked = new Map<Connection, Tracked>();
  private readonly heartbeat: Heartbeat;
  private draining = false;
  /** Connections on "publish" routes, counted from the accepted upgrade until the socket closes. */
  private streams = 0;

  constructor(deps: GatewayDeps) {
    this.deps = deps;
    this.config = deps.config;
    this.logger = deps.logger;
    // The hard limit ws enforces (it closes with 1009); frames between maxFrameBytes and this get an
    // error message and the session lives on.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.config.maxFrameBytes * 4, perMessageDeflate: false, handleProtocols: chooseSubprotocol });
    this.server = http.createServer((req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.heartbeat = new Heartbeat(heartbeatIntervalMs(deps.config.idleTimeoutSeconds, deps.config.maxSessionSeconds, HEARTBEAT_MS));
    if (deps.config.apiKeys.length === 0) this.logger.warn('no API keys configured: the server is open to anyone who can reach it');
  }

  get model(): string {
    return this.config.model;
  }

  get sessionCount(): number {
    return this.tracked.size;
  }

  /** Real-time streams admitted at once, or null when only maxSessions limits them. */
  get capacity(): number | null {
    return this.deps.capacity ?? null;
  }

  /** The open sessions (for metrics and tests). */
  sessions(): Session[] {
    return [...this.tracked.values()].map((t) => t.session);
  }

  errorReported(code: ErrorCode): void {
    this.deps.onError?.(code);
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  defaultSessionConfig(): SessionConfig {
    return {
      sample_rate: SAMPLE_RATE,
      encoding: 'pcm_s16le',
      channels: 1,
      language: this.config.language,
      partials: this.config.partials,
      endpoint_ms: this.config.endpointMs,
      prompt: '',
      room: null,
    };
  }

  openSession(connection: Connection, config: SessionConfig, listener: (event: SessionEvent) => void): Session | null {
    const caller = connection.caller;
    const refuse = (code: ErrorCode, message?: string) => {
      listener(errorEvent(new KolError(code, message), true));
      connection.close(CLOSE_CODES.tryAgainLater, code);
      return null;
    };
    if (this.draining) return refuse('server_shutting_down');
    if (this.tracked.size >= this.config.maxSessions) return refuse('too_many_sessions', `The server is at its limit of ${this.config.maxSessions} sessions; try again later.`);
    if (caller.key !== null) {
      const forKey = [...this.tracked.values()].filter((t) => t.connection.caller.key === caller.key).length;
      if (forKey >= this.config.maxSessionsPerKey) return refuse('too_many_sessions_for_key', `This API key already has ${forKey} sessions open (limit ${this.config.maxSessionsPerKey}).`);
    }
    const id = randomUUID();
    connection.label = id;
    const tap = this.deps.tapSession?.(id, listener);
    const tapped = tap?.send ?? listener;
    const observe = this.deps.onSessionEvent;
    const send = observe
      ? (event: SessionEvent) => {
          observe(id, event);
          tapped(event);
        }
      : tapped;
    const session = new Session({ id, config, vad: this.deps.vad, scheduler: this.deps.scheduler, tuning: this.deps.tuning, logger: this.logger.child({ session: id }), send });
    const tracked: Tracked = { session, connection, listener, closing: false };
    this.tracked.set(connection, tracked);
    this.heartbeat.watch(connection, (now) => this.checkTimers(tracked, now));
    connection.onClose(() => {
      session.abort();
      tap?.close();
      this.tracked.delete(connection);
      this.deps.onSessionCount?.(this.tracked.size);
      const seconds = (Date.now() - connection.openedAt) / 1000;
      const nonFiniteSamples = session.nonFiniteSamples;
      this.deps.onSessionClosed?.({ id, audioSeconds: session.audioSeconds, seconds, nonFiniteSamples });
      this.logger.info({ session: id, seconds: Math.round(seconds), audioSeconds: Math.round(session.audioSeconds), ...(nonFiniteSamples > 0 ? { nonFiniteSamples } : {}) }, 'session closed');
    });
    this.deps.onSessionCount?.(this.tracked.size);
    this.logger.info({ session: id, key: caller.key ? maskKey(caller.key) : null, path: connection.url.pathname }, 'session opened');
    return session;
  }

  /**
   * Refuses new sessions, lets every session deliver its pending finals, then closes (graceful drain).
   * The port stays open until then, so that a load balancer's /readyz probe reads 503 `draining` and a
   * new WebSocket gets 503 `server_shutting_down`, rather than a refused connection.
   */
  async drain(graceMs = this.config.shutdownGraceSeconds * 1000): Promise<void> {
    this.draining = true;
    const sessions = [...this.tracked.values()];
    this.logger.info({ sessions: sessions.length }, 'draining: finishing open sessions');
    const finishing = sessions.map(async (t) => {
      t.listener(errorEvent(new KolError('server_shutting_down', 'The server is shutting down: audio sent from now on is ignored; the finals of the audio received so far follow, then the connection closes.'), false));
      await t.session.finish('server_shutting_down');
      t.connection.close(CLOSE_CODES.goingAway, 'server_shutting_down');
    });
    await Promise.race([Promise.all(finishing), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    // Stop listening first, so that close() does not wait for the connections left (caption viewers
    // still in their close handshake) to end.
    this.server.close();
    await this.close();
  }

  async close(): Promise<void> {
    this.heartbeat.stop();
    for (const connection of this.tracked.keys()) connection.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** A session's own limits, checked at each heartbeat: idle time and length. */
  private checkTimers(t: Tracked, now: number): void {
    // A session that sent eof is waiting for its finals, not idle.
    if (!t.session.finishing && now - t.connection.lastHeardAt > this.config.idleTimeoutSeconds * 1000) this.closeWith(t, 'idle_timeout', `No audio or message arrived for ${this.config.idleTimeoutSeconds} s.`);
    else if (now - t.connection.openedAt > this.config.maxSessionSeconds * 1000) this.closeWith(t, 'session_too_long', `The session reached its maximum length of ${this.config.maxSessionSeconds} s.`);
  }

  private closeWith(t: Tracked, code: ErrorCode, message: string): void {
    if (t.closing) return;
    t.closing = true;
    t.listener(errorEvent(new KolError(code, message), true));
    void t.session.finish(code).then(() => t.connection.close(CLOSE_CODES.policy, code));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
      if (url.pathname === '/readyz') {
        const ready = this.deps.ready() && !this.draining;
        return json(res, ready ? 200 : 503, { status: ready ? 'ready' : this.draining ? 'draining' : 'starting' });
      }
      for (const route of this.deps.httpRoutes ?? []) if (await route(req, res, url)) return;
      json(res, 404, { code: 'not_found', message: `No such endpoint: ${url.pathname}` });
    } catch (err) {
      this.logger.error({ err }, 'HTTP handler failed');
      if (!res.headersSent) json(res, 500, { code: 'internal_error', message: ERROR_CATALOG.internal_error.message });
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = this.deps.routes.find((r) => r.path === url.pathname);
    if (!route) return rejectUpgrade(socket, 'not_found', `No WebSocket endpoint at ${url.pathname}.`);
    const refuse = (code: ErrorCode, message?: string, headers?: Record<string, string>) => {
      this.errorReported(code);
      rejectUpgrade(socket, code, message, headers);
    };
    if (this.draining) return refuse('server_shutting_down');
    const origin = req.headers.origin;
    if (!originAllowed(origin, this.config.allowedOrigins)) return refuse('forbidden_origin', `Origin ${origin} is not in the allowed origins.`);
    let caller: Caller;
    try {
      caller = authenticate(this.config.apiKeys, req, url);
    } catch (err) {
      const e = err as KolError;
      return refuse(e.code, e.message);
    }
    if (caller.scope !== 'all' && caller.scope !== route.needs) {
      return refuse('forbidden_scope', `This API key may only ${caller.scope === 'view' ? 'view caption rooms' : 'publish audio'}.`);
    }
    if (route.needs === 'publish') {
      // Counted before the upgrade, so that connections arriving together cannot all slip in.
      const capacity = this.capacity;
      if (capacity !== null && this.streams >= capacity) {
        return refuse('server_at_capacity', atCapacityError(capacity).message, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
      }
      this.streams++;
      socket.once('close', () => this.streams--);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (err) => this.logger.debug({ err: err.message }, 'websocket error'));
      const connection = new Connection(ws, req, caller, this.config, this.logger, () => this.errorReported('slow_consumer'));
      this.heartbeat.watch(connection);
      route.handle(connection, this);
    });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Answers a WebSocket upgrade with a plain HTTP error, before any WebSocket exists. */
function rejectUpgrade(socket: Duplex, code: ErrorCode, message?: string, headers: Record<string, string> = {}): void {
  const status = ERROR_CATALOG[code].status;
  const body = JSON.stringify({ code, message: message ?? ERROR_CATALOG[code].message });
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}
