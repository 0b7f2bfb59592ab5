// @ts-check
/**
 * Streaming sample-rate conversion for the browser: microphone audio at the audio device's rate
 * (usually 44.1 or 48 kHz) → 16 kHz, the rate the server transcribes at. Runs inside the
 * AudioWorklet (mic-worklet.js), 128 samples at a time.
 *
 * Band-limited interpolation with a Kaiser-windowed sinc: every output sample is the input
 * convolved with a low-pass kernel centred on its exact (fractional) position, so any ratio works
 * (44.1 → 16 is 2.75625) and nothing above the new Nyquist frequency folds back into the speech
 * band. The kernel is tabulated at PHASES sub-sample offsets and interpolated linearly between them.
 *
 * Defaults for 48 → 16 kHz: pass band flat to about 6.5 kHz, −6 dB at 7.2 kHz, stop band from
 * about 8.2 kHz at more than 90 dB down; 160 taps per output sample, about 2.6 M multiply-adds per
 * second of audio (some 4 ms of CPU per second, measured in Node).
 */

const PHASES = 128;

/**
 * Zeroth-order modified Bessel function of the first kind, for the Kaiser window.
 * @param {number} x
 */
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class StreamResampler {
  /**
   * @param {number} inputRate  Hz
   * @param {number} [outputRate]  Hz
   * @param {{ zeroCrossings?: number, rolloff?: number, beta?: number }} [options]
   *   zeroCrossings: kernel half-length in zero crossings of the sinc (quality vs. cost);
   *   rolloff: the cutoff as a fraction of the lower Nyquist frequency; beta: Kaiser window shape.
   */
  constructor(inputRate, outputRate = 16000, options = {}) {
    if (!(inputRate > 0) || !(outputRate > 0)) throw new RangeError(`Sample rates must be positive (got ${inputRate} → ${outputRate}).`);
    const zeroCrossings = options.zeroCrossings ?? 24;
    const rolloff = options.rolloff ?? 0.9;
    const beta = options.beta ?? 8.6;
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    /** Input samples per output sample. */
    this.step = inputRate / outputRate;
    this.passthrough = inputRate === outputRate;

    // Cutoff in cycles per input sample; the kernel spans `half` input samples either side.
    const cutoff = 0.5 * Math.min(1, outputRate / inputRate) * rolloff;
    const halfWidth = zeroCrossings / (2 * cutoff);
    this.half = Math.ceil(halfWidth);
    this.taps = 2 * this.half;
    const i0Beta = besselI0(beta);
    /** Row p holds the taps for a fractional position p / PHASES; row PHASES closes the interpolation. */
    this.table = new Float32Array((PHASES + 1) * this.taps);
    for (let p = 0; p <= PHASES; p++) {
      const frac = p / PHASES;
      let sum = 0;
      const row = p * this.taps;
      for (let j = 0; j < this.taps; j++) {
        // Tap j reads input sample floor(t) + j - half + 1, at distance x from the output position t.
        const x = frac + this.half - 1 - j;
        const r = x / halfWidth;
        let value = 0;
        if (Math.abs(r) < 1) {
          const arg = 2 * cutoff * x;
          const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
          value = 2 * cutoff * sinc * (besselI0(beta * Math.sqrt(1 - r * r)) / i0Beta);
        }
        this.table[row + j] = value;
        sum += value;
      }
      // Unity gain at DC for every phase.
      for (let j = 0; j < this.taps; j++) this.table[row + j] /= sum;
    }

    // Input not yet consumed, starting with `half` samples of silence so the first output sample
    // sits on the first input sample.
    this.buffer = new Float32Array(4096);
    this.length = this.half;
    /** Where the next output sample falls, in input samples from the start of `buffer`. */
    this.position = this.half;
    this.inputCount = 0;
    this.outputCount = 0;
  }

  /**
   * Converts the next piece of the stream. Output lags the input by `half` input samples (about
   * 1.7 ms at 48 kHz): those come out with the next call, or with flush().
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    this.inputCount += input.length;
    if (this.passthrough) return Float32Array.from(input);
    this.append(input);
    const out = this.drain();
    this.outputCount += out.length;
    return out;
  }

  /**
   * Ends the stream: returns the output still held back, so that the whole output is
   * round(input × outputRate / inputRate) samples. No process() after it.
   * @returns {Float32Array}
   */
  flush() {
    if (this.passthrough) return new Float32Array(0);
    this.append(new Float32Array(this.half + 1));
    const due = Math.max(0, Math.round(this.inputCount / this.step) - this.outputCount);
    const out = this.drain();
    this.outputCount += Math.min(due, out.length);
    return out.subarray(0, Math.min(due, out.length));
  }

  /** @param {Float32Array} input */
  append(input) {
    if (this.length + input.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.buffer.length * 2, this.length + input.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
  }

  /** @returns {Float32Array} */
  drain() {
    const { buffer, table, taps, half, step } = this;
    const available = Math.max(0, Math.floor((this.length - half - this.position) / step) + 1);
    const out = new Float32Array(available);
    let n = 0;
    let position = this.position;
    while (n < available && Math.floor(position) + half < this.length) {
      const base = Math.floor(position);
      const phase = (position - base) * PHASES;
      const p = Math.floor(phase);
      const q = phase - p;
      const rowA = p * taps;
      const rowB = rowA + taps;
      const start = base - half + 1;
      let acc = 0;
      for (let j = 0; j < taps; j++) {
        const a = table[rowA + j];
        acc += buffer[start + j] * (a + q * (table[rowB + j] - a));
      }
      out[n++] = acc;
      position += step;
    }
    // Drop the input no later output needs.
    const keepFrom = Math.max(0, Math.floor(position) - half + 1);
    if (keepFrom > 0) {
      buffer.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      position -= keepFrom;
    }
    this.position = position;
    return n === available ? out : out.subarray(0, n);
  }
}

/**
 * Float samples in [-1, 1] → 16-bit signed PCM (clipped, rounded).
 * The browser's own copy of engine/audio/format.ts's conversion: a page cannot import TypeScript.
 * It scales positive samples by 32767 where the server uses 32768 throughout; the two differ by at
 * most one step, near full scale.
 * @param {Float32Array} input
 * @returns {Int16Array}
 */
export function floatToInt16(input) {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const v = input[i] < -1 ? -1 : input[i] > 1 ? 1 : input[i];
    out[i] = Math.round(v < 0 ? v * 32768 : v * 32767);
  }
  return out;
}
