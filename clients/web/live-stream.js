// @ts-check
/**
 * One live transcription over /v1/stream that survives dropped connections.
 *
 * The page hands it 16 kHz 16-bit PCM as the microphone produces it. Everything captured since the
 * end of the last final is kept (up to maxReplaySeconds), because the server has not committed to
 * it yet: when the connection drops, a new one is opened (with back-off) and that audio is sent
 * again first, so the words spoken around and during the outage are still transcribed, and the
 * transcript already shown is never touched. Each connection is a new server session whose times
 * start at 0; this class maps them back onto one timeline, "seconds since the recording started".
 *
 * No DOM: it takes the WebSocket class to use, so the Node tests drive the same code with `ws`.
 */

const RATE = 16000;

/** Server error codes that another attempt cannot fix: the page must say what is wrong instead. */
const FINAL_CODES = new Set([
  'invalid_config',
  'unsupported_sample_rate',
  'unsupported_encoding',
  'unauthorized',
  'forbidden_scope',
  'forbidden_origin',
  'room_required',
]);

/**
 * @typedef {'connecting' | 'live' | 'reconnecting' | 'finishing' | 'closed' | 'failed'} StreamState
 *
 * @typedef {{ type: 'state', state: StreamState, attempt?: number, delayMs?: number, everOpened?: boolean, code?: number, reason?: string }
 *   | { type: 'ready', sessionId: string, config: Record<string, unknown> }
 *   | { type: 'partial', key: string, text: string, stable: string, unstable: string, start: number }
 *   | { type: 'final', key: string, text: string, start: number, end: number, reason: string, latencyMs: number, queueMs: number, inferenceMs: number, e2eMs: number | null }
 *   | { type: 'error', code: string, message: string, fatal: boolean, key?: string }
 *   | { type: 'notice', message: string }} LiveEvent
 *
 * @typedef {{ start: number, data: Int16Array, capturedAt: number }} Chunk
 */

export class LiveStream {
  /**
   * @param {{
   *   url: () => string,
   *   onEvent: (event: LiveEvent) => void,
   *   WebSocket?: any,
   *   maxReplaySeconds?: number,
   *   retryDelaysMs?: number[],
   *   finishTimeoutMs?: number,
   * }} options
   */
  constructor(options) {
    this.url = options.url;
    this.onEvent = options.onEvent;
    this.WS = options.WebSocket ?? globalThis.WebSocket;
    this.maxReplaySamples = (options.maxReplaySeconds ?? 60) * RATE;
    this.retryDelaysMs = options.retryDelaysMs ?? [500, 1000, 2000, 4000, 8000];
    this.finishTimeoutMs = options.finishTimeoutMs ?? 30_000;

    /** @type {Chunk[]} audio not yet covered by a final, oldest first */
    this.chunks = [];
    /** Samples captured since the start (the timeline). */
    this.captured = 0;
    /** Samples covered by finals: the server has committed to everything before this. */
    this.confirmed = 0;

    /** @type {any} */
    this.ws = null;
    this.open = false;
    /** Connections made so far; a segment's key is "serial:segment_id". */
    this.serial = 0;
    /** Where the current connection's session starts on the timeline, in samples. */
    this.sessionOffset = 0;
    this.attempt = 0;
    /** @type {StreamState} */
    this.state = 'connecting';
    /** @type {{ code: string, message: string } | null} a refusal another attempt cannot fix */
    this.refused = null;
    this.finishing = false;
    this.eofSent = false;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.finishTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.watchdog = null;
    /** @type {(() => void) | null} */
    this.resolveFinish = null;
    /** @type {Promise<void> | null} */
    this.finished = null;
  }

  /** Seconds of audio captured so far. */
  get capturedSeconds() {
    return this.captured / RATE;
  }

  start() {
    this.connect();
    // A connection that stopped moving (its send buffer never shrinks) is dead even if the
    // browser has not noticed yet: replace it.
    let stuckChecks = 0;
    let lastBuffered = 0;
    this.watchdog = setInterval(() => {
      const buffered = this.open ? this.ws.bufferedAmount : 0;
      stuckChecks = buffered > 0 && buffered >= lastBuffered ? stuckChecks + 1 : 0;
      lastBuffered = buffered;
      if (stuckChecks >= 4) {
        stuckChecks = 0;
        this.ws.close(4000, 'stalled');
      }
    }, 5000);
  }

  /**
   * The next piece of microphone audio (16 kHz mono 16-bit).
   * @param {Int16Array} pcm
   */
  push(pcm) {
    if (this.finishing || this.stopped || pcm.length === 0) return;
    this.chunks.push({ start: this.captured, data: pcm, capturedAt: Date.now() });
    this.captured += pcm.length;
    // Keep at most maxReplaySeconds; what is dropped is lost only if the connection fails now.
    while (this.chunks.length > 1 && this.captured - this.chunks[0].start - this.chunks[0].data.length >= this.maxReplaySamples) this.chunks.shift();
    if (this.open) this.ws.send(pcm);
  }

  /**
   * Ends the recording: eof, then every pending final, then the server closes. Resolves when it
   * has (or after finishTimeoutMs, with a notice).
   * @returns {Promise<void>}
   */
  finish() {
    if (this.finished) return this.finished;
    this.finishing = true;
    this.finished = new Promise((resolve) => {
      this.resolveFinish = resolve;
    });
    this.setState('finishing');
    this.finishTimer = setTimeout(() => {
      this.emit({ type: 'notice', message: 'The server did not deliver the last part of the transcript in time.' });
      this.stop('closed');
    }, this.finishTimeoutMs);
    if (this.open) this.sendEof();
    return this.finished;
  }

