/**
 * A client for the native protocol: streams PCM to /v1/stream at a given pace and collects the
 * server's messages. Used by `kol stream`, the tests and the benchmarks alike.
 */
import WebSocket from 'ws';
import type { ServerMessage } from '../../server/dialects/protocol.js';

export interface StreamOptions {
  /** ws://host:port/v1/stream?…, query parameters included. */
  url: string;
  /**
   * PCM bytes in the session's encoding (default s16le 16 kHz mono); or a live source (a microphone)
   * as an async iterable of PCM chunks, sent as they come (not paced: the source is), in frames of
   * chunkMs. eof follows when the iterable ends.
   */
  audio: Uint8Array | AsyncIterable<Uint8Array>;
  /** Bytes per second of audio, for pacing (16 kHz s16 mono: 32000). */
  bytesPerSecond?: number;
  /** Audio per frame, in milliseconds. */
  chunkMs?: number;
  /** 1 = real time; 4 = four times faster; Infinity = as fast as the server accepts. */
  speed?: number;
  /** Sent as the first message, before audio. */
  config?: Record<string, unknown>;
  /** Send audio as base64 `audio` text messages instead of binary frames (as wscat would). */
  asText?: boolean;
  headers?: Record<string, string>;
  onMessage?: (message: ServerMessage, receivedAt: number) => void;
  /** Called when each chunk is sent, with the stream time (s) of its end. */
  onChunkSent?: (streamSeconds: number, sentAt: number) => void;
  signal?: AbortSignal;
  /** Graceful stop: no more audio is sent and eof follows; the server delivers the pending finals, then closes. */
  endSignal?: AbortSignal;
}

export interface StreamResult {
  messages: Array<{ message: ServerMessage; at: number }>;
  finals: Array<Extract<ServerMessage, { type: 'final' }>>;
  closeCode: number;
  closeReason: string;
  /** When the last audio frame was sent (performance.now()). */
  lastAudioAt: number;
}

/**
 * The server answered the WebSocket upgrade with a plain HTTP refusal: its status, the stable `code`
 * from its JSON body, and Retry-After (seconds) when it sent one (server_at_capacity).
 */
export class StreamRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    readonly retryAfterSeconds: number | null,
  ) {
    // The same words as ws's own error, so callers that only read the message still see the status.
    super(`Unexpected server response: ${status}${code ? ` (${code})` : ''}`);
    this.name = 'StreamRefusedError';
  }
}

export function streamAudio(options: StreamOptions): Promise<StreamResult> {
  const bytesPerSecond = options.bytesPerSecond ?? 32_000;
  const chunkMs = options.chunkMs ?? 100;
  const speed = options.speed ?? 1;
  const sampleBytes = 2;
  const chunkBytes = Math.max(sampleBytes, Math.round((bytesPerSecond * chunkMs) / 1000 / sampleBytes) * sampleBytes);
  const messages: StreamResult['messages'] = [];

  return new Promise<StreamResult>((resolve, reject) => {
    const ws = new WebSocket(options.url, { headers: options.headers });
    let lastAudioAt = 0;
    let failed = false;
    // Removed on close: one signal may serve many streams in turn (the soak bench), and must not collect listeners.
    const terminate = () => ws.terminate();
    options.signal?.addEventListener('abort', terminate, { once: true });
    ws.once('close', () => options.signal?.removeEventListener('abort', terminate));

    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(data.toString()) as ServerMessage;
      const at = performance.now();
      messages.push({ message, at });
      options.onMessage?.(message, at);
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        let parsed: { code?: unknown } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // not JSON: only the status is known
        }
        const retryAfter = Number(res.headers['retry-after']);
        failed = true;
        reject(
          new StreamRefusedError(
            res.statusCode ?? 0,
            typeof parsed.code === 'string' ? parsed.code : null,
            res.headers['retry-after'] !== undefined && Number.isFinite(retryAfter) ? retryAfter : null,
          ),
        );
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      failed = true;
      reject(err);
    });
    ws.on('close', (code, reason) => {
      if (failed) return;
      resolve({
        messages,
        finals: messages.map((m) => m.message).filter((m): m is Extract<ServerMessage, { type: 'final' }> => m.type === 'final'),
        closeCode: code,
        closeReason: reason.toString(),
        lastAudioAt,
      });
    });
    ws.on('open', async () => {
      try {
        if (options.config) ws.send(JSON.stringify({ type: 'config', ...options.config }));
        if (!(options.audio instanceof Uint8Array)) {
          await sendLive(options.audio);
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'eof' }));
          return;
        }
        const started = performance.now();
        for (let offset = 0; offset < options.audio.length; offset += chunkBytes) {
          if (ws.readyState !== WebSocket.OPEN) return;
          if (options.endSignal?.aborted) break;
          const chunk = options.audio.subarray(offset, offset + chunkBytes);
          if (options.asText) ws.send(JSON.stringify({ type: 'audio', data: Buffer.from(chunk).toString('base64') }));
          else ws.send(chunk);
          const streamSeconds = (offset + chunk.length) / bytesPerSecond;
          lastAudioAt = performance.now();
          options.onChunkSent?.(streamSeconds, lastAudioAt);
          if (Number.isFinite(speed)) {
            const due = started + (streamSeconds * 1000) / speed;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          } else if (ws.bufferedAmount > 1 << 20) {
            // As fast as the server accepts: wait for the socket to drain.
            while (ws.bufferedAmount > 1 << 18 && ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 5));
          }
        }
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'eof' }));
      } catch (err) {
        reject(err);
      }
    });

    const sendChunk = (chunk: Uint8Array, streamSeconds: number) => {
      if (options.asText) ws.send(JSON.stringify({ type: 'audio', data: Buffer.from(chunk).toString('base64') }));
      else ws.send(chunk);
      lastAudioAt = performance.now();
      options.onChunkSent?.(streamSeconds, lastAudioAt);
    };
    /** A live source: re-framed to chunkBytes, whole samples only, until it ends or endSignal. */
    const sendLive = async (source: AsyncIterable<Uint8Array>) => {
      let pending = Buffer.alloc(0);
      let sent = 0;
      for await (const piece of source) {
        if (ws.readyState !== WebSocket.OPEN || options.endSignal?.aborted) break;
        pending = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([pending, piece]);
        while (pending.length >= chunkBytes) {
          sent += chunkBytes;
          sendChunk(pending.subarray(0, chunkBytes), sent / bytesPerSecond);
          pending = pending.subarray(chunkBytes);
        }
      }
      const rest = pending.length - (pending.length % sampleBytes);
      if (rest > 0 && ws.readyState === WebSocket.OPEN) sendChunk(pending.subarray(0, rest), (sent + rest) / bytesPerSecond);
    };
  });
}
