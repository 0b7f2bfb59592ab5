/**
 * Deepgram-compatible live transcription at `/v1/listen` (Deepgram's "Listen v1" streaming API), so
 * that code written against Deepgram — `@deepgram/sdk` included — works by changing its base URL.
 *
 * A thin adapter over the same Session as the native endpoint: query parameters → SessionConfig,
 * Deepgram's control messages → session calls, session events → Deepgram's `Results`,
 * `SpeechStarted`, `UtteranceEnd` and `Metadata`. README.md beside this file maps the semantics.
 */
import { createHash } from 'node:crypto';
import { KolError, quoted, toKolError } from '../../engine/errors.js';
import type { TranscriptWord } from '../../engine/whisper/types.js';
import { applyConfig, clampEndpoint, MAX_PROMPT_CHARS, type SessionConfig } from '../session-config.js';
import type { SessionEvent, SpeechFinal } from '../session.js';
import type { Connection } from '../transport/connection.js';
import type { SessionHost, WsRoute } from '../transport/gateway.js';
import { DialectConnection } from './base.js';
import { MAX_HEADER_BYTES, sessionEncodingFor, sniffContainer, WireAudio, type WireEncoding } from './audio.js';
import {
  bareWord,
  boolParam,
  intParam,
  languageFrom,
  meanConfidence,
  modelInfo,
  parseJson,
  round3,
  type ModelInfo,
} from './common.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';

export const DEEPGRAM_PATH = '/v1/listen';

const ENCODINGS: Record<string, WireEncoding> = { linear16: 'linear16', linear32: 'linear32', mulaw: 'mulaw', alaw: 'alaw' };

/** Time allowed for the VAD to notice speech that has already arrived, before an UtteranceEnd is sent. */
const UTTERANCE_END_MARGIN_S = 0.25;

export interface DeepgramOptions {
  /** null: no `encoding` given, so the stream may start with a WAV header (Deepgram sniffs containers). */
  encoding: WireEncoding | null;
  channels: number;
  interimResults: boolean;
  /** false with `endpointing=false`: `speech_final` is never set. */
  endpointing: boolean;
  utteranceEndMs: number | null;
  vadEvents: boolean;
  /** `punctuate` or `smart_format`: transcripts keep Whisper's punctuation, words get `punctuated_word`. */
  punctuate: boolean;
}

/** Deepgram query parameters → a session configuration and the dialect's own options. Throws a KolError. */
export function parseDeepgramQuery(params: URLSearchParams, base: SessionConfig): { config: SessionConfig; options: DeepgramOptions } {
  const rawEncoding = params.get('encoding');
  let encoding: WireEncoding | null = null;
  if (rawEncoding !== null && rawEncoding !== '') {
    encoding = ENCODINGS[rawEncoding.toLowerCase()] ?? null;
    if (!encoding) {
      throw new KolError(
        'unsupported_encoding',
        `The Deepgram encoding ${JSON.stringify(rawEncoding)} is not supported here; use linear16, linear32, mulaw or alaw, or send WAV without an encoding parameter.`,
      );
    }
  }
  const g711 = encoding === 'mulaw' || encoding === 'alaw';
  const endpointingRaw = params.get('endpointing');
  let endpointing = true;
  let endpointMs = base.endpoint_ms;
  if (endpointingRaw === 'false') endpointing = false;
  else if (endpointingRaw !== null && endpointingRaw !== '' && endpointingRaw !== 'true') endpointMs = clampEndpoint(intParam(params, 'endpointing')!);

  const utteranceEndMs = intParam(params, 'utterance_end_ms');
  if (utteranceEndMs !== null && utteranceEndMs <= 0) throw new KolError('invalid_config', 'Query parameter "utterance_end_ms" must be a positive number of milliseconds.');

  // Deepgram's keyterm (Nova-3) and keywords ("word:boost") prompting → Whisper's prompt, a soft hint.
  const terms = [...params.getAll('keyterm'), ...params.getAll('keywords').map((k) => k.replace(/:[-\d.]+$/, ''))].map((t) => t.trim()).filter(Boolean);

  const options: DeepgramOptions = {
    encoding,
    channels: intParam(params, 'channels') ?? 1,
    interimResults: boolParam(params, 'interim_results', false),
    endpointing,
    utteranceEndMs,
    vadEvents: boolParam(params, 'vad_events', false),
    punctuate: boolParam(params, 'punctuate', false) || boolParam(params, 'smart_format', false),
  };
  const config = applyConfig(base, {
    sample_rate: intParam(params, 'sample_rate') ?? (g711 ? 8000 : SAMPLE_RATE),
    encoding: sessionEncodingFor(encoding ?? 'linear16'),
    channels: options.channels,
    language: languageFrom(params.get('language'), base.language),
    partials: options.interimResults,
    endpoint_ms: endpointMs,
    ...(terms.length > 0 ? { prompt: terms.join(', ').slice(0, MAX_PROMPT_CHARS) } : {}),
  });
  return { config, options };
}

