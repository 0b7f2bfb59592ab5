/**
 * The HTTP and WebSocket front: routes, access control (API keys, origins), per-session limits
 * (frame size, real-time pace, idle time, session length), bounded send buffers, readiness, and
 * graceful shutdown. Endpoints plug in as WebSocket routes; each drives Sessions.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ERROR_CATALOG, KolError, type ErrorCode } from '../../engine/errors.js';
import type { Logger } from '../../engine/log.js';
import type { Scheduler } from '../../engine/scheduler.js';
import type { StreamTuning } from '../../engine/stream.js';
import type { SileroVad } from '../../engine/vad/silero.js';
import { atCapacityError, RETRY_AFTER_SECONDS } from '../capacity.js';
import { maskKey, parseApiKey, type KeyScope, type ServerConfig } from '../config.js';
import { errorCodeOf, heartbeatIntervalMs, PaceLimiter } from './pace.js';
import { bytesPerSecond, CLOSE_CODES, type ServerMessage, type SessionConfig } from '../dialects/protocol.js';
import { errorEvent, Session, type SessionEvent } from '../session.js';

export interface Caller {
  /** The API key's secret used, or null on an open server. */
  key: string | null;
  scope: KeyScope;
}

/** A WebSocket endpoint: its path, what a key must allow, and what to do with a connection. */
export interface WsRoute {
  path: string;
  /** "publish" routes transcribe audio; "view" routes only watch caption rooms. */
  needs: 'publish' | 'view';
  handle(ws: WebSocket, req: IncomingMessage, gateway: Gateway, caller: Caller): void;
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
  caller: Caller;
  openedAt: number;
  lastMessageAt: number;
  /** The route's own listener (its dialect), for notices from the gateway (drain, pace, limits). */
  send: (event: SessionEvent) => void;
  /** Whether the client was told it is being held to the real-time pace. */
  throttled: boolean;
  /** Set once the gateway started closing it (idle, too long), so that happens only once. */
  closing: boolean;
  /** Real-time pace limit: a token bucket of audio seconds. */
  pace: PaceLimiter;
  /** Set while reading is paused to hold the client to the real-time limit. */
  resumeTimer: NodeJS.Timeout | null;
}

const HEARTBEAT_MS = 15_000;
/** Audio a client may send ahead of real time × maxRealtimeFactor before reading is paused. */
const PACE_BURST_SECONDS = 10;

export class Gateway {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly server: http.Server;
  private readonly deps: GatewayDeps;
  private readonly wss: WebSocketServer;
  private readonly tracked = new Map<WebSocket, Tracked>();
  private readonly alive = new WeakSet<WebSocket>();
  private readonly heartbeat: NodeJS.Timeout;
  private draining = false;
  private lastBeatAt = Date.now();
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
    this.heartbeat = setInterval(() => this.beat(), heartbeatIntervalMs(deps.config.idleTimeoutSeconds, deps.config.maxSessionSeconds, HEARTBEAT_MS));
    this.heartbeat.unref();
    if (deps.config.apiKeys.length === 0) this.logger.warn('no API keys configured: the server is open to anyone who can reach it');
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

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  defaultSessionConfig(): SessionConfig {
    return {
      sample_rate: 16000,
      encoding: 'pcm_s16le',
      channels: 1,
      language: this.config.language,
      partials: this.config.partials,
      endpoint_ms: this.config.endpointMs,
      prompt: '',
      room: null,
    };
  }

  /** Creates and tracks a session for a connection, or closes it with the limit it hit. */
  openSession(ws: WebSocket, req: IncomingMessage, config: SessionConfig, send: (event: SessionEvent) => void): Session | null {
    const caller = (req as IncomingMessage & { kolCaller?: Caller }).kolCaller ?? { key: null, scope: 'all' as const };
    const refuse = (code: ErrorCode, message?: string) => {
      send(errorEvent(new KolError(code, message), true));
      ws.close(CLOSE_CODES.tryAgainLater, code);
      return null;
    };
    if (this.draining) return refuse('server_shutting_down');
    if (this.tracked.size >= this.config.maxSessions) return refuse('too_many_sessions', `The server is at its limit of ${this.config.maxSessions} sessions; try again later.`);
    if (caller.key !== null) {
      const forKey = [...this.tracked.values()].filter((t) => t.caller.key === caller.key).length;
      if (forKey >= this.config.maxSessionsPerKey) return refuse('too_many_sessions_for_key', `This API key already has ${forKey} sessions open (limit ${this.config.maxSessionsPerKey}).`);
    }
    const id = randomUUID();
    const tap = this.deps.tapSession?.(id, send);
    const tapped = tap?.send ?? send;
    const observe = this.deps.onSessionEvent;
    const sessionSend = observe
      ? (event: SessionEvent) => {
          observe(id, event);
          tapped(event);
        }
      : tapped;
    const session = new Session({ id, config, vad: this.deps.vad, scheduler: this.deps.scheduler, tuning: this.deps.tuning, logger: this.logger.child({ session: id }), send: sessionSend });
    const now = Date.now();
    this.tracked.set(ws, { session, caller, openedAt: now, lastMessageAt: now, pace: new PaceLimiter(this.config.maxRealtimeFactor, PACE_BURST_SECONDS, now), send, throttled: false, closing: false, resumeTimer: null });
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    ws.on('close', () => {
      const t = this.tracked.get(ws);
      if (t?.resumeTimer) clearTimeout(t.resumeTimer);
      session.abort();
      tap?.close();
      this.tracked.delete(ws);
      this.deps.onSessionCount?.(this.tracked.size);
      const nonFiniteSamples = session.nonFiniteSamples;
      this.deps.onSessionClosed?.({ id, audioSeconds: session.audioSeconds, seconds: (Date.now() - now) / 1000, nonFiniteSamples });
      this.logger.info({ session: id, seconds: Math.round((Date.now() - now) / 1000), audioSeconds: Math.round(session.audioSeconds), ...(nonFiniteSamples > 0 ? { nonFiniteSamples } : {}) }, 'session closed');
    });
    this.deps.onSessionCount?.(this.tracked.size);
    this.logger.info({ session: id, key: caller.key ? maskKey(caller.key) : null, path: req.url?.split('?')[0] }, 'session opened');
    return session;
  }

