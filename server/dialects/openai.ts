/**
 * OpenAI Realtime API, transcription sessions, at `/v1/realtime` (`?intent=transcription`, or
 * `?model=…` as the `openai` SDK's OpenAIRealtimeWS connects), so that code written against OpenAI's
 * realtime transcription works by changing its base URL.
 *
 * A thin adapter over the same Session as the native endpoint. Client events: `session.update` (GA
 * shape, `session.type = "transcription"`, and the beta flat shape), `transcription_session.update`
 * (beta), `input_audio_buffer.append` / `.commit` / `.clear`. Server events: `session.created` /
 * `.updated` (or the beta `transcription_session.*`), `input_audio_buffer.speech_started` /
 * `.speech_stopped` / `.committed` / `.cleared`, `conversation.item.input_audio_transcription.delta` /
 * `.completed` / `.failed`, and `error`. README.md beside this file maps the semantics.
 */
import { KolError, quoted, toKolError, type ErrorCode } from '../../engine/errors.js';
import { applyConfig, clampEndpoint, MAX_PROMPT_CHARS, type SessionConfig } from '../session-config.js';
import { MAX_INPUT_RATE, MIN_INPUT_RATE } from '../../engine/audio/resample.js';
import type { SessionEvent, SpeechFinal } from '../session.js';
import type { Connection } from '../transport/connection.js';
import type { SessionHost, WsRoute } from '../transport/gateway.js';
import { DialectConnection } from './base.js';
import { WireAudio, type WireEncoding } from './audio.js';
import { languageFrom, modelInfo, parseJson, randomId, round3 } from './common.js';

export const OPENAI_REALTIME_PATH = '/v1/realtime';

// ── the session as OpenAI describes it

export type AudioFormat = { type: 'audio/pcm'; rate: number } | { type: 'audio/pcmu' } | { type: 'audio/pcma' };

export type TurnDetection =
  | { type: 'server_vad'; threshold: number; prefix_padding_ms: number; silence_duration_ms: number; idle_timeout_ms: number | null }
  | { type: 'semantic_vad'; eagerness: string }
  | null;

export interface RealtimeSessionState {
  format: AudioFormat;
  transcription: { model: string; language: string | null; prompt: string };
  turnDetection: TurnDetection;
  noiseReduction: unknown;
  include: string[] | null;
}

type Json = Record<string, unknown>;

/** OpenAI's error object, with our stable code in `code`. */
interface RealtimeError {
  type: 'server_error' | 'invalid_request_error';
  code: ErrorCode;
  message: string;
  param: string | null;
  /** The client event that caused it, when one did. */
  event_id?: string | null;
}

type RealtimeTranscriptionWire = { model: string; language: string; prompt: string };

/** The session as OpenAI describes it: the beta transcription session's flat fields, or the GA shape. */
type RealtimeSessionWire =
  | {
      id: string;
      object: 'realtime.transcription_session';
      modalities: ['text'];
      input_audio_format: 'pcm16' | 'g711_ulaw' | 'g711_alaw';
      input_audio_transcription: RealtimeTranscriptionWire;
      turn_detection: TurnDetection;
      input_audio_noise_reduction: unknown;
      include: string[] | null;
    }
  | {
      type: 'transcription';
      object: 'realtime.transcription_session';
      id: string;
      audio: { input: { format: AudioFormat; transcription: RealtimeTranscriptionWire; noise_reduction: unknown; turn_detection: TurnDetection } };
      include: string[] | null;
    };

/** The fields of each server event this dialect sends, by OpenAI's event name. */
interface RealtimeServerEventFields {
  'session.created': { session: RealtimeSessionWire };
  'session.updated': { session: RealtimeSessionWire };
  'transcription_session.created': { session: RealtimeSessionWire };
  'transcription_session.updated': { session: RealtimeSessionWire };
  'input_audio_buffer.speech_started': { audio_start_ms: number; item_id: string };
  'input_audio_buffer.speech_stopped': { audio_end_ms: number; item_id: string };
  'input_audio_buffer.committed': { previous_item_id: string | null; item_id: string };
  'input_audio_buffer.cleared': Record<string, never>;
  'conversation.item.input_audio_transcription.delta': { item_id: string; content_index: 0; delta: string };
  'conversation.item.input_audio_transcription.completed': { item_id: string; content_index: 0; transcript: string; usage: { type: 'duration'; seconds: number } };
  'conversation.item.input_audio_transcription.failed': { item_id: string; content_index: 0; error: RealtimeError };
  error: { error: RealtimeError };
}

