/**
 * The native streaming protocol (`/v1/stream`), in one place: every message type with its literal
 * `type`, the validation of what clients send, and the shapes of what the server sends.
 * PROTOCOL.md documents the same for people; keep the two in step.
 */
import { z } from 'zod';
import { bytesPerSample } from '../../engine/audio/format.js';
import { KolError, quoted, type ErrorCode } from '../../engine/errors.js';
import type { SegmentEndReason } from '../../engine/vad/segmenter.js';
import { parseJson } from './common.js';
import type { SessionConfig } from '../session-config.js';

// ── client → server (text frames; binary frames are raw PCM in the session's encoding)

const audioMessage = z.object({ type: z.literal('audio'), data: z.string() }).strict();
const flushMessage = z.object({ type: z.literal('flush') }).strict();
const eofMessage = z.object({ type: z.literal('eof') }).strict();

export type ClientMessage =
  | { type: 'config'; update: Record<string, unknown> }
  | z.infer<typeof audioMessage>
  | z.infer<typeof flushMessage>
  | z.infer<typeof eofMessage>;

export const CLIENT_MESSAGE_TYPES = ['config', 'audio', 'flush', 'eof'] as const;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses one text frame; throws a KolError with the code that says what is wrong with it. */
export function parseClientMessage(text: string): ClientMessage {
  const json = parseJson(text);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new KolError('invalid_message', 'A text frame must be a JSON object with a "type".');
  }
  const type = (json as { type?: unknown }).type;
  switch (type) {
    case 'config': {
      // The update is copied as own entries: JSON.parse makes "__proto__" an own field, which an
      // assignment-based copy (a spread through a schema's output) would turn into the prototype,
      // silently, where applyConfig's check for unknown fields would never see it.
      const update = Object.fromEntries(Object.entries(json).filter(([key]) => key !== 'type'));
      return { type: 'config', update };
    }
    case 'audio': {
      const parsed = audioMessage.safeParse(json);
      if (!parsed.success) throw new KolError('invalid_message', 'An "audio" message needs a "data" string of base64 PCM and nothing else.');
      const data = parsed.data.data.replace(/\s+/g, '');
      if (!BASE64.test(data) || data.length % 4 === 1) throw new KolError('invalid_base64', 'The "data" of an audio message was not valid base64.');
      return { type: 'audio', data };
    }
    case 'flush':
    case 'eof': {
      const parsed = (type === 'flush' ? flushMessage : eofMessage).safeParse(json);
      if (!parsed.success) throw new KolError('invalid_message', `A "${type}" message takes no fields besides "type".`);
      return parsed.data;
    }
    default:
      throw new KolError(
        'unknown_message_type',
        `Unknown message type ${quoted(type)}; expected one of ${CLIENT_MESSAGE_TYPES.map((t) => `"${t}"`).join(', ')}.`,
      );
  }
}

// ── server → client

export interface WordTiming {
  word: string;
  start: number;
  end: number;
  probability: number;
}

export type ServerMessage =
  | { type: 'ready'; session_id: string; config: SessionConfig; hint: string }
  | { type: 'speech_start'; segment_id: number; start: number }
  | { type: 'partial'; segment_id: number; text: string; stable: string; unstable: string; start: number }
  | {
      type: 'final';
      segment_id: number;
      text: string;
      start: number;
      end: number;
      words: WordTiming[];
      /** Why the segment ended: a pause, the 10 s cap, a flush, or the end of the stream. */
      reason: SegmentEndReason;
      /** Server-measured: from receiving the last audio of the speech to sending this final. */
      latency_ms: number;
      queue_ms: number;
      inference_ms: number;
      /** How it was decoded; absent when nothing was (a segment too short to transcribe). */
      decoding?: FinalDecodingWire;
    }
  | { type: 'error'; code: ErrorCode; message: string; fatal: boolean; /** The segment whose final the error cost. */ segment_id?: number }
  | { type: 'closed'; reason: string; segments: number };

/**
 * Beam width, encoder window in frames of 20 ms (1500 = the full 30 s), whether load degraded it to
 * the cheaper settings, and whether it was decoded again because the first decoding lost speech.
 */
export interface FinalDecodingWire {
  beam: number;
  audio_ctx: number;
  degraded: boolean;
  retried: boolean;
}

export type ServerMessageType = ServerMessage['type'];

export function errorMessage(err: KolError, fatal = false, segmentId?: number): ServerMessage {
  return { type: 'error', code: err.code, message: err.message, fatal, ...(segmentId === undefined ? {} : { segment_id: segmentId }) };
}

export function readyHint(config: SessionConfig): string {
  return `Send ${config.encoding} audio at ${config.sample_rate} Hz, ${config.channels} channel(s) (${bytesPerSample(config.encoding)} bytes per sample) as binary frames, or {"type":"audio","data":"<base64>"} text frames; then {"type":"eof"}.`;
}