  /**
   * Checks one incoming frame against the limits. Throws frame_too_large for an oversized frame;
   * a client sending audio faster than maxRealtimeFactor × real time is throttled by pausing reads.
   */
  checkFrame(ws: WebSocket, session: Session, bytes: number): void {
    const t = this.tracked.get(ws);
    if (!t) return;
    t.lastMessageAt = Date.now();
    if (bytes > this.config.maxFrameBytes) {
      throw new KolError('frame_too_large', `A frame of ${bytes} bytes exceeds the limit of ${this.config.maxFrameBytes} bytes; send audio in smaller frames (e.g. 100 ms each).`);
    }
    // A token bucket (pace.ts): credit never exceeds the burst, so a client cannot save it
    // up by sending slowly (or not at all) and then blast hours of audio at once.
    const waitMs = t.pace.spend(bytes / bytesPerSecond(session.effectiveConfig));
    if (waitMs > 0) {
      if (!t.throttled) {
        t.throttled = true;
        t.send(errorEvent(new KolError('audio_too_fast', `Audio is arriving faster than ${this.config.maxRealtimeFactor}× real time; the server now reads it at that pace (no audio is lost).`)));
      }
      // TCP backpressure: stop reading this socket until real time catches up. One timer per
      // connection, moved later as more audio arrives, so an earlier timer cannot resume too soon.
      const socket = (ws as WebSocket & { _socket?: Duplex })._socket;
      socket?.pause();
      if (t.resumeTimer) clearTimeout(t.resumeTimer);
      t.resumeTimer = setTimeout(() => {
        t.resumeTimer = null;
        socket?.resume();
      }, waitMs);
      t.resumeTimer.unref();
    }
  }

