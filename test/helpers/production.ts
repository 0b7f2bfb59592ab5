/**
 * Helpers for the production tests (server/production/*.test.ts): raw WebSocket upgrades that show
 * the HTTP refusal, clips as PCM, a `kol serve` / `kol worker` in a child process with its log lines,
 * and process-state checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { floatsToS16le } from '../../engine/audio/format.js';
import { decodeAudioFile } from '../../engine/audio/wav.js';
import { REPO_ROOT } from '../../engine/paths.js';
import type { ServerMessage } from '../../server/dialects/protocol.js';
import { clips, type Clip } from '../../corpus/assets.js';

export type Refusal = { status: number; body: { code?: string; message?: string }; headers: IncomingHttpHeaders };

/** Tries a WebSocket upgrade: the open socket, or the HTTP status, headers and JSON body it was refused with. */
export function tryUpgrade(url: string, options: { headers?: Record<string, string>; origin?: string; protocols?: string[] } = {}): Promise<{ ws: WebSocket } | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers, origin: options.origin });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        let parsed: Refusal['body'] = {};
        try {
          parsed = JSON.parse(body) as Refusal['body'];
        } catch {
          parsed = { message: body };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    ws.once('error', (err) => {
      if (!String(err.message).includes('Unexpected server response')) reject(err);
    });
  });
}

/** A connected client that records every message and its close. */
export class RecordingClient {
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.messages.push(JSON.parse(data.toString()) as ServerMessage);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string, options: { headers?: Record<string, string>; origin?: string } = {}): Promise<RecordingClient> {
    const ws = new WebSocket(url, { headers: options.headers, origin: options.origin });
    const client = new RecordingClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  errors(): Array<Extract<ServerMessage, { type: 'error' }>> {
    return this.messages.filter((m): m is Extract<ServerMessage, { type: 'error' }> => m.type === 'error');
  }

  /** Waits until `predicate` holds for some message (checked as each one arrives). */
  async waitFor<T extends ServerMessage>(predicate: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  async waitFor(predicate: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  async waitFor(predicate: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

export function toS16(pcm: Float32Array): Uint8Array {
  return floatsToS16le(pcm);
}

export function heClip(name: string): Clip {
  const clip = clips('he').find((c) => c.name === name);
  if (!clip) throw new Error(`no Hebrew clip ${name} in the shared assets`);
  return clip;
}

export async function clipS16(clip: Clip): Promise<Uint8Array> {
  return toS16((await decodeAudioFile(clip.wav)).pcm);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** 'alive', 'zombie' (killed, not yet reaped by init) or 'gone'. */
export function processState(pid: number): 'alive' | 'zombie' | 'gone' {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X' ? 'zombie' : 'alive';
  } catch {
    return 'gone';
  }
}

/** Child process ids of `pid` (from /proc), optionally only those whose command line contains `named`. */
export function childPids(pid: number, named?: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== pid) continue;
      if (named && !fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(named)) continue;
      out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** A `node bin/kol.js …` child with its stderr log lines (pino JSON) collected. */
export class KolProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  /** records() so far: the JSON records of lines[0 .. linesRead). */
  private readonly parsed: Array<Record<string, unknown>> = [];
  private linesRead = 0;
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv, cwd = REPO_ROOT) {
    this.child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'kol.js'), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => (this.stdout += chunk));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /**
   * Parsed JSON log records (lines that are not JSON are skipped). A record that repeats a key throws:
   * every JSON reader keeps only one of the two values (pino's own `pid` was once overwritten that way).
   */
  records(): Array<Record<string, unknown>> {
    // Each line is parsed once (waitForLog asks every 50 ms); a bad one stays unread and throws again.
    for (; this.linesRead < this.lines.length; this.linesRead++) {
      const line = this.lines[this.linesRead];
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const keys = topLevelKeys(line);
      const repeated = keys.filter((key, i) => keys.indexOf(key) !== i);
      if (repeated.length > 0) throw new Error(`log line repeats ${repeated.join(', ')}: ${line}`);
      this.parsed.push(record);
    }
    return [...this.parsed];
  }

  /**
   * Waits for a log record whose msg is `msg`; rejects when the process exits first. On failure the
   * process is killed: a test that fails while starting one has no `finally` to stop it yet, and a child
   * left running keeps the whole test file from ever ending.
   */
  async waitForLog(msg: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const found = this.records().find((r) => r.msg === msg);
        if (found) return found;
        if (exited) throw new Error(`kol exited before logging "${msg}":\n${this.lines.slice(-15).join('\n')}`);
        if (Date.now() > deadline) throw new Error(`no "${msg}" log line within ${timeoutMs} ms:\n${this.lines.slice(-15).join('\n')}`);
        await sleep(50);
      }
    } catch (error) {
      this.kill();
      throw error;
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** The environment for a child kol: this one's, minus settings that would leak in from the developer's shell. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('KOL_') || key === 'KOL_ASSETS' || key === 'KOL_CACHE_DIR') env[key] = value;
  return { ...env, KOL_LOG_LEVEL: 'info', ...extra };
}

/** The keys of a JSON object's top level, in order and with repeats, which JSON.parse hides. */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      if (depth === 1 && /^\s*:/.test(json.slice(end + 1, end + 8))) keys.push(json.slice(i + 1, end));
      i = end;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}
