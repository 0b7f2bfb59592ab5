/**
 * Re-chunks 16 kHz mono audio of any chunk length into the fixed 512-sample frames that the VAD and
 * the segmenter work in, carrying the remainder over to the next chunk.
 */

/** Samples per VAD frame at 16 kHz (32 ms): what Silero v5 takes at 16 kHz. */
export const FRAME_SAMPLES = 512;

export class FrameChunker {
  private readonly pending = new Float32Array(FRAME_SAMPLES);
  private pendingLength = 0;

  /** Samples held over, waiting for the rest of their frame. */
  get buffered(): number {
    return this.pendingLength;
  }

  /** The whole frames completed by `samples`. Each frame is a new array the caller may keep. */
  push(samples: Float32Array): Float32Array[] {
    const frames: Float32Array[] = [];
    let offset = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(FRAME_SAMPLES - this.pendingLength, samples.length);
      this.pending.set(samples.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      offset = take;
      if (this.pendingLength < FRAME_SAMPLES) return frames;
      frames.push(this.pending.slice());
      this.pendingLength = 0;
    }
    for (; offset + FRAME_SAMPLES <= samples.length; offset += FRAME_SAMPLES) {
      frames.push(samples.slice(offset, offset + FRAME_SAMPLES));
    }
    this.pending.set(samples.subarray(offset));
    this.pendingLength = samples.length - offset;
    return frames;
  }

  /**
   * At end of stream: the held-over samples zero-padded to a whole frame, or null when none are held.
   * The padding is silence, so the stream's timeline grows by under one frame.
   */
  flushPadded(): Float32Array | null {
    if (this.pendingLength === 0) return null;
    const frame = new Float32Array(FRAME_SAMPLES);
    frame.set(this.pending.subarray(0, this.pendingLength));
    this.pendingLength = 0;
    return frame;
  }
}