  /** Stops at once: no eof, no more finals. */
  abort() {
    this.stop('closed');
  }

  connect() {
    this.retryTimer = null;
    if (this.stopped) return;
    this.serial++;
    const serial = this.serial;
    const ws = new this.WS(this.url());
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.open = false;
    let opened = false;
    if (this.state !== 'finishing') this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });

    ws.onopen = () => {
      if (ws !== this.ws) return;
      opened = true;
      this.open = true;
      this.replay();
      if (this.finishing) this.sendEof();
    };
    /** @param {{ data: unknown }} event */
    ws.onmessage = (event) => {
      if (ws !== this.ws || typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message, serial);
    };
    ws.onerror = () => {
      // A close event follows with the code.
    };
    /** @param {{ code: number, reason: string }} event */
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.open = false;
      this.onClose(event.code, event.reason, opened);
    };
  }

  /** A new connection starts with the audio no final covers yet. */
  replay() {
    const first = this.chunks.length > 0 ? this.chunks[0].start : this.captured;
    const from = Math.max(this.confirmed, first);
    if (from > this.confirmed) {
      const lost = (from - this.confirmed) / RATE;
      this.emit({ type: 'notice', message: `${lost.toFixed(1)} s of audio from before the connection dropped could not be sent again.` });
      this.confirmed = from;
    }
    this.sessionOffset = from;
    for (const chunk of this.chunks) {
      const end = chunk.start + chunk.data.length;
      if (end <= from) continue;
      this.ws.send(chunk.start >= from ? chunk.data : chunk.data.subarray(from - chunk.start));
    }
  }

  sendEof() {
    this.ws.send(JSON.stringify({ type: 'eof' }));
    this.eofSent = true;
  }

  /**
   * @param {any} message
   * @param {number} serial
   */
  onMessage(message, serial) {
    const offset = this.sessionOffset / RATE;
    switch (message.type) {
      case 'ready':
        this.attempt = 0;
        if (!this.finishing) this.setState('live');
        this.emit({ type: 'ready', sessionId: message.session_id, config: message.config });
        break;
      case 'partial':
        this.emit({ type: 'partial', key: `${serial}:${message.segment_id}`, text: message.text, stable: message.stable, unstable: message.unstable, start: offset + message.start });
        break;
      case 'final': {
        const endSample = this.sessionOffset + Math.round(message.end * RATE);
        const e2eMs = this.captureTime(endSample);
        this.confirmed = Math.max(this.confirmed, endSample);
        while (this.chunks.length > 0 && this.chunks[0].start + this.chunks[0].data.length <= this.confirmed) this.chunks.shift();
        this.emit({
          type: 'final',
          key: `${serial}:${message.segment_id}`,
          text: message.text,
          start: offset + message.start,
          end: offset + message.end,
          reason: message.reason,
          latencyMs: message.latency_ms,
          queueMs: message.queue_ms,
          inferenceMs: message.inference_ms,
          e2eMs: e2eMs === null ? null : Date.now() - e2eMs,
        });
        break;
      }
      case 'error':
        if (message.fatal && FINAL_CODES.has(message.code)) this.refused = { code: message.code, message: message.message };
        // An error that cost a segment its final names the segment: its partial is to be cleared.
        this.emit({ type: 'error', code: message.code, message: message.message, fatal: message.fatal === true, ...(typeof message.segment_id === 'number' ? { key: `${serial}:${message.segment_id}` } : {}) });
        break;
      default:
        break;
    }
  }

  /**
   * When the sample at `sample` was captured (ms since the epoch), if its chunk is still kept.
   * @param {number} sample
   * @returns {number | null}
   */
  captureTime(sample) {
    for (const chunk of this.chunks) {
      const end = chunk.start + chunk.data.length;
      if (sample <= end && sample >= chunk.start) return chunk.capturedAt - ((end - sample) / RATE) * 1000;
    }
    return null;
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} opened
   */
  onClose(code, reason, opened) {
    if (this.stopped) return;
    if (this.finishing && this.eofSent && (code === 1000 || this.captured <= this.confirmed)) {
      this.stop('closed');
      return;
    }
    if (this.refused) {
      this.stop('failed', { code, reason });
      return;
    }
    // Anything else (network, server restart, session limits) is worth another attempt; the
    // audio since the last final goes again.
    this.eofSent = false;
    this.attempt++;
    const base = this.retryDelaysMs[Math.min(this.attempt - 1, this.retryDelaysMs.length - 1)];
    const delayMs = Math.round(base * (1 + Math.random() * 0.2));
    this.setState(this.finishing ? 'finishing' : 'reconnecting', { attempt: this.attempt, delayMs, everOpened: opened, code, reason });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  /**
   * @param {StreamState} state
   * @param {{ code?: number, reason?: string }} [detail]
   */
  stop(state, detail = {}) {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.finishTimer) clearTimeout(this.finishTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.ws && this.ws.readyState <= 1) this.ws.close(1000, 'client_stop');
    this.open = false;
    this.setState(state, detail);
    this.resolveFinish?.();
  }

  /**
   * @param {StreamState} state
   * @param {{ attempt?: number, delayMs?: number, everOpened?: boolean, code?: number, reason?: string }} [detail]
   */
  setState(state, detail = {}) {
    this.state = state;
    this.emit({ type: 'state', state, ...detail });
  }

  /** @param {LiveEvent} event */
  emit(event) {
    try {
      this.onEvent(event);
    } catch (err) {
      console.error('kol: event handler failed', err);
    }
  }
}
