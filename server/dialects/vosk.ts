/**
 * Vosk-server–compatible WebSocket endpoint at `/v1/vosk` (and `/vosk`), speaking the protocol of
 * alphacep/vosk-server's websocket/asr_server.py, so that Vosk clients work by changing their URL.
 *
 * Vosk's protocol is request/response: an optional `{"config": {...}}` (no reply), then binary
 * 16-bit PCM frames, each answered by exactly one message — `{"partial": "..."}` while an utterance
 * goes on, or `{"result": [...], "text": "..."}` once one has ended — and finally `{"eof" : 1}`,
 * answered by the last result, after which the server closes. Clients that send a chunk and then
 * wait for one reply depend on that rhythm, so this adapter keeps it: finals (which arrive
 * asynchronously here) are queued and become the reply to the next frame.
 */
import { KolError, toKolError } from '../../engine/errors.js';
import { applyConfig, MAX_PROMPT_CHARS, type SessionConfig } from '../session-config.js';
import type { SessionEvent, SpeechFinal } from '../session.js';
import type { WsRoute } from '../transport/gateway.js';
import { DialectConnection } from './base.js';
import { WireAudio } from './audio.js';
import { intParam, languageFrom, meanConfidence, parseJson, round3 } from './common.js';

export const VOSK_PATHS = ['/v1/vosk', '/vosk'] as const;

export const voskRoutes: WsRoute[] = VOSK_PATHS.map((path) => ({
  path,
  needs: 'publish' as const,
  handle: (connection, host) => new VoskConnection(connection, host).start(),
}));

interface VoskOptions {
  /** Word times in results (vosk-server's default, VOSK_SHOW_WORDS, is on). */
  words: boolean;
  /** >0: results as {"alternatives": [...]} (this server has one hypothesis to give). */
  maxAlternatives: number;
}

type Reply = { kind: 'final'; final: SpeechFinal } | { kind: 'error'; error: KolError };

/** Vosk's messages: a partial hypothesis, a result (or its alternatives), or this server's error with its code. */
type VoskWord = { conf: number; end: number; start: number; word: string };
type VoskResult = { result?: VoskWord[]; text: string };
type VoskMessage = { partial: string } | VoskResult | { alternatives: Array<VoskResult & { confidence: number }> } | { error: string; code: string };

class VoskConnection extends DialectConnection {
  private readonly wire = new WireAudio('linear16', 1);
  private readonly options: VoskOptions = { words: true, maxAlternatives: 0 };
  /** Finals and errors waiting to be the reply to the next frame. */
  private queue: Reply[] = [];
  private partial: { segmentId: number; text: string } = { segmentId: -1, text: '' };
  private ended = false;
  private audioStarted = false;

  protected configure(): SessionConfig {
    // Vosk clients configure with a message; the URL may also carry sample_rate and language.
    const params = this.connection.url.searchParams;
    const base = this.host.defaultSessionConfig();
    return applyConfig(base, {
      encoding: 'pcm_s16le',
      channels: 1,
      sample_rate: intParam(params, 'sample_rate') ?? base.sample_rate,
      language: languageFrom(params.get('language'), base.language),
      partials: true,
    });
  }

  protected onFrame(bytes: Buffer, isBinary: boolean): void {
    if (isBinary) {
      if (this.ended) throw new KolError('session_ended', 'Audio arrived after eof; it was ignored.');
      this.audioStarted = true;
      const pcm = this.wire.push(bytes);
      if (pcm.length > 0) this.session!.audio(pcm);
      this.reply();
      return;
    }
    this.text(bytes.toString('utf8'));
  }

