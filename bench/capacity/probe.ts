/**
 * Gateway capacity: how many concurrent real-time streams one kol process ingests and runs VAD on,
 * transcription switched off (bench/capacity/server.ts), before event-loop lag p99 passes 50 ms or
 * the VAD falls behind real time. Clients run in a separate process (bench/capacity/clients.ts).
 * Also: a CPU profile of the server at a fixed load, attributed to transport (ws + node sockets) vs
 * VAD vs the rest — the evidence for or against a uWebSockets.js transport.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../engine/paths.js';
import { spawnHelper, type Helper } from '../lib/child.js';
import { loadNow } from '../lib/result.js';
import type { ClientsMessage, ClientsStats } from './clients.js';
import type { CapacityMode, CapacityServerMessage, CapacityServerStats } from './server.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';
import { FRAME_SAMPLES } from '../../engine/vad/frames.js';

export const LAG_LIMIT_MS = 50;
/** Below this share of the audio sent being classified by the VAD in the same window, the VAD is falling behind. */
export const KEEP_UP_RATIO = 0.97;
/** Sends later than this (p99) mean the client swarm, not the server, is the bottleneck. */
const CLIENT_LATE_LIMIT_MS = 250;

export interface CapacityStep {
  streams: number;
  lagP99Ms: number;
  lagMaxMs: number;
  serverCores: number;
  /** Audio received, and classified by the VAD, per second of wall time, in streams' worth (1.0 = one real-time stream). */
  receivedStreams: number;
  vadStreams: number;
  sentStreams: number;
  vadRunsPerS: number;
  serverRssMB: number;
  clientCores: number;
  clientLateP99Ms: number;
  closedByServer: number;
  load: string;
  ok: boolean;
  why: string;
}

export interface CapacityResult {
  mode: CapacityMode;
  /** SileroVad maxBatch when not its default. */
  maxBatch?: number;
  steps: CapacityStep[];
  /** Most streams of a step that passed, with every smaller step passing too. */
  capacity: number;
  holdS: number;
}

interface Pair {
  server: Helper<CapacityServerMessage>;
  clients: Helper<ClientsMessage>;
  url: string;
}

let nextId = 0;
async function serverStats(server: Helper<CapacityServerMessage>): Promise<CapacityServerStats> {
  const id = ++nextId;
  server.send({ type: 'stats', id });
  return (await server.next((m): m is Extract<CapacityServerMessage, { type: 'stats' }> => m.type === 'stats' && m.id === id)).stats;
}
async function clientStats(clients: Helper<ClientsMessage>): Promise<ClientsStats> {
  const id = ++nextId;
  clients.send({ type: 'stats', id });
  return (await clients.next((m): m is Extract<ClientsMessage, { type: 'stats' }> => m.type === 'stats' && m.id === id)).stats;
}

async function startPair(mode: CapacityMode, nodeArgs: string[] = [], maxBatch?: number): Promise<Pair> {
  const server = spawnHelper<CapacityServerMessage>('capacity/server.ts', maxBatch ? [mode, String(maxBatch)] : [mode], { nodeArgs: ['--max-old-space-size=4096', ...nodeArgs] });
  const listening = await server.next((m): m is Extract<CapacityServerMessage, { type: 'listening' }> => m.type === 'listening');
  const clients = spawnHelper<ClientsMessage>('capacity/clients.ts', [], { nodeArgs: ['--max-old-space-size=4096'] });
  await clients.next((m): m is Extract<ClientsMessage, { type: 'ready' }> => m.type === 'ready');
  return { server, clients, url: `${listening.url}/v1/stream` };
}

async function openTo(pair: Pair, total: number, current: number): Promise<void> {
  if (total <= current) return;
  pair.clients.send({ type: 'open', url: pair.url, count: total - current });
  await pair.clients.next((m): m is Extract<ClientsMessage, { type: 'opened' }> => m.type === 'opened', 300_000);
}