export const deepgramRoute: WsRoute = {
  path: DEEPGRAM_PATH,
  needs: 'publish',
  handle: (connection, host) => new DeepgramConnection(connection, host).start(),
};

/** A Deepgram `Results` message. */
interface DeepgramResults {
  type: 'Results';
  channel_index: [number, number];
  duration: number;
  start: number;
  is_final: boolean;
  speech_final: boolean;
  channel: { alternatives: Array<{ transcript: string; confidence: number; words: DeepgramWord[] }> };
  metadata: { request_id: string; model_info: { name: string; version: string; arch: string }; model_uuid: string };
  from_finalize: boolean;
}

interface DeepgramWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  punctuated_word?: string;
}

/** Every message this dialect sends, each with its literal `type`. */
type DeepgramMessage =
  | DeepgramResults
  | { type: 'SpeechStarted'; channel: [number]; timestamp: number }
  | { type: 'UtteranceEnd'; channel: [number, number]; last_word_end: number }
  | {
      type: 'Metadata';
      transaction_key: string;
      request_id: string;
      sha256: string;
      created: string;
      duration: number;
      channels: number;
      models: string[];
      model_info: Record<string, { name: string; version: string; arch: string }>;
    }
  /** Deepgram's live API reports errors by a close code and reason; this server also sends this first, with our stable code. */
  | { type: 'Error'; code: string; description: string; message: string; fatal: boolean };

class DeepgramConnection extends DialectConnection {
  private options!: DeepgramOptions;
  private readonly model: ModelInfo;
  private wire: WireAudio | null = null;
  /** Bytes held while a WAV header at the start of the stream is incomplete. */
  private header: Uint8Array | null = null;
  private readonly sha256 = createHash('sha256');
  private readonly created = new Date().toISOString();
  private closing = false;
  private wireBytes = 0;
  private sessionBytesPerSecond = SAMPLE_RATE * 2;

  // UtteranceEnd bookkeeping (stream seconds).
  private lastWordEnd: number | null = null;
  private utterancePending = false;
  private readonly openSegments = new Map<number, number>();
  private readonly recentStarts: number[] = [];

  constructor(connection: Connection, host: SessionHost) {
    super(connection, host);
    this.model = modelInfo(host.model);
  }

  protected configure(): SessionConfig {
    const { config, options } = parseDeepgramQuery(this.connection.url.searchParams, this.host.defaultSessionConfig());
    this.options = options;
    if (options.encoding) this.wire = new WireAudio(options.encoding, options.channels);
    return config;
  }

  protected override opened(): void {
    this.updateRate();
  }

  protected override frameCost(bytes: Buffer, isBinary: boolean): number {
    return isBinary ? bytes.length * (this.wire?.expansion ?? 1) : bytes.length;
  }

