// @ts-check
/**
 * The microphone's audio thread: mixes the input to mono, converts it from the device rate to
 * 16 kHz (resampler.js: band-limited, any ratio), turns it into 16-bit PCM, and posts it to the
 * page in 100 ms chunks together with the input level. Loaded with audioWorklet.addModule().
 *
 * Messages to the page: { type: 'audio', pcm: ArrayBuffer (Int16, 16 kHz), rms, peak } and, after
 * a { type: 'stop' } from the page, the last partial chunk followed by { type: 'stopped' }.
 */
/* global AudioWorkletProcessor, registerProcessor, sampleRate */
import { StreamResampler, floatToInt16 } from './resampler.js';

class KolMicProcessor extends AudioWorkletProcessor {
  /** @param {{ processorOptions?: { targetRate?: number, chunkMs?: number } }} options */
  constructor(options) {
    super();
    const targetRate = options.processorOptions?.targetRate ?? 16000;
    const chunkMs = options.processorOptions?.chunkMs ?? 100;
    // `sampleRate` is the AudioContext's rate, a global of the worklet scope.
    this.resampler = new StreamResampler(sampleRate, targetRate);
    this.chunkSize = Math.round((targetRate * chunkMs) / 1000);
    this.chunk = new Int16Array(this.chunkSize);
    this.filled = 0;
    this.mono = new Float32Array(128);
    this.sumSquares = 0;
    this.levelSamples = 0;
    this.peak = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data?.type !== 'stop' || !this.running) return;
      this.running = false;
      this.append(floatToInt16(this.resampler.flush()));
      this.post(this.filled);
      this.port.postMessage({ type: 'stopped' });
    };
  }

  /** @param {Float32Array[][]} inputs */
  process(inputs) {
    if (!this.running) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0 || channels[0].length === 0) return true;
    const frames = channels[0].length;
    if (this.mono.length !== frames) this.mono = new Float32Array(frames);
    const mono = this.mono;
    if (channels.length === 1) {
      mono.set(channels[0]);
    } else {
      mono.fill(0);
      for (const channel of channels) for (let i = 0; i < frames; i++) mono[i] += channel[i];
      for (let i = 0; i < frames; i++) mono[i] /= channels.length;
    }
    for (let i = 0; i < frames; i++) {
      const v = mono[i];
      this.sumSquares += v * v;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
    }
    this.levelSamples += frames;
    this.append(floatToInt16(this.resampler.process(mono)));
    return true;
  }

  /** @param {Int16Array} samples */
  append(samples) {
    let offset = 0;
    while (offset < samples.length) {
      const n = Math.min(samples.length - offset, this.chunkSize - this.filled);
      this.chunk.set(samples.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.chunkSize) this.post(this.chunkSize);
    }
  }

  /** @param {number} length */
  post(length) {
    if (length === 0) return;
    const pcm = this.chunk.slice(0, length).buffer;
    const rms = this.levelSamples > 0 ? Math.sqrt(this.sumSquares / this.levelSamples) : 0;
    this.port.postMessage({ type: 'audio', pcm, rms, peak: this.peak }, [pcm]);
    this.filled = 0;
    this.sumSquares = 0;
    this.levelSamples = 0;
    this.peak = 0;
  }
}

registerProcessor('kol-mic', KolMicProcessor);