  /** Sends a message unless the client has stopped reading; a client that falls too far behind is cut off. */
  sendJson(ws: WebSocket, message: ServerMessage | Record<string, unknown>): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.config.sendBufferBytes) {
      this.logger.warn({ session: this.tracked.get(ws)?.session.id ?? null, buffered: ws.bufferedAmount }, 'closing a client that does not read its messages');
      this.deps.onError?.('slow_consumer');
      ws.close(CLOSE_CODES.tryAgainLater, 'slow_consumer');
      // A stuck client may not answer the close handshake either.
      setTimeout(() => ws.terminate(), 2000).unref();
      return;
    }
    const code = errorCodeOf(message);
    if (code) this.deps.onError?.(code);
    ws.send(JSON.stringify(message));
  }

  /**
   * Refuses new sessions, lets every session deliver its pending finals, then closes (graceful drain).
   * The port stays open until then, so that a load balancer's /readyz probe reads 503 `draining` and a
   * new WebSocket gets 503 `server_shutting_down`, rather than a refused connection.
   */
  async drain(graceMs = this.config.shutdownGraceSeconds * 1000): Promise<void> {
    this.draining = true;
    const sessions = [...this.tracked.entries()];
    this.logger.info({ sessions: sessions.length }, 'draining: finishing open sessions');
    const finishing = sessions.map(async ([ws, t]) => {
      t.send(errorEvent(new KolError('server_shutting_down', 'The server is shutting down: audio sent from now on is ignored; the finals of the audio received so far follow, then the connection closes.'), false));
      await t.session.finish('server_shutting_down');
      ws.close(CLOSE_CODES.goingAway, 'server_shutting_down');
    });
    await Promise.race([Promise.all(finishing), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    // Stop listening first, so that close() does not wait for the connections left (caption viewers
    // still in their close handshake) to end.
    this.server.close();
    await this.close();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const ws of this.tracked.keys()) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Pings every client; one that did not answer the last ping, or is idle or too old, is closed. */
  private beat(): void {
    const now = Date.now();
    const previousBeat = this.lastBeatAt;
    this.lastBeatAt = now;
    for (const [ws, t] of this.tracked) {
      // A frame since the last beat, or a socket we are holding paused for the pace limit, shows the
      // client is there: its pong may be queued behind audio we have not read yet.
      const heardFrom = t.lastMessageAt >= previousBeat || t.resumeTimer !== null;
      if (!this.alive.has(ws) && !heardFrom) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
      // A session that sent eof is waiting for its finals, not idle.
      if (!t.session.finishing && now - t.lastMessageAt > this.config.idleTimeoutSeconds * 1000) this.closeWith(ws, t, 'idle_timeout', `No audio or message arrived for ${this.config.idleTimeoutSeconds} s.`);
      else if (now - t.openedAt > this.config.maxSessionSeconds * 1000) this.closeWith(ws, t, 'session_too_long', `The session reached its maximum length of ${this.config.maxSessionSeconds} s.`);
    }
  }

  private closeWith(ws: WebSocket, t: Tracked, code: ErrorCode, message: string): void {
    if (t.closing) return;
    t.closing = true;
    t.send(errorEvent(new KolError(code, message), true));
    void t.session.finish(code).then(() => ws.close(CLOSE_CODES.policy, code));
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
    if (this.draining) {
      this.deps.onError?.('server_shutting_down');
      return rejectUpgrade(socket, 'server_shutting_down');
    }
    const origin = req.headers.origin;
    if (origin && this.config.allowedOrigins.length > 0 && !this.config.allowedOrigins.includes(origin) && !this.config.allowedOrigins.includes('*')) {
      this.deps.onError?.('forbidden_origin');
      return rejectUpgrade(socket, 'forbidden_origin', `Origin ${origin} is not in the allowed origins.`);
    }
    let caller: Caller;
    try {
      caller = this.authenticate(req, url);
    } catch (err) {
      const e = err as KolError;
      this.deps.onError?.(e.code);
      return rejectUpgrade(socket, e.code, e.message);
    }
    if (caller.scope !== 'all' && caller.scope !== route.needs) {
      this.deps.onError?.('forbidden_scope');
      return rejectUpgrade(socket, 'forbidden_scope', `This API key may only ${caller.scope === 'view' ? 'view caption rooms' : 'publish audio'}.`);
    }
    if (route.needs === 'publish') {
      // Counted before the upgrade, so that connections arriving together cannot all slip in.
      const capacity = this.capacity;
      if (capacity !== null && this.streams >= capacity) {
        this.deps.onError?.('server_at_capacity');
        return rejectUpgrade(socket, 'server_at_capacity', atCapacityError(capacity).message, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
      }
      this.streams++;
      socket.once('close', () => this.streams--);
    }
    (req as IncomingMessage & { kolCaller?: Caller }).kolCaller = caller;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (err) => this.logger.debug({ err: err.message }, 'websocket error'));
      route.handle(ws, req, this, caller);
    });
  }

  /**
   * Keys come as `Authorization: Bearer KEY` (or `Token KEY`), or, since browsers cannot set headers,
   * `?token=KEY` or a WebSocket subprotocol the way the vendors' browser clients send them.
   */
  authenticate(req: IncomingMessage, url: URL): Caller {
    const keys = this.config.apiKeys;
    if (keys.length === 0) return { key: null, scope: 'all' };
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : header?.startsWith('Token ') ? header.slice(6).trim() : (keyFromSubprotocols(req) ?? url.searchParams.get('token'));
    if (!presented) throw new KolError('unauthorized', 'An API key is required: send "Authorization: Bearer KEY" or add ?token=KEY to the URL.');
    for (const entry of keys) {
      const { secret, scope } = parseApiKey(entry);
      if (sameSecret(secret, presented)) return { key: secret, scope };
    }
    throw new KolError('unauthorized', 'The API key is not valid.');
  }
}

/** OpenAI's browser client offers `openai-insecure-api-key.KEY`; Deepgram's offers `token`, `KEY`. */
const OPENAI_KEY_PROTOCOL = 'openai-insecure-api-key.';

function keyFromSubprotocols(req: IncomingMessage): string | null {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const openai = offered.find((p) => p.startsWith(OPENAI_KEY_PROTOCOL));
  if (openai) return openai.slice(OPENAI_KEY_PROTOCOL.length);
  return offered[0] === 'token' && offered[1] ? offered[1] : null;
}

/** The subprotocol to answer with: the client's first one that is not a key (`realtime`, `token`). */
function chooseSubprotocol(offered: Set<string>): string | false {
  for (const protocol of offered) if (!protocol.startsWith(OPENAI_KEY_PROTOCOL)) return protocol;
  return false;
}

/** Constant-time comparison, so response timing does not reveal how much of a key was right. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
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