  private text(text: string): void {
    const message = parseJson(text, '; send audio as binary frames');
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new KolError('invalid_message', 'A text message must be {"config": {...}} or {"eof" : 1}.');
    }
    const m = message as Record<string, unknown>;
    if ('config' in m) {
      this.configureFromMessage(m.config);
      return; // vosk-server sends nothing back for a config
    }
    if ('eof' in m) {
      this.eof();
      return;
    }
    throw new KolError('unknown_message_type', `Unknown message ${JSON.stringify(text.slice(0, 60))}; expected {"config": {...}} or {"eof" : 1}.`);
  }

  /**
   * vosk-server reads sample_rate, words, max_alternatives and phrase_list before the first audio and
   * ignores a later config. A config it cannot use ends the session (there is no reply to a config, so
   * an error could not be told apart from the reply to the next frame).
   */
  private configureFromMessage(config: unknown): void {
    if (this.audioStarted || this.ended) return;
    try {
      if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new KolError('invalid_config', '"config" must be an object.');
      const c = config as Record<string, unknown>;
      const update: Record<string, unknown> = {};
      if (c.sample_rate !== undefined) update.sample_rate = typeof c.sample_rate === 'number' ? Math.round(c.sample_rate) : Math.round(Number(c.sample_rate));
      if (Array.isArray(c.phrase_list)) update.prompt = c.phrase_list.filter((p) => typeof p === 'string').join(', ').slice(0, MAX_PROMPT_CHARS);
      if (typeof c.language === 'string') update.language = languageFrom(c.language, this.session!.effectiveConfig.language);
      if (c.words !== undefined) this.options.words = Boolean(c.words);
      if (c.max_alternatives !== undefined) this.options.maxAlternatives = Number(c.max_alternatives) || 0;
      if (Object.keys(update).length > 0) this.session!.configure(update);
    } catch (err) {
      this.sendError(toKolError(err), 'now');
    }
  }

  private eof(): void {
    if (this.ended) return;
    this.ended = true;
    // The reply to eof (the last result) is sent on `closed`, after every pending final.
    void this.session!.finish().then(() => {
      if (this.connection.isOpen) this.connection.close(1000, 'eof');
    });
  }

  /** The one reply to an audio frame: an error or the finals that arrived since the last reply, else the partial. */
  private reply(): void {
    const next = this.queue[0];
    if (next?.kind === 'error') {
      this.queue.shift();
      this.sendError(next.error);
      return;
    }
    if (next) {
      const finals: SpeechFinal[] = [];
      while (this.queue[0]?.kind === 'final') finals.push((this.queue.shift() as Extract<Reply, { kind: 'final' }>).final);
      this.send(this.result(finals));
      return;
    }
    this.send({ partial: this.partial.text });
  }

  protected onEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'speech_start':
        this.partial = { segmentId: event.segmentId, text: '' };
        return;
      case 'partial':
        if (event.segmentId >= this.partial.segmentId) this.partial = { segmentId: event.segmentId, text: event.text };
        return;
      case 'final':
        if (this.partial.segmentId <= event.segmentId) this.partial = { segmentId: event.segmentId, text: '' };
        this.queue.push({ kind: 'final', final: event });
        return;
      case 'error':
        if (event.fatal) {
          this.sendError(event.error, 'soon');
          return;
        }
        this.queue.push({ kind: 'error', error: event.error });
        return;
      case 'closed': {
        // vosk-server's FinalResult: whatever was not yet reported, as one result.
        const finals = this.queue.filter((r): r is Extract<Reply, { kind: 'final' }> => r.kind === 'final').map((r) => r.final);
        this.queue = [];
        this.send(this.result(finals));
        return;
      }
      case 'ready':
        return;
    }
  }

  /** One Vosk result for one or more finals: {"result": [...words], "text": "..."} (words omitted when off or none). */
  private result(finals: SpeechFinal[]): VoskMessage {
    const text = finals
      .map((f) => f.text.trim())
      .filter(Boolean)
      .join(' ');
    const words = finals.flatMap((f) => f.words.map((w) => ({ conf: round3(w.probability), end: round3(w.end), start: round3(w.start), word: w.word })));
    const withWords = this.options.words && words.length > 0 ? { result: words } : {};
    if (this.options.maxAlternatives > 0) {
      const confidence = finals.length > 0 ? round3(finals.reduce((sum, f) => sum + meanConfidence(f), 0) / finals.length) : 0;
      return { alternatives: [{ confidence, ...withWords, text }] };
    }
    return { ...withWords, text };
  }

  private send(message: VoskMessage): void {
    this.connection.send(message);
  }

  /** One reply per message, even for a bad one. */
  protected renderError(error: KolError): VoskMessage {
    return { error: error.message, code: error.code };
  }
}