export async function probeCapacity(options: { mode: CapacityMode; steps: number[]; holdS: number; settleS?: number; maxBatch?: number; log?: (line: string) => void }): Promise<CapacityResult> {
  const pair = await startPair(options.mode, [], options.maxBatch);
  const steps: CapacityStep[] = [];
  let current = 0;
  try {
    for (const n of options.steps) {
      await openTo(pair, n, current);
      current = n;
      await new Promise((resolve) => setTimeout(resolve, (options.settleS ?? 2) * 1000));
      const s0 = await serverStats(pair.server);
      const c0 = await clientStats(pair.clients);
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, options.holdS * 1000));
      const s1 = await serverStats(pair.server);
      const c1 = await clientStats(pair.clients);
      const wall = (performance.now() - t0) / 1000;
      const step: CapacityStep = {
        streams: n,
        lagP99Ms: s1.lagP99Ms,
        lagMaxMs: s1.lagMaxMs,
        serverCores: (s1.cpuUserUs + s1.cpuSystemUs - s0.cpuUserUs - s0.cpuSystemUs) / 1e6 / wall,
        receivedStreams: (s1.bytesIn - s0.bytesIn) / 32_000 / wall,
        vadStreams: ((s1.vadFrames - s0.vadFrames) * FRAME_SAMPLES) / SAMPLE_RATE / wall,
        sentStreams: (c1.sentSeconds - c0.sentSeconds) / wall,
        vadRunsPerS: (s1.vadRuns - s0.vadRuns) / wall,
        serverRssMB: s1.rssBytes / 2 ** 20,
        clientCores: (c1.cpuUs - c0.cpuUs) / 1e6 / wall,
        clientLateP99Ms: c1.lateP99Ms,
        closedByServer: c1.closedByServer,
        load: loadNow(),
        ok: true,
        why: '',
      };
      const reasons: string[] = [];
      if (step.lagP99Ms > LAG_LIMIT_MS) reasons.push(`event-loop lag p99 ${step.lagP99Ms.toFixed(0)} ms > ${LAG_LIMIT_MS}`);
      if (options.mode !== 'transport' && step.vadStreams < KEEP_UP_RATIO * step.sentStreams) reasons.push(`VAD behind: ${step.vadStreams.toFixed(0)} of ${step.sentStreams.toFixed(0)} streams' audio classified`);
      if (step.receivedStreams < KEEP_UP_RATIO * step.sentStreams) reasons.push(`ingest behind: ${step.receivedStreams.toFixed(0)} of ${step.sentStreams.toFixed(0)} streams' audio received`);
      if (step.closedByServer > 0) reasons.push(`${step.closedByServer} connections closed by the server`);
      if (step.clientLateP99Ms > CLIENT_LATE_LIMIT_MS) reasons.push(`client swarm late (p99 ${step.clientLateP99Ms.toFixed(0)} ms): the machine, not only the server, is saturated`);
      step.ok = reasons.length === 0;
      step.why = reasons.join('; ');
      steps.push(step);
      options.log?.(
        `capacity ${options.mode}${options.maxBatch ? ` maxBatch ${options.maxBatch}` : ''}: ${n} streams: lag p99 ${step.lagP99Ms.toFixed(1)} ms, server ${step.serverCores.toFixed(2)} cores, VAD ${step.vadStreams.toFixed(0)}/${step.sentStreams.toFixed(0)} streams, clients ${step.clientCores.toFixed(2)} cores, load ${step.load}${step.ok ? '' : ` — FAIL: ${step.why}`}`,
      );
      if (!step.ok) break;
    }
  } finally {
    await pair.clients.close(5000);
    await pair.server.close(5000);
  }
  let capacity = 0;
  for (const step of steps) {
    if (!step.ok) break;
    capacity = step.streams;
  }
  return { mode: options.mode, maxBatch: options.maxBatch, steps, capacity, holdS: options.holdS };
}

export interface ProfileShare {
  category: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface ProfileResult {
  streams: number;
  mode: CapacityMode;
  seconds: number;
  busyMs: number;
  shares: ProfileShare[];
  /** ws library + node's socket/stream code, as a share of busy time; and with the native "(program)" time added (an upper bound: socket syscalls land there). */
  transportShare: number;
  transportShareUpper: number;
  file: string;
}

/** Runs the gateway under --cpu-prof at a fixed load and attributes its self time. */
export async function profileGateway(options: { streams: number; holdS: number; mode?: CapacityMode; dir: string }): Promise<ProfileResult> {
  fs.mkdirSync(options.dir, { recursive: true });
  const before = new Set(fs.readdirSync(options.dir));
  const mode = options.mode ?? 'batched';
  const pair = await startPair(mode, ['--cpu-prof', `--cpu-prof-dir=${options.dir}`]);
  try {
    await openTo(pair, options.streams, 0);
    await new Promise((resolve) => setTimeout(resolve, options.holdS * 1000));
  } finally {
    await pair.clients.close(5000);
    await pair.server.close(15_000);
  }
  // The clients run without --cpu-prof. The server writes one profile per thread (tsx's loader runs on
  // one of its own): the main thread's is the one with thread id 0 in its name.
  const fresh = fs.readdirSync(options.dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  const file = fresh.find((f) => /\.0\.\d+\.cpuprofile$/.test(f)) ?? fresh[0];
  if (!file) throw new Error('the server wrote no CPU profile');
  return { ...attribute(path.join(options.dir, file)), streams: options.streams, mode };
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function categorize(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'native, unattributed ((program): libuv, syscalls)';
  if (url.includes('/node_modules/ws/')) return 'transport: ws (frames, masks, events)';
  if (/^node:(net|stream|dgram|tls|http|_http|internal\/(stream_base_commons|streams|net|http|js_stream_socket))/.test(url)) return 'transport: node sockets and streams';
  if (url.includes('onnxruntime')) return 'VAD: onnxruntime session.run';
  if (url.includes('/engine/vad/silero')) return 'VAD: batching (gather/scatter)';
  if (url.includes('/engine/vad/')) return 'segmenter and frames';
  if (url.includes('/engine/audio/') || url.includes('libsamplerate')) return 'PCM decode and resample';
  if (url.includes('/engine/')) return 'engine: stream, scheduler';
  if (url.includes('/server/')) return 'server: gateway, session, protocol';
  if (url.startsWith('node:')) return 'node core, other (events, buffers, timers)';
  if (url === '' && fn !== '') return 'native builtins';
  return 'other JS';
}

export function attribute(file: string): Omit<ProfileResult, 'streams' | 'mode'> {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    const category = categorize(node.callFrame.functionName, node.callFrame.url);
    totals.set(category, (totals.get(category) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const busyMs = [...totals].filter(([c]) => c !== 'idle').reduce((sum, [, ms]) => sum + ms, 0);
  const shares = [...totals]
    .filter(([c]) => c !== 'idle')
    .map(([category, ms]) => ({ category, ms, share: ms / busyMs }))
    .sort((a, b) => b.ms - a.ms);
  const transport = shares.filter((s) => s.category.startsWith('transport:')).reduce((sum, s) => sum + s.share, 0);
  const program = shares.find((s) => s.category.startsWith('native, unattributed'))?.share ?? 0;
  return { seconds: (profile.endTime - profile.startTime) / 1e6, busyMs, shares, transportShare: transport, transportShareUpper: transport + program, file: path.relative(REPO_ROOT, file) };
}
