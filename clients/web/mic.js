// @ts-check
/**
 * The microphone: getUserMedia → AudioContext (at the device's own rate) → the kol-mic
 * AudioWorklet (mic-worklet.js), which hands back 16 kHz 16-bit PCM in 100 ms chunks.
 */

/** A failure with a sentence for people. */
export class MicError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Explains a getUserMedia or audio failure in words.
 * @param {unknown} err
 * @returns {MicError}
 */
export function explainMicError(err) {
  if (err instanceof MicError) return err;
  const name = err instanceof Error ? err.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return new MicError(
        'denied',
        'Microphone access was refused. Allow the microphone for this site (click the icon at the left of the address bar, or check the system privacy settings), then press Start again.',
      );
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return new MicError('not_found', 'No microphone was found. Connect one, then press Start again.');
    case 'NotReadableError':
    case 'TrackStartError':
      return new MicError('busy', 'The microphone could not be opened: another application may be using it, or the system blocked it.');
    case 'OverconstrainedError':
      return new MicError('constraints', 'The microphone does not support the settings this page asked for.');
    case 'SecurityError':
      return new MicError('insecure', 'The browser blocked the microphone on this page. It is only allowed on https:// pages, or on http://localhost.');
    case 'AbortError':
      return new MicError('aborted', 'Opening the microphone was interrupted. Press Start to try again.');
    default:
      return new MicError('audio', `The audio could not be started: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export class MicCapture {
  /**
   * @param {{
   *   onAudio: (pcm: Int16Array, level: { rms: number, peak: number }) => void,
   *   onEnded?: (message: string) => void,
   * }} handlers
   * @param {{ echoCancellation?: boolean }} [options]
   */
  constructor(handlers, options = {}) {
    this.handlers = handlers;
    this.echoCancellation = options.echoCancellation === true;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {AudioWorkletNode | null} */
    this.node = null;
    /** The device rate the worklet converts from. */
    this.inputRate = 0;
  }

  async start() {
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      throw new MicError(
        'insecure',
        'The browser only allows the microphone on secure pages. Open this page over https://, or as http://localhost on the machine running kol.',
      );
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          // The microphone as it is: the browser's voice processing is made for calls, not for
          // recognition. Measured on Chromium, echo cancellation alone turned a clean signal into
          // one 3 dB above its own distortion (gain 0.64); without it the 16 kHz PCM sent matches
          // the source at 37 dB. Noise suppression smears speech, automatic gain pumps, and the
          // recogniser normalises its input anyway. Echo cancellation stays available for people
          // who listen on loudspeakers while they speak.
          echoCancellation: this.echoCancellation,
          noiseSuppression: false,
          autoGainControl: false,
        },
      });
      const context = new AudioContext({ latencyHint: 'interactive' });
      this.context = context;
      this.inputRate = context.sampleRate;
      await context.audioWorklet.addModule(new URL('./mic-worklet.js', import.meta.url));
      if (context.state === 'suspended') await context.resume();
      const source = context.createMediaStreamSource(this.stream);
      const node = new AudioWorkletNode(context, 'kol-mic', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { targetRate: 16000, chunkMs: 100 },
      });
      this.node = node;
      node.port.onmessage = (event) => {
        if (event.data?.type === 'audio') this.handlers.onAudio(new Int16Array(event.data.pcm), { rms: event.data.rms, peak: event.data.peak });
      };
      // The node only runs while something pulls on it: a silent path to the speakers.
      const mute = context.createGain();
      mute.gain.value = 0;
      source.connect(node).connect(mute).connect(context.destination);
      for (const track of this.stream.getAudioTracks()) {
        track.addEventListener('ended', () => this.handlers.onEnded?.('The microphone was disconnected or turned off.'));
      }
    } catch (err) {
      await this.release();
      throw explainMicError(err);
    }
  }

  /** Stops capturing; the audio still inside the worklet is delivered first. */
  async stop() {
    const node = this.node;
    if (node) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 500);
        node.port.addEventListener('message', (event) => {
          if (event.data?.type === 'stopped') {
            clearTimeout(timer);
            resolve(undefined);
          }
        });
        node.port.postMessage({ type: 'stop' });
      });
    }
    await this.release();
  }

  async release() {
    this.node?.disconnect();
    this.node = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    const context = this.context;
    this.context = null;
    if (context && context.state !== 'closed') await context.close().catch(() => {});
  }
}
