/**
 * The one catalog of error codes. Every error the product reports — to a WebSocket client, on the
 * command line, in a log line — carries one of these stable codes plus a sentence for people.
 * Codes never change meaning once released; add new ones instead.
 */

export const ERROR_CATALOG = {
  // ── protocol: a client sent something we cannot use (session lives on where it safely can)
  invalid_json: { status: 400, message: 'A text frame was not valid JSON.' },
  unknown_message_type: { status: 400, message: 'A message had an unknown "type".' },
  invalid_message: { status: 400, message: 'A message did not match its schema.' },
  invalid_config: { status: 400, message: 'The session configuration is invalid.' },
  config_after_audio: { status: 400, message: 'A config message arrived after audio had started; it was ignored.' },
  unsupported_encoding: { status: 400, message: 'The audio encoding is not supported; use pcm_s16le or pcm_f32le.' },
  unsupported_sample_rate: { status: 400, message: 'The sample rate is not supported; use 8000 to 192000 Hz.' },
  odd_pcm_length: { status: 400, message: 'A PCM frame did not hold a whole number of samples.' },
  invalid_base64: { status: 400, message: 'The "data" of an audio message was not valid base64 PCM.' },
  frame_too_large: { status: 413, message: 'A frame exceeded the maximum frame size.' },
  session_ended: { status: 409, message: 'Audio arrived after eof; it was ignored.' },

  // ── limits and access
  unauthorized: { status: 401, message: 'A valid API key is required.' },
  forbidden_origin: { status: 403, message: 'This origin is not allowed to connect.' },
  forbidden_scope: { status: 403, message: 'This API key may not use this endpoint.' },
  too_many_sessions: { status: 503, message: 'The server is at its session limit; try again later.' },
  too_many_sessions_for_key: { status: 429, message: 'This API key is at its session limit.' },
  server_at_capacity: { status: 503, message: 'The server is at its capacity of real-time streams; try again shortly.' },
  audio_too_fast: { status: 429, message: 'Audio arrived faster than the allowed multiple of real time.' },
  session_too_long: { status: 408, message: 'The session reached its maximum length.' },
  idle_timeout: { status: 408, message: 'No audio or message arrived within the idle timeout.' },
  slow_consumer: { status: 503, message: 'The client did not read its messages fast enough.' },
  server_shutting_down: { status: 503, message: 'The server is shutting down.' },
  not_found: { status: 404, message: 'No such endpoint.' },
  room_required: { status: 400, message: 'A caption room name is required.' },

  // ── audio files and decoding
  audio_unreadable: { status: 400, message: 'The file is not audio this program can decode.' },
  audio_empty: { status: 400, message: 'The audio holds no samples.' },
  audio_too_short: { status: 400, message: 'The audio is too short to transcribe (under 0.1 s).' },
  ffmpeg_missing: { status: 400, message: 'This format needs ffmpeg, which is not installed.' },

  // ── engine: whisper.cpp build, models, workers
  build_tool_missing: { status: 500, message: 'A tool needed to build whisper.cpp is missing.' },
  build_failed: { status: 500, message: 'Building whisper.cpp failed.' },
  engine_source_missing: { status: 500, message: 'The whisper.cpp source tree was not found.' },
  model_not_found: { status: 500, message: 'The model file was not found.' },
  model_unknown: { status: 400, message: 'No model is known by that name.' },
  model_download_failed: { status: 500, message: 'The model could not be downloaded.' },
  model_checksum_mismatch: { status: 500, message: 'The downloaded model did not match its published size or checksum.' },
  model_invalid: { status: 500, message: 'The model file could not be loaded by whisper.cpp.' },
  worker_start_failed: { status: 500, message: 'A whisper-server worker failed to start.' },
  worker_unavailable: { status: 503, message: 'No whisper-server worker is available.' },
  worker_request_failed: { status: 502, message: 'A whisper-server worker answered with an error.' },
  worker_crashed: { status: 502, message: 'A whisper-server worker died during the request.' },
  worker_timeout: { status: 504, message: 'A whisper-server worker did not answer in time.' },
  transcription_aborted: { status: 499, message: 'The transcription was cancelled.' },
  pool_closed: { status: 503, message: 'The worker pool is shut down.' },
  gpu_unavailable: { status: 500, message: 'No usable GPU was found.' },

  // ── anything else
  internal_error: { status: 500, message: 'An internal error occurred.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** An error with a stable code; `message` may be more specific than the catalog's default sentence. */
export class KolError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CATALOG[code].message, options);
    this.name = 'KolError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
  }
}

export function isKolError(value: unknown, code?: ErrorCode): value is KolError {
  return value instanceof KolError && (code === undefined || value.code === code);
}

/** Any thrown value as a KolError, so callers can always report a code and a sentence. */
export function toKolError(value: unknown): KolError {
  if (value instanceof KolError) return value;
  if (value instanceof Error && value.name === 'AbortError') return new KolError('transcription_aborted');
  const message = value instanceof Error ? value.message : String(value);
  return new KolError('internal_error', `An internal error occurred: ${message}`, { cause: value });
}

/** A client's value as it appears in an error message: JSON, cut at `max` characters (it may be anything). */
export function quoted(value: unknown, max = 60): string {
  const json = JSON.stringify(value ?? null) ?? String(value);
  return json.length > max ? `${json.slice(0, max)}…` : json;
}