type RealtimeServerEventType = keyof RealtimeServerEventFields;

/** One server event as sent: its literal `type`, an `event_id`, and that event's fields. */
type RealtimeServerEvent<T extends RealtimeServerEventType = RealtimeServerEventType> = { type: T; event_id: string } & RealtimeServerEventFields[T];

/** A KolError that also names the offending field, for OpenAI's `error.param`. */
function paramError(code: ErrorCode, message: string, param: string): KolError {
  return Object.assign(new KolError(code, message), { param });
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

export function defaultRealtimeState(model: string, endpointMs: number): RealtimeSessionState {
  return {
    format: { type: 'audio/pcm', rate: 24000 },
    transcription: { model, language: null, prompt: '' },
    turnDetection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: endpointMs, idle_timeout_ms: null },
    noiseReduction: null,
    include: null,
  };
}

/**
 * Applies a `session.update` / `transcription_session.update` body (GA `audio.input.*` fields or the
 * beta flat `input_audio_*` fields) to the state. Only fields present change; `turn_detection: null`
 * turns server VAD off. Throws a KolError naming the field.
 */
export function applyRealtimeUpdate(state: RealtimeSessionState, session: unknown, serverEndpointMs: number): RealtimeSessionState {
  if (!isObject(session)) throw paramError('invalid_message', 'The event needs a "session" object.', 'session');
  if (session.type !== undefined && session.type !== 'transcription' && session.type !== 'realtime') {
    throw paramError('invalid_config', `Unknown session type ${JSON.stringify(session.type)}; this server runs "transcription" sessions.`, 'session.type');
  }
  const audio = isObject(session.audio) ? session.audio : {};
  const input = isObject(audio.input) ? audio.input : {};
  const next: RealtimeSessionState = { ...state, transcription: { ...state.transcription } };

  if ('format' in input) next.format = gaFormat(input.format);
  else if ('input_audio_format' in session) next.format = betaFormat(session.input_audio_format);

  const transcription = 'transcription' in input ? input.transcription : session.input_audio_transcription;
  const transcriptionParam = 'transcription' in input ? 'session.audio.input.transcription' : 'session.input_audio_transcription';
  if (isObject(transcription)) {
    for (const field of ['model', 'language', 'prompt'] as const) {
      const value = transcription[field];
      if (value === undefined) continue;
      if (field === 'language' && value === null) next.transcription.language = null;
      else if (typeof value !== 'string') throw paramError('invalid_config', `"${field}" must be a string.`, `${transcriptionParam}.${field}`);
      else next.transcription[field] = value;
    }
  }

  if ('turn_detection' in input) next.turnDetection = turnDetection(input.turn_detection, serverEndpointMs, 'session.audio.input.turn_detection');
  else if ('turn_detection' in session) next.turnDetection = turnDetection(session.turn_detection, serverEndpointMs, 'session.turn_detection');

  if ('noise_reduction' in input) next.noiseReduction = input.noise_reduction;
  else if ('input_audio_noise_reduction' in session) next.noiseReduction = session.input_audio_noise_reduction;

  if ('include' in session) {
    if (session.include !== null && !(Array.isArray(session.include) && session.include.every((x) => typeof x === 'string'))) {
      throw paramError('invalid_config', '"include" must be an array of strings.', 'session.include');
    }
    next.include = session.include as string[] | null;
  }
  return next;
}

function gaFormat(format: unknown): AudioFormat {
  const param = 'session.audio.input.format';
  if (!isObject(format)) throw paramError('unsupported_encoding', 'The audio format must be an object such as {"type":"audio/pcm","rate":24000}.', param);
  switch (format.type) {
    case 'audio/pcm': {
      const rate = format.rate ?? 24000;
      if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < MIN_INPUT_RATE || rate > MAX_INPUT_RATE) {
        throw paramError('unsupported_sample_rate', `The audio/pcm rate must be a whole number of Hz from ${MIN_INPUT_RATE} to ${MAX_INPUT_RATE} (OpenAI uses 24000), not ${JSON.stringify(rate)}.`, `${param}.rate`);
      }
      return { type: 'audio/pcm', rate };
    }
    case 'audio/pcmu':
    case 'audio/pcma':
      return { type: format.type };
    default:
      throw paramError('unsupported_encoding', `Unknown audio format ${JSON.stringify(format.type ?? null)}; use "audio/pcm", "audio/pcmu" or "audio/pcma".`, `${param}.type`);
  }
}

