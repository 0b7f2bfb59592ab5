/** Types for resampler.js (plain browser JavaScript, also imported by the Node tests). */
export declare class StreamResampler {
  constructor(inputRate: number, outputRate?: number, options?: { zeroCrossings?: number; rolloff?: number; beta?: number });
  readonly inputRate: number;
  readonly outputRate: number;
  readonly step: number;
  readonly passthrough: boolean;
  /** Kernel half-length in input samples (also the output's lag behind the input). */
  readonly half: number;
  readonly taps: number;
  process(input: Float32Array): Float32Array;
  flush(): Float32Array;
}
export declare function floatToInt16(input: Float32Array): Int16Array;
