import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FRAME_SAMPLES, FrameChunker } from './frames.js';

/** Sample i holds the value i, so any loss, repeat or reordering shows. */
function ramp(start: number, length: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => start + i);
}

describe('FrameChunker', () => {
  test('chunks of any size come out as consecutive 512-sample frames, remainder carried', () => {
    const chunker = new FrameChunker();
    const frames: Float32Array[] = [];
    let fed = 0;
    for (const size of [1, 511, 513, 1000, 3, 2048, 0, 100, 512, 7]) {
      frames.push(...chunker.push(ramp(fed, size)));
      fed += size;
      assert.equal(chunker.buffered, fed % FRAME_SAMPLES, `after ${fed} samples`);
    }
    assert.equal(frames.length, Math.floor(fed / FRAME_SAMPLES));
    frames.forEach((frame, k) => {
      assert.equal(frame.length, FRAME_SAMPLES);
      assert.deepEqual(frame, ramp(k * FRAME_SAMPLES, FRAME_SAMPLES), `frame ${k}`);
    });

    const last = chunker.flushPadded();
    assert.ok(last);
    const held = fed % FRAME_SAMPLES;
    assert.deepEqual(last.subarray(0, held), ramp(frames.length * FRAME_SAMPLES, held));
    assert.ok(last.subarray(held).every((v) => v === 0), 'padded with silence');
    assert.equal(chunker.flushPadded(), null, 'nothing held after the flush');
  });

  test('frames are copies: reusing the input buffer does not change them', () => {
    const chunker = new FrameChunker();
    const input = ramp(0, 1024);
    const frames = chunker.push(input);
    input.fill(-1);
    assert.equal(frames[0][0], 0);
    assert.equal(frames[1][511], 1023);
  });

  test('with nothing held, flushPadded returns null', () => {
    const chunker = new FrameChunker();
    chunker.push(ramp(0, FRAME_SAMPLES * 2));
    assert.equal(chunker.flushPadded(), null);
  });
});
