/**
 * Bench-only client swarm for the capacity probe, in a process of its own so that its CPU is not
 * counted as the server's: opens WebSockets to /v1/stream and keeps each fed with s16le 16 kHz audio
 * at real-time pace (a looping bench stream, each client from its own offset), in 100 ms frames.
 * One timer drives all clients. Reports how much audio it sent and how late its sends were: a
 * swarm that falls behind makes the step meaningless, and says so.
 *   node --import tsx bench/capacity/clients.ts   (spawned by bench/capacity/probe.ts, IPC)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { hebrewBenchStream } from '../../corpus/streams.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';

export type ClientsMessage =
  | { type: 'ready' }
  | { type: 'opened'; open: number; failed: number }
  | { type: 'stats'; id: number; stats: ClientsStats };

export interface ClientsStats {
  open: number;
  failed: number;
  closedByServer: number;
  /** Audio seconds sent since the process started, all clients. */
  sentSeconds: number;
  /** How late sends were against their due time since the last stats call (ms). */
  lateP99Ms: number;
  lagP99Ms: number;
  cpuUs: number;
}

const CHUNK_MS = 100;
const CHUNK_BYTES = (SAMPLE_RATE * 2 * CHUNK_MS) / 1000;

const audio = await hebrewBenchStream();
const bytes = Buffer.from(audio.pcm16.buffer, audio.pcm16.byteOffset, audio.pcm16.byteLength);
const totalChunks = Math.floor(bytes.length / CHUNK_BYTES);

interface Client {
  ws: WebSocket;
  open: boolean;
  chunk: number;
  due: number;
}
const clients: Client[] = [];
let failed = 0;
let closedByServer = 0;
let sentChunks = 0;
let late: number[] = [];
const lag = monitorEventLoopDelay({ resolution: 5 });
lag.enable();

function openOne(url: string): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const client: Client = { ws, open: false, chunk: Math.floor(Math.random() * totalChunks), due: 0 };
    ws.on('open', () => {
      client.open = true;
      client.due = performance.now();
      clients.push(client);
      resolve();
    });
    ws.on('message', () => {});
    ws.on('error', () => {
      if (!client.open) {
        failed++;
        resolve();
      }
    });
    ws.on('close', () => {
      if (client.open) closedByServer++;
      client.open = false;
    });
  });
}

setInterval(() => {
  const now = performance.now();
  for (const c of clients) {
    while (c.open && c.due <= now) {
      const at = c.chunk * CHUNK_BYTES;
      c.ws.send(bytes.subarray(at, at + CHUNK_BYTES));
      late.push(now - c.due);
      c.chunk = (c.chunk + 1) % totalChunks;
      c.due += CHUNK_MS;
      sentChunks++;
    }
  }
}, 10);

process.on('message', async (raw) => {
  const message = raw as { type: string; url?: string; count?: number; id?: number };
  if (message.type === 'open') {
    // Open in small waves, so the handshakes do not all land in one tick.
    const target = clients.length + (message.count ?? 0);
    while (clients.length + failed < target) {
      const wave = Math.min(50, target - clients.length - failed);
      await Promise.all(Array.from({ length: wave }, () => openOne(message.url!)));
    }
    process.send?.({ type: 'opened', open: clients.filter((c) => c.open).length, failed } satisfies ClientsMessage);
  } else if (message.type === 'stats') {
    const sorted = late.sort((a, b) => a - b);
    const stats: ClientsStats = {
      open: clients.filter((c) => c.open).length,
      failed,
      closedByServer,
      sentSeconds: (sentChunks * CHUNK_MS) / 1000,
      lateP99Ms: sorted.length ? sorted[Math.floor(sorted.length * 0.99)] : 0,
      lagP99Ms: lag.percentile(99) / 1e6,
      cpuUs: process.cpuUsage().user + process.cpuUsage().system,
    };
    late = [];
    lag.reset();
    process.send?.({ type: 'stats', id: message.id ?? 0, stats } satisfies ClientsMessage);
  } else if (message.type === 'close') {
    for (const c of clients) c.ws.terminate();
    process.exit(0);
  }
});
process.send?.({ type: 'ready' } satisfies ClientsMessage);
