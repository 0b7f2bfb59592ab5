/** Types for live-stream.js (plain browser JavaScript, also imported by the Node tests). */
export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'finishing' | 'closed' | 'failed';
export type LiveEvent =
  | { type: 'state'; state: StreamState; attempt?: number; delayMs?: number; everOpened?: boolean; code?: number; reason?: string }
  | { type: 'ready'; sessionId: string; config: Record<string, unknown> }
  | { type: 'partial'; key: string; text: string; stable: string; unstable: string; start: number }
  | { type: 'final'; key: string; text: string; start: number; end: number; reason: string; latencyMs: number; queueMs: number; inferenceMs: number; e2eMs: number | null }
  | { type: 'error'; code: string; message: string; fatal: boolean; key?: string }
  | { type: 'notice'; message: string };
export declare class LiveStream {
  constructor(options: {
    url: () => string;
    onEvent: (event: LiveEvent) => void;
    /** The WebSocket class (default: the browser's). */
    WebSocket?: unknown;
    maxReplaySeconds?: number;
    retryDelaysMs?: number[];
    finishTimeoutMs?: number;
  });
  readonly state: StreamState;
  readonly capturedSeconds: number;
  /** The current connection (for tests). */
  readonly ws: unknown;
  start(): void;
  push(pcm: Int16Array): void;
  finish(): Promise<void>;
  abort(): void;
}