  protected onFrame(bytes: Buffer, isBinary: boolean): void {
    if (isBinary) {
      // An empty binary frame is Deepgram's older way of saying CloseStream.
      if (bytes.length === 0) this.closeStream();
      else this.audio(bytes);
      return;
    }
    this.control(bytes.toString('utf8'));
  }

  private control(text: string): void {
    const message = parseJson(text);
    const type = typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as { type?: unknown }).type : undefined;
    switch (type) {
      case 'KeepAlive':
        return; // admitting the frame already reset the idle timer.
      case 'Finalize':
        this.session!.flush();
        return;
      case 'CloseStream':
        this.closeStream();
        return;
      default:
        throw new KolError('unknown_message_type', `Unknown message type ${quoted(type)}; expected "KeepAlive", "Finalize" or "CloseStream" (audio goes in binary frames).`);
    }
  }

  private audio(bytes: Uint8Array): void {
    const session = this.session!;
    if (this.closing) throw new KolError('session_ended', 'Audio arrived after CloseStream; it was ignored.');
    this.sha256.update(bytes);
    this.wireBytes += bytes.length;
    let data: Uint8Array = bytes;
    if (!this.wire) {
      const held = this.header ? Buffer.concat([this.header, bytes]) : bytes;
      let sniffed;
      try {
        sniffed = sniffContainer(held);
      } catch (err) {
        this.sendError(toKolError(err), 'now');
        return;
      }
      if (sniffed.kind === 'need_more') {
        if (held.length > MAX_HEADER_BYTES) return this.sendError(new KolError('unsupported_encoding', 'The WAV header at the start of the stream did not end within 64 KiB.'), 'now');
        this.header = held;
        return;
      }
      this.header = null;
      if (sniffed.kind === 'wav') {
        try {
          session.configure({ sample_rate: sniffed.sampleRate, channels: sniffed.channels, encoding: sessionEncodingFor(sniffed.encoding) });
        } catch (err) {
          this.sendError(toKolError(err), 'now');
          return;
        }
        this.wire = new WireAudio(sniffed.encoding, sniffed.channels);
        this.updateRate();
        data = held.subarray(sniffed.dataOffset);
      } else {
        this.wire = new WireAudio('linear16', this.options.channels);
        data = held;
      }
    }
    const pcm = this.wire.push(data);
    if (pcm.length > 0) session.audio(pcm);
    this.maybeUtteranceEnd();
  }

  private updateRate(): void {
    const c = this.session!.effectiveConfig;
    this.sessionBytesPerSecond = c.sample_rate * c.channels * (c.encoding === 'pcm_s16le' ? 2 : 4);
  }

  private closeStream(): void {
    if (this.closing) return;
    this.closing = true;
    void this.session!.finish().then(() => {
      if (this.connection.isOpen) this.connection.close(1000, 'CloseStream');
    });
  }

  // ── session events → Deepgram

  protected onEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'ready':
        return;
      case 'speech_start':
        this.openSegments.set(event.segmentId, event.start);
        this.recentStarts.push(event.start);
        if (this.recentStarts.length > 8) this.recentStarts.shift();
        if (this.lastWordEnd !== null && event.start >= this.lastWordEnd && event.start < this.lastWordEnd + this.utteranceGapS()) this.utterancePending = false;
        if (this.options.vadEvents) this.send({ type: 'SpeechStarted', channel: [0], timestamp: round3(event.start) });
        return;
      case 'partial': {
        if (!this.options.interimResults) return;
        const received = this.session?.audioSeconds ?? event.start;
        this.send(
          this.results({ transcript: this.transcript(event.text), confidence: 0, words: [], start: event.start, end: Math.max(event.start, received), isFinal: false, speechFinal: false, fromFinalize: false }),
        );
        return;
      }
      case 'final':
        this.onFinal(event);
        return;
      case 'error':
        this.sendError(event.error, event.fatal ? 'soon' : 'no');
        return;
      case 'closed':
        this.send(this.metadata());
        return;
    }
  }

  private onFinal(final: SpeechFinal): void {
    this.openSegments.delete(final.segmentId);
    this.send(
      this.results({
        transcript: this.transcript(final.text),
        confidence: meanConfidence(final),
        words: final.words.map((w) => this.word(w)),
        start: final.start,
        end: final.end,
        isFinal: true,
        speechFinal: this.options.endpointing && final.reason === 'silence',
        fromFinalize: final.reason === 'flush',
      }),
    );
    if (this.options.utteranceEndMs === null || !final.text.trim()) return;
    this.lastWordEnd = final.words.at(-1)?.end ?? final.end;
    const end = this.lastWordEnd;
    // Speech that began soon after this final's words (its segment may have opened before this final
    // arrived) means the utterance goes on.
    this.utterancePending = !this.recentStarts.some((s) => s >= final.end && s < end + this.utteranceGapS());
    this.maybeUtteranceEnd();
  }

  private utteranceGapS(): number {
    return (this.options.utteranceEndMs ?? 0) / 1000;
  }

  /** UtteranceEnd once `utterance_end_ms` of audio has followed the last finalized word with no new speech. */
  private maybeUtteranceEnd(): void {
    if (!this.utterancePending || this.lastWordEnd === null || !this.session) return;
    const end = this.lastWordEnd;
    if ([...this.openSegments.values()].some((start) => start < end + this.utteranceGapS())) return;
    if (this.session.audioSeconds < end + this.utteranceGapS() + UTTERANCE_END_MARGIN_S) return;
    this.utterancePending = false;
    this.send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: round3(end) });
  }

  private transcript(text: string): string {
    const trimmed = text.trim();
    if (this.options.punctuate) return trimmed;
    return trimmed
      .split(/\s+/)
      .map((w) => bareWord(w).toLowerCase())
      .filter(Boolean)
      .join(' ');
  }

  private word(w: TranscriptWord): DeepgramWord {
    return {
      word: bareWord(w.word).toLowerCase() || w.word,
      start: round3(w.start),
      end: round3(w.end),
      confidence: round3(w.probability),
      ...(this.options.punctuate ? { punctuated_word: w.word } : {}),
    };
  }

  private results(r: {
    transcript: string;
    confidence: number;
    words: DeepgramWord[];
    start: number;
    end: number;
    isFinal: boolean;
    speechFinal: boolean;
    fromFinalize: boolean;
  }): DeepgramResults {
    return {
      type: 'Results',
      channel_index: [0, 1],
      duration: round3(Math.max(0, r.end - r.start)),
      start: round3(r.start),
      is_final: r.isFinal,
      speech_final: r.speechFinal,
      channel: { alternatives: [{ transcript: r.transcript, confidence: r.confidence, words: r.words }] },
      metadata: {
        request_id: this.session?.id ?? '',
        model_info: { name: this.model.name, version: this.model.version, arch: this.model.arch },
        model_uuid: this.model.uuid,
      },
      from_finalize: r.fromFinalize,
    };
  }

  private metadata(): DeepgramMessage {
    const config = this.session?.effectiveConfig;
    return {
      type: 'Metadata',
      transaction_key: 'deprecated',
      request_id: this.session?.id ?? '',
      sha256: this.sha256.copy().digest('hex'),
      created: this.created,
      duration: round3(this.wireSeconds()),
      channels: config?.channels ?? 1,
      models: [this.model.uuid],
      model_info: { [this.model.uuid]: { name: this.model.name, version: this.model.version, arch: this.model.arch } },
    };
  }

  /** Seconds of audio received, from the bytes (a WAV header counted as audio is negligible). */
  private wireSeconds(): number {
    const expansion = this.wire?.expansion ?? 1;
    return (this.wireBytes * expansion) / this.sessionBytesPerSecond;
  }

  private send(message: DeepgramMessage): void {
    this.connection.send(message);
  }

  protected renderError(error: KolError, fatal: boolean): DeepgramMessage {
    return { type: 'Error', code: error.code, description: error.message, message: error.message, fatal };
  }
}