function betaFormat(format: unknown): AudioFormat {
  switch (format) {
    case 'pcm16':
      return { type: 'audio/pcm', rate: 24000 };
    case 'g711_ulaw':
      return { type: 'audio/pcmu' };
    case 'g711_alaw':
      return { type: 'audio/pcma' };
    default:
      throw paramError('unsupported_encoding', `Unknown input_audio_format ${JSON.stringify(format ?? null)}; use "pcm16", "g711_ulaw" or "g711_alaw".`, 'session.input_audio_format');
  }
}

function turnDetection(value: unknown, serverEndpointMs: number, param: string): TurnDetection {
  if (value === null) return null;
  if (!isObject(value)) throw paramError('invalid_config', '"turn_detection" must be an object or null.', param);
  const type = value.type ?? 'server_vad';
  if (type === 'semantic_vad') return { type, eagerness: typeof value.eagerness === 'string' ? value.eagerness : 'auto' };
  if (type !== 'server_vad') throw paramError('invalid_config', `Unknown turn_detection type ${JSON.stringify(type)}; use "server_vad", "semantic_vad" or null.`, `${param}.type`);
  const number = (field: string, fallback: number, min: number, max: number): number => {
    const v = value[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw paramError('invalid_config', `"${field}" must be a number from ${min} to ${max}.`, `${param}.${field}`);
    return v;
  };
  return {
    type: 'server_vad',
    threshold: number('threshold', 0.5, 0, 1),
    prefix_padding_ms: number('prefix_padding_ms', 300, 0, 10_000),
    silence_duration_ms: number('silence_duration_ms', serverEndpointMs, 0, 60_000),
    idle_timeout_ms: typeof value.idle_timeout_ms === 'number' ? value.idle_timeout_ms : null,
  };
}

/** The native session configuration a realtime session state stands for. Throws a KolError. */
export function realtimeSessionConfig(state: RealtimeSessionState, base: SessionConfig): SessionConfig {
  const td = state.turnDetection;
  return applyConfig(base, {
    sample_rate: state.format.type === 'audio/pcm' ? state.format.rate : 8000,
    encoding: 'pcm_s16le',
    channels: 1,
    language: languageFrom(state.transcription.language, base.language),
    prompt: state.transcription.prompt.slice(0, MAX_PROMPT_CHARS),
    endpoint_ms: td?.type === 'server_vad' ? clampEndpoint(td.silence_duration_ms) : base.endpoint_ms,
    // Deltas are cut from each final (OpenAI's order puts them after the commit): partials would be unused work.
    partials: false,
  });
}

function wireEncoding(format: AudioFormat): WireEncoding {
  return format.type === 'audio/pcm' ? 'linear16' : format.type === 'audio/pcmu' ? 'mulaw' : 'alaw';
}

const PIPELINE_FIELDS = ['sample_rate', 'encoding', 'channels', 'language', 'prompt', 'endpoint_ms'] as const;

export const openaiRealtimeRoute: WsRoute = {
  path: OPENAI_REALTIME_PATH,
  needs: 'publish',
  handle: (connection, host) => new RealtimeConnection(connection, host).start(),
};

// ── items: one per segment with server VAD, one per commit without

interface SegmentItem {
  itemId: string;
  stopped: boolean;
  committed: boolean;
}

interface Boundary {
  kind: 'commit' | 'clear';
  itemId: string;
  /** A commit whose item was already completed (by the final of the segment it committed). */
  done: boolean;
}

const WORKER_FAILURES = new Set<ErrorCode>(['worker_unavailable', 'worker_request_failed', 'worker_crashed', 'worker_timeout', 'pool_closed']);

class RealtimeConnection extends DialectConnection {
  private state: RealtimeSessionState;
  private readonly base: SessionConfig;
  private readonly sessionId = randomId('sess_');
  private readonly beta: boolean;
  private readonly intentTranscription: boolean;
  private wire: WireAudio;
  private audioStarted = false;
  /** Wire bytes appended since the last commit or clear (OpenAI refuses to commit under 100 ms). */
  private bufferedBytes = 0;

  /** Server VAD: the segments whose speech_started was sent and whose item is not completed, in order. */
  private readonly segments = new Map<number, SegmentItem>();
  /** Commits and clears whose flush has not completed, in order. */
  private readonly boundaries: Boundary[] = [];
  /** Finals not yet in an item: without server VAD they wait for the next commit. */
  private uncommitted: SpeechFinal[] = [];
  private lastItemId: string | null = null;

  /** The frame being handled: its parsed event, or why it is not one, and the client's event_id once read. */
  private frame: { event: unknown; parseError: KolError | null; eventId: string | null } = { event: undefined, parseError: null, eventId: null };

  constructor(connection: Connection, host: SessionHost) {
    super(connection, host);
    const protocols = String(connection.headers['sec-websocket-protocol'] ?? '');
    this.beta = /realtime=v1/.test(String(connection.headers['openai-beta'] ?? '')) || protocols.includes('openai-beta.realtime-v1');
    this.intentTranscription = connection.url.searchParams.get('intent') === 'transcription';
    this.base = host.defaultSessionConfig();
    this.state = defaultRealtimeState(modelInfo(host.model).name, this.base.endpoint_ms);
    this.wire = new WireAudio(wireEncoding(this.state.format));
  }

  protected configure(): SessionConfig {
    return realtimeSessionConfig(this.state, this.base);
  }

  protected override opened(): void {
    this.emit(this.beta && this.intentTranscription ? 'transcription_session.created' : 'session.created', { session: this.renderSession() });
  }

  /** Parses the event here, since the pace limit counts the audio in an append (as the session's PCM), not its base64 and JSON. */
  protected override frameCost(bytes: Buffer, isBinary: boolean): number {
    this.frame = { event: undefined, parseError: null, eventId: null };
    if (!isBinary) {
      try {
        this.frame.event = parseJson(bytes.toString('utf8'));
      } catch (err) {
        this.frame.parseError = toKolError(err);
      }
    }
    const event = this.frame.event;
    const audio = isObject(event) && event.type === 'input_audio_buffer.append' && typeof event.audio === 'string' ? event.audio : null;
    return audio === null ? bytes.length : Math.floor((audio.length * 3) / 4) * this.wire.expansion;
  }

  protected onFrame(_bytes: Buffer, isBinary: boolean): void {
    if (isBinary) throw new KolError('invalid_message', 'The Realtime API takes JSON text events; send audio as {"type":"input_audio_buffer.append","audio":"<base64>"}.');
    if (this.frame.parseError) throw this.frame.parseError;
    const event = this.frame.event;
    if (!isObject(event)) throw new KolError('invalid_message', 'An event must be a JSON object with a "type".');
    if (typeof event.event_id === 'string') this.frame.eventId = event.event_id;
    switch (event.type) {
      case 'session.update':
      case 'transcription_session.update':
        this.update(event.type, event.session);
        return;
      case 'input_audio_buffer.append':
        this.append(event.audio);
        return;
      case 'input_audio_buffer.commit':
        this.commit();
        return;
      case 'input_audio_buffer.clear':
        this.clear();
        return;
      default:
        throw paramError(
          'unknown_message_type',
          `Unknown or unsupported event type ${quoted(event.type)} for a transcription session; expected session.update, transcription_session.update, input_audio_buffer.append, input_audio_buffer.commit or input_audio_buffer.clear.`,
          'type',
        );
    }
  }

  protected override frameError(error: KolError): void {
    this.sendError(error, 'no', this.renderError(error, false, this.frame.eventId));
  }


  private update(type: 'session.update' | 'transcription_session.update', body: unknown): void {
    const session = this.session!;
    const next = applyRealtimeUpdate(this.state, body, this.base.endpoint_ms);
    const config = realtimeSessionConfig(next, this.base);
    const current = session.effectiveConfig;
    const changed = PIPELINE_FIELDS.filter((field) => config[field] !== current[field]);
    if (changed.length > 0) {
      if (this.audioStarted) {
        throw paramError(
          'config_after_audio',
          `The audio format, language, prompt and silence_duration_ms are fixed once audio has been appended (this update changes ${changed.join(', ')}); open a new session to change them.`,
          'session',
        );
      }
      session.configure(Object.fromEntries(changed.map((field) => [field, config[field]])));
    }
    this.state = next;
    if (!this.audioStarted) this.wire = new WireAudio(wireEncoding(next.format));
    // Answered in the shape asked in: the beta event, or the beta flat fields without a GA session type.
    const betaShape =
      this.beta ||
      type === 'transcription_session.update' ||
      (isObject(body) && body.type === undefined && ['input_audio_format', 'input_audio_transcription', 'turn_detection'].some((k) => k in body));
    this.emit(type === 'session.update' ? 'session.updated' : 'transcription_session.updated', { session: this.renderSession(betaShape) });
  }

  private append(audio: unknown): void {
    if (typeof audio !== 'string') throw paramError('invalid_message', 'input_audio_buffer.append needs an "audio" string of base64 audio.', 'audio');
    const data = audio.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 === 1) throw paramError('invalid_base64', 'The "audio" of input_audio_buffer.append was not valid base64.', 'audio');
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length === 0) return;
    this.audioStarted = true;
    this.bufferedBytes += bytes.length;
    const pcm = this.wire.push(bytes);
    if (pcm.length > 0) this.session!.audio(pcm);
  }

  private wireBytesPerSecond(): number {
    return this.state.format.type === 'audio/pcm' ? this.state.format.rate * 2 : 8000;
  }

  private commit(): void {
    const bufferedMs = (this.bufferedBytes / this.wireBytesPerSecond()) * 1000;
    if (bufferedMs < 100) {
      throw paramError('audio_too_short', `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${bufferedMs.toFixed(2)}ms of audio.`, 'audio');
    }
    this.bufferedBytes = 0;
    // With server VAD, a commit during speech commits that speech's item; its final completes it.
    const open = [...this.segments.values()].find((s) => !s.committed);
    let itemId: string;
    if (open) {
      open.committed = true;
      open.stopped = true; // the client ended it: no speech_stopped, as with OpenAI
      itemId = open.itemId;
    } else {
      itemId = randomId('item_');
    }
    this.emitCommitted(itemId);
    const boundary: Boundary = { kind: 'commit', itemId, done: false };
    this.boundaries.push(boundary);
    this.session!.flush(() => this.onBoundary(boundary));
  }

  /**
   * The pipeline cannot take audio back once sent, so a clear is a flush whose finals are dropped:
   * everything appended before it is never reported, and nothing appended after it is lost.
   */
  private clear(): void {
    this.bufferedBytes = 0;
    if (this.boundaries.length === 0) this.uncommitted = [];
    const boundary: Boundary = { kind: 'clear', itemId: '', done: false };
    this.boundaries.push(boundary);
    this.emit('input_audio_buffer.cleared', {});
    this.session!.flush(() => this.onBoundary(boundary));
  }

  private onBoundary(boundary: Boundary): void {
    const index = this.boundaries.indexOf(boundary);
    if (index >= 0) this.boundaries.splice(index, 1);
    if (boundary.kind === 'clear') {
      this.uncommitted = [];
    } else if (!boundary.done) {
      const finals = this.uncommitted;
      this.uncommitted = [];
      this.emitTranscript(boundary.itemId, finals);
    }
  }

  // ── session events → OpenAI

  protected onEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'speech_start':
        if (this.state.turnDetection === null) return;
        // Segments never overlap: speech starting again means the earlier speech has stopped.
        for (const item of this.segments.values()) {
          if (!item.stopped) this.emitStopped(item, event.start);
          // (Not when a clear is pending: that speech may be from before it, and then never completes.)
          if (!item.committed && this.boundaries[0]?.kind !== 'clear') this.emitCommitted(item.itemId, item);
        }
        {
          const item: SegmentItem = { itemId: randomId('item_'), stopped: false, committed: false };
          this.segments.set(event.segmentId, item);
          this.emit('input_audio_buffer.speech_started', { audio_start_ms: Math.round(event.start * 1000), item_id: item.itemId });
        }
        return;
      case 'final':
        this.onFinal(event);
        return;
      case 'error':
        this.onSessionError(event.error, event.fatal);
        return;
      case 'ready':
      case 'partial':
      case 'closed':
        return;
    }
  }

  private onFinal(final: SpeechFinal): void {
    const item = this.segments.get(final.segmentId);
    if (this.boundaries[0]?.kind === 'clear') {
      // Audio from before a clear: never reported.
      if (item) {
        if (!item.stopped) this.emitStopped(item, final.end);
        this.segments.delete(final.segmentId);
      }
      return;
    }
    if (!item) {
      this.uncommitted.push(final);
      return;
    }
    this.segments.delete(final.segmentId);
    if (!item.stopped) this.emitStopped(item, final.end);
    if (!item.committed) this.emitCommitted(item.itemId, item);
    this.emitTranscript(item.itemId, [final]);
    const boundary = this.boundaries.find((b) => b.kind === 'commit' && b.itemId === item.itemId);
    if (boundary) boundary.done = true;
  }

  private onSessionError(error: KolError, fatal: boolean): void {
    // A failed transcription is reported in the segment's order, so it is the oldest pending item's.
    const oldest = this.segments.entries().next();
    if (!fatal && WORKER_FAILURES.has(error.code) && !oldest.done) {
      const [segmentId, item] = oldest.value;
      this.segments.delete(segmentId);
      if (!item.committed) this.emitCommitted(item.itemId, item);
      const failed = this.event('conversation.item.input_audio_transcription.failed', {
        item_id: item.itemId,
        content_index: 0,
        error: { type: 'server_error', code: error.code, message: error.message, param: null },
      });
      this.sendError(error, 'no', failed);
      return;
    }
    this.sendError(error, fatal ? 'soon' : 'no');
  }

  private emitStopped(item: SegmentItem, endSeconds: number): void {
    item.stopped = true;
    this.emit('input_audio_buffer.speech_stopped', { audio_end_ms: Math.round(endSeconds * 1000), item_id: item.itemId });
  }

  private emitCommitted(itemId: string, item?: SegmentItem): void {
    if (item) item.committed = true;
    this.emit('input_audio_buffer.committed', { previous_item_id: this.lastItemId, item_id: itemId });
    this.lastItemId = itemId;
  }

  /** Append-only deltas (one per word, with its leading space), then `completed` with their concatenation. */
  private emitTranscript(itemId: string, finals: SpeechFinal[]): void {
    const transcript = finals
      .map((f) => f.text.trim())
      .filter(Boolean)
      .join(' ');
    for (const delta of transcript.match(/\s*\S+/gu) ?? []) {
      this.emit('conversation.item.input_audio_transcription.delta', { item_id: itemId, content_index: 0, delta });
    }
    const seconds = finals.reduce((sum, f) => sum + (f.end - f.start), 0);
    this.emit('conversation.item.input_audio_transcription.completed', {
      item_id: itemId,
      content_index: 0,
      transcript,
      usage: { type: 'duration', seconds: round3(seconds) },
    });
  }

  private renderSession(beta = this.beta): RealtimeSessionWire {
    const s = this.state;
    const config = this.session?.effectiveConfig ?? this.base;
    const transcription = { model: s.transcription.model, language: s.transcription.language ?? config.language, prompt: s.transcription.prompt };
    if (beta) {
      const format = s.format.type === 'audio/pcmu' ? 'g711_ulaw' : s.format.type === 'audio/pcma' ? 'g711_alaw' : 'pcm16';
      return {
        id: this.sessionId,
        object: 'realtime.transcription_session',
        modalities: ['text'],
        input_audio_format: format,
        input_audio_transcription: transcription,
        turn_detection: s.turnDetection,
        input_audio_noise_reduction: s.noiseReduction,
        include: s.include,
      };
    }
    return {
      type: 'transcription',
      object: 'realtime.transcription_session',
      id: this.sessionId,
      audio: { input: { format: s.format, transcription, noise_reduction: s.noiseReduction, turn_detection: s.turnDetection } },
      include: s.include,
    };
  }

  private event<T extends RealtimeServerEventType>(type: T, fields: RealtimeServerEventFields[T]): RealtimeServerEvent<T> {
    return { type, event_id: randomId('event_'), ...fields };
  }

  private emit<T extends RealtimeServerEventType>(type: T, fields: RealtimeServerEventFields[T]): void {
    this.connection.send(this.event(type, fields));
  }

  /** OpenAI's error event, with our stable code in `error.code`. */
  protected renderError(error: KolError, _fatal: boolean, clientEventId: string | null = null): RealtimeServerEvent<'error'> {
    const param = (error as KolError & { param?: string }).param ?? null;
    return this.event('error', {
      error: { type: error.status >= 500 ? 'server_error' : 'invalid_request_error', code: error.code, message: error.message, param, event_id: clientEventId },
    });
  }
}
