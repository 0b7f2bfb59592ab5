/**
 * Streaming resampler: mono float32 at any client rate (8–192 kHz) → 16 kHz, the rate of the VAD
 * and of whisper.
 *
 * Uses libsamplerate (compiled to WASM) through its "full" API, which keeps the filter state between
 * calls, so chunk boundaries leave no clicks and chunked output equals one-shot output.
 *
 * Converter: SRC_SINC_FASTEST — a real windowed-sinc, anti-aliased converter (stop band > 100 dB down
 * at 8.5 kHz and above for 48 kHz → 16 kHz; pass band flat to about 6 kHz, −3 dB near 6.4 kHz, which
 * keeps all of the speech band that matters for recognition). Measured on this 2-core dev box
 * (Node 20): 48 kHz → 16 kHz costs about 4–5 ms of CPU per second of audio (under 0.5 % of a core);
 * SRC_SINC_MEDIUM_QUALITY cost 21 ms and SRC_SINC_BEST_QUALITY 46 ms, 5–10× more per stream for
 * a wider pass band above 6 kHz (its effect on recognition is unmeasured).
 *
 * Cost to know about at scale: every converter is its own WASM instance (the package keeps its
 * converter state in module globals): about 8 ms to create and about 1.6 MB of resident memory
 * each (1000 converters measured at 1.6 GB). Streams already at 16 kHz create none.
 */
import libsamplerate from '@alexanderolsen/libsamplerate-js';
import { KolError } from '../errors.js';
import { SAMPLE_RATE } from './format.js';

export const MIN_INPUT_RATE = 8_000;
export const MAX_INPUT_RATE = 192_000;

/** The package's SRC object, typed from what `create` resolves to. */
type LibSampleRateConverter = Awaited<ReturnType<typeof libsamplerate.create>>;

export interface Resampler {
  readonly inputRate: number;
  /** Resamples the next chunk of the stream. The result may be a few samples shorter than the
   * exact ratio: the filter holds back its last samples until more input (or `flush`) arrives. */
  process(input: Float32Array): Float32Array;
  /** Ends the stream: returns the held-back samples, so that the total output is
   * round(total input × 16000 / inputRate). No `process` after it. */
  flush(): Float32Array;
  /** Frees the converter (its WASM memory is released once unreferenced). Idempotent. */
  close(): void;
}

/** A resampler to 16 kHz for `inputRate`; at 16 kHz it passes chunks through untouched. */
export async function createResampler(inputRate: number): Promise<Resampler> {
  if (!Number.isInteger(inputRate) || inputRate < MIN_INPUT_RATE || inputRate > MAX_INPUT_RATE) {
    throw new KolError(
      'unsupported_sample_rate',
      `The sample rate ${inputRate} Hz is not supported; use a whole number from ${MIN_INPUT_RATE} to ${MAX_INPUT_RATE} Hz.`,
    );
  }
  if (inputRate === SAMPLE_RATE) return new PassThrough();
  const converter = await libsamplerate.create(1, inputRate, SAMPLE_RATE, {
    converterType: libsamplerate.ConverterType.SRC_SINC_FASTEST,
  });
  return new SincResampler(inputRate, converter);
}

class PassThrough implements Resampler {
  readonly inputRate = SAMPLE_RATE;
  process(input: Float32Array): Float32Array {
    return input;
  }
  flush(): Float32Array {
    return new Float32Array(0);
  }
  close(): void {}
}

class SincResampler implements Resampler {
  private converter: LibSampleRateConverter | null;
  private inputSamples = 0;
  private outputSamples = 0;
  private flushed = false;

  constructor(
    readonly inputRate: number,
    converter: LibSampleRateConverter,
  ) {
    this.converter = converter;
  }

  process(input: Float32Array): Float32Array {
    const converter = this.open();
    if (this.flushed) throw new Error('Resampler.process was called after flush');
    if (input.length === 0) return new Float32Array(0);
    this.inputSamples += input.length;
    const out = converter.full(input);
    this.outputSamples += out.length;
    return out;
  }

  flush(): Float32Array {
    const converter = this.open();
    if (this.flushed) return new Float32Array(0);
    this.flushed = true;
    const expected = Math.round((this.inputSamples * SAMPLE_RATE) / this.inputRate);
    const tail = new Float32Array(Math.max(0, expected - this.outputSamples));
    // The package never sets libsamplerate's end_of_input, so push silence through the filter until
    // the held-back samples come out, and keep only as many as the real input accounts for.
    const silence = new Float32Array(Math.ceil(this.inputRate / 100));
    let filled = 0;
    for (let guard = 0; filled < tail.length && guard < 100; guard++) {
      const out = converter.full(silence);
      const take = Math.min(out.length, tail.length - filled);
      tail.set(out.subarray(0, take), filled);
      filled += take;
    }
    this.outputSamples += tail.length;
    return tail;
  }

  close(): void {
    if (!this.converter) return;
    this.converter.destroy();
    this.converter = null;
  }

  private open(): LibSampleRateConverter {
    if (!this.converter) throw new Error('Resampler was used after close');
    return this.converter;
  }
}
