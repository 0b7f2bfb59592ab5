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
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { KolError, toKolError } from '../../engine/errors.js';
import { applyConfig, type SessionConfig } from './protocol.js';
import type { Gateway, WsRoute } from '../transport/gateway.js';
import type { Session, SessionEvent, SpeechFinal } from '../session.js';
import { WireAudio } from './audio.js';
import { closeAfterFatal, closeCodeFor, frameBytes, intParam, languageFrom, meanConfidence, round3 } from './common.js';

export const VOSK_PATHS = ['/v1/vosk', '/vosk'] as const;

export const voskRoutes: WsRoute[] = VOSK_PATHS.map((path) => ({
  path,
  needs: 'publish' as const,
  handle: (ws: WebSocket, req: IncomingMessage, gateway: Gateway) => new VoskConnection(ws, req, gateway).start(),
}));

interface VoskOptions {
  /** Word times in results (vosk-server's default, VOSK_SHOW_WORDS, is on). */
  words: boolean;
  /** >0: results as {"alternatives": [...]} (this server has one hypothesis to give). */
  maxAlternatives: number;
}

type Reply = { kind: 'final'; final: SpeechFinal } | { kind: 'error'; error: KolError };

class VoskConnection {
  private session: Session | null = null;
  private readonly wire = new WireAudio('linear16', 1);
  private readonly options: VoskOptions = { words: true, maxAlternatives: 0 };
  /** Finals and errors waiting to be the reply to the next frame. */
  private queue: Reply[] = [];
  private partial: { segmentId: number; text: string } = { segmentId: -1, text: '' };
  private ended = false;
  private audioStarted = false;
  private dead = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly req: IncomingMessage,
    private readonly gateway: Gateway,
  ) {}

  start(): void {
    let config: SessionConfig;
    try {
      // Vosk clients configure with a message; the URL may also carry sample_rate and language.
      const params = new URL(this.req.url ?? '/', 'http://localhost').searchParams;
      const base = this.gateway.defaultSessionConfig();
      config = applyConfig(base, {
        encoding: 'pcm_s16le',
        channels: 1,
        sample_rate: intParam(params, 'sample_rate') ?? base.sample_rate,
        language: languageFrom(params.get('language'), base.language),
        partials: true,
      });
    } catch (err) {
      this.fatal(toKolError(err));
      return;
    }
    this.session = this.gateway.openSession(this.ws, this.req, config, (e) => this.onSessionEvent(e));
    if (!this.session) return;
    this.ws.on('message', (data, isBinary) => this.onFrame(frameBytes(data), isBinary));
  }

  private onFrame(bytes: Buffer, isBinary: boolean): void {
    if (this.dead) return;
    const session = this.session!;
    try {
      this.gateway.checkFrame(this.ws, session, bytes.length);
      if (isBinary) {
        if (this.ended) throw new KolError('session_ended', 'Audio arrived after eof; it was ignored.');
        this.audioStarted = true;
        const pcm = this.wire.push(bytes);
        if (pcm.length > 0) session.audio(pcm);
        this.reply();
        return;
      }
      this.text(bytes.toString('utf8'));
    } catch (err) {
      const error = toKolError(err);
      if (!(err instanceof KolError)) this.gateway.logger.error({ err, session: session.id }, 'unexpected error handling a Vosk frame');
      // One reply per message, even for a bad one.
      this.send({ error: error.message, code: error.code });
    }
  }

  private text(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      throw new KolError('invalid_json', `A text frame was not valid JSON (it began ${JSON.stringify(text.slice(0, 40))}); send audio as binary frames.`);
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new KolError('invalid_message', 'A text message must be {"config": {...}} or {"eof" : 1}.');
    }
    const m = message as Record<string, unknown>;
    if ('config' in m) {
      this.configure(m.config);
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
  private configure(config: unknown): void {
    if (this.audioStarted || this.ended) return;
    try {
      if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new KolError('invalid_config', '"config" must be an object.');
      const c = config as Record<string, unknown>;
      const update: Record<string, unknown> = {};
      if (c.sample_rate !== undefined) update.sample_rate = typeof c.sample_rate === 'number' ? Math.round(c.sample_rate) : Math.round(Number(c.sample_rate));
      if (Array.isArray(c.phrase_list)) update.prompt = c.phrase_list.filter((p) => typeof p === 'string').join(', ').slice(0, 1000);
      if (typeof c.language === 'string') update.language = languageFrom(c.language, this.session!.effectiveConfig.language);
      if (c.words !== undefined) this.options.words = Boolean(c.words);
      if (c.max_alternatives !== undefined) this.options.maxAlternatives = Number(c.max_alternatives) || 0;
      if (Object.keys(update).length > 0) this.session!.configure(update);
    } catch (err) {
      this.fatal(toKolError(err));
    }
  }

  private eof(): void {
    if (this.ended) return;
    this.ended = true;
    // The reply to eof (the last result) is sent on `closed`, after every pending final.
    void this.session!.finish().then(() => {
      if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'eof');
    });
  }

  /** The one reply to an audio frame: an error or the finals that arrived since the last reply, else the partial. */
  private reply(): void {
    const next = this.queue[0];
    if (next?.kind === 'error') {
      this.queue.shift();
      this.send({ error: next.error.message, code: next.error.code });
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

  private onSessionEvent(event: SessionEvent): void {
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
          this.fatal(event.error, false);
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
  private result(finals: SpeechFinal[]): Record<string, unknown> {
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

  private send(message: Record<string, unknown>): void {
    this.gateway.sendJson(this.ws, message);
  }

  private fatal(error: KolError, closeNow = true): void {
    this.dead = true;
    this.send({ error: error.message, code: error.code });
    if (closeNow || !this.session) this.ws.close(closeCodeFor(error.code), error.code);
    else closeAfterFatal(this.ws, error.code);
  }
}
