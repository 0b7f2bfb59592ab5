import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assetPath } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { decodeAudioFile } from '../audio/wav.js';
import { isKolError } from '../errors.js';
import { FRAME_SAMPLES, FrameChunker } from './frames.js';
import { DEFAULT_SEGMENTER_OPTIONS, Segmenter, type SegmenterEvent, type SegmenterOptions } from './segmenter.js';
import { SileroVad } from './silero.js';

const F = FRAME_SAMPLES;

/** Small round numbers: 3-frame min speech, 10-frame endpoint, 5-frame pre-roll, 3-frame tail,
 * 100-frame cap, 20-frame cut search. */
const SMALL: Partial<SegmenterOptions> = { minSpeechMs: 96, endpointMs: 320, preRollMs: 160, tailPadMs: 96, maxSegmentS: 3.2, cutSearchS: 0.64, ...fixedEndpoint(320) };

/** The endpoint never shrinks and no early cut: the rules of start, end and cap on their own. */
function fixedEndpoint(ms: number): Partial<SegmenterOptions> {
  return { minEndpointMs: ms, earlyCutS: 1000 };
}

type End = Extract<SegmenterEvent, { type: 'segment_end' }>;
type Start = Extract<SegmenterEvent, { type: 'speech_start' }>;

/**
 * Feeds frames whose every sample holds its own index in the stream, so any segment's audio can be
 * checked against exactly which samples it should contain.
 */
class Driver {
  readonly segmenter: Segmenter;
  readonly events: SegmenterEvent[] = [];
  frames = 0;

  constructor(options: Partial<SegmenterOptions> = SMALL) {
    this.segmenter = new Segmenter(options);
  }

  push(...probabilities: number[]): SegmenterEvent[] {
    const out: SegmenterEvent[] = [];
    for (const p of probabilities) {
      const frame = Float32Array.from({ length: F }, (_, i) => this.frames * F + i);
      this.frames++;
      out.push(...this.segmenter.push(frame, p));
    }
    this.events.push(...out);
    return out;
  }

  run(value: number, count: number): SegmenterEvent[] {
    return this.push(...Array<number>(count).fill(value));
  }

  flush(): SegmenterEvent[] {
    const out = this.segmenter.flush();
    this.events.push(...out);
    return out;
  }

  end(): SegmenterEvent[] {
    const out = this.segmenter.end();
    this.events.push(...out);
    return out;
  }

  ends(): End[] {
    return this.events.filter((e): e is End => e.type === 'segment_end');
  }

  starts(): Start[] {
    return this.events.filter((e): e is Start => e.type === 'speech_start');
  }
}

/** The audio holds exactly the stream's samples [startSample, endSample). */
function assertExactAudio(e: End): void {
  assert.equal(e.audio.length, e.endSample - e.startSample, `segment ${e.segmentId} length`);
  for (let i = 0; i < e.audio.length; i++) {
    if (e.audio[i] !== e.startSample + i) assert.fail(`segment ${e.segmentId}: sample ${i} is ${e.audio[i]}, expected ${e.startSample + i}`);
  }
}

function only<T extends SegmenterEvent['type']>(events: SegmenterEvent[], type: T): Extract<SegmenterEvent, { type: T }> {
  assert.equal(events.length, 1, `expected one ${type} event, got ${JSON.stringify(events.map((e) => e.type))}`);
  assert.equal(events[0].type, type);
  return events[0] as Extract<SegmenterEvent, { type: T }>;
}

describe('Segmenter: start and end', () => {
  test('speech starts after minSpeechMs of frames at or above startThreshold; blips and near-misses do not start it', () => {
    const d = new Driver();
    assert.deepEqual(d.run(0, 10), []);
    assert.deepEqual(d.push(0.99), [], 'a 1-frame blip');
    assert.deepEqual(d.run(0, 5), []);
    assert.deepEqual(d.push(0.9, 0.9, 0.1), [], 'a 2-frame blip');
    assert.deepEqual(d.run(0.49, 20), [], 'just under startThreshold');
    assert.equal(d.segmenter.openSegment(), null);

    const startsAt = d.frames;
    assert.deepEqual(d.push(0.9, 0.9), []);
    const start = only(d.push(0.5), 'speech_start');
    assert.equal(start.speechStartSample, startsAt * F, 'speech starts at the first qualifying frame, not when it qualified');
    assert.equal(start.startSample, (startsAt - 5) * F, '5 frames of pre-roll');
  });

  test('hysteresis: frames between the thresholds neither end speech nor cancel a pause', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 10);
    assert.deepEqual(d.run(0.4, 30), [], 'ambiguous frames keep speech open however long');
    assert.deepEqual(d.run(0.1, 9), [], 'a pause one frame short of the endpoint');
    d.push(0.9); // speech resumes: the pause is forgotten
    const pauseStart = d.frames;
    d.run(0.1, 4);
    assert.deepEqual(d.run(0.4, 5), [], 'ambiguous frames after a pause began do not cancel it');
    const end = only(d.push(0.4), 'segment_end');
    assert.equal(end.reason, 'silence');
    assert.equal(end.speechEndSample, pauseStart * F, 'speech ended at the first frame below endThreshold');
    assert.equal(end.endSample, (pauseStart + 3) * F, 'plus a 3-frame tail pad');
  });

  test('segment audio is pre-roll + speech + tail pad, exactly the stream samples', () => {
    const d = new Driver();
    d.run(0, 20);
    d.run(0.9, 30);
    const [end] = d.run(0, 10) as End[];
    assert.equal(end.type, 'segment_end');
    assert.equal(end.startSample, 15 * F);
    assert.equal(end.speechEndSample, 50 * F);
    assert.equal(end.endSample, 53 * F);
    assertExactAudio(end);
  });

  test('pre-roll stops at the start of the stream and at the end of the previous segment', () => {
    const early = new Driver();
    early.run(0, 2);
    assert.equal(only(early.run(0.9, 3), 'speech_start').startSample, 0);

    // 10 frames of pre-roll would reach back into the previous segment's tail.
    const d = new Driver({ ...SMALL, preRollMs: 320 });
    d.run(0, 20);
    d.run(0.9, 30);
    const first = only(d.run(0, 10), 'segment_end');
    const second = only(d.run(0.9, 3), 'speech_start');
    assert.equal(second.startSample, first.endSample, 'pre-roll clamped to the previous end: no sample sent twice');
    assert.equal(second.speechStartSample, 60 * F);
  });

  test('openSegment gives the open audio so far, which later frames never change', () => {
    const d = new Driver();
    assert.equal(d.segmenter.openSegment(), null);
    d.run(0, 10);
    d.run(0.9, 7);
    const open = d.segmenter.openSegment();
    assert.ok(open);
    assert.equal(open.startSample, 5 * F);
    const expected = Float32Array.from({ length: 12 * F }, (_, i) => 5 * F + i);
    assert.deepEqual(open.audio, expected);
    d.run(0.9, 200); // grows the buffer past 1 s, and through a max-length cut
    d.run(0, 10);
    assert.ok(d.ends().length >= 2);
    assert.deepEqual(open.audio, expected, 'still the same samples');
    d.ends().forEach(assertExactAudio);
  });

  test('pendingEnd: once a pause outlasts the tail pad, the segment exactly as the endpoint will end it', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 20); // frames 10..29
    assert.equal(d.segmenter.pendingEnd(), null, 'speaking');
    d.run(0.1, 2);
    assert.equal(d.segmenter.pendingEnd(), null, 'the pause is shorter than the tail pad');
    d.run(0.1, 1);
    const early = d.segmenter.pendingEnd();
    assert.ok(early);
    assert.deepEqual([early.startSample, early.endSample, early.speechEndSample], [5 * F, 33 * F, 30 * F]);
    d.push(0.9);
    assert.equal(d.segmenter.pendingEnd(), null, 'speech resumed');

    d.run(0.1, 5); // frames 34..38
    const pending = d.segmenter.pendingEnd();
    assert.ok(pending);
    d.run(0.1, 4);
    assert.deepEqual(d.segmenter.pendingEnd(), pending, 'unchanged while the pause goes on');
    const end = only(d.run(0.1, 1), 'segment_end');
    assert.equal(end.segmentId, pending.segmentId);
    assert.equal(end.endSample, pending.endSample);
    assert.equal(end.speechEndSample, pending.speechEndSample);
    assert.deepEqual(end.audio, pending.audio);
    assert.equal(d.segmenter.pendingEnd(), null, 'nothing open');
  });
});

describe('Segmenter: flush and end', () => {
  test('flush mid-speech ends the segment now; speech that goes on starts a new, contiguous one', () => {
    const d = new Driver();
    assert.deepEqual(d.flush(), [], 'nothing open');
    d.run(0, 10);
    d.run(0.9, 20);
    const flushed = only(d.flush(), 'segment_end');
    assert.equal(flushed.reason, 'flush');
    assert.equal(flushed.endSample, 30 * F);
    assert.equal(flushed.speechEndSample, 30 * F);
    assertExactAudio(flushed);
    assert.equal(d.segmenter.openSegment(), null);

    const next = only(d.run(0.9, 3), 'speech_start');
    assert.equal(next.startSample, flushed.endSample);
  });

  test('flush during a pause ends speech at the pause, keeping at most the tail pad', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 20);
    d.run(0.1, 6);
    const end = only(d.flush(), 'segment_end');
    assert.equal(end.speechEndSample, 30 * F);
    assert.equal(end.endSample, 33 * F);

    const short = new Driver();
    short.run(0, 10);
    short.run(0.9, 20);
    short.run(0.1, 2);
    const shortEnd = only(short.flush(), 'segment_end');
    assert.equal(shortEnd.speechEndSample, 30 * F);
    assert.equal(shortEnd.endSample, 32 * F, 'the pause so far is shorter than the tail pad');
  });

  test('end finishes the open segment with reason eof, and nothing may follow it', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 8);
    const end = only(d.end(), 'segment_end');
    assert.equal(end.reason, 'eof');
    assert.equal(end.endSample, 18 * F);
    assertExactAudio(end);
    assert.throws(() => d.push(0.9), /after end/);

    const idle = new Driver();
    idle.run(0, 5);
    assert.deepEqual(idle.end(), []);
  });

  test('end during a pause keeps the whole pause: nothing follows that could need it', () => {
    // A flush here would keep only the tail pad (3 frames); measured on the shared clips, the
    // trimmed last 80–130 ms changed words of two finals against whole-clip transcription.
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 20);
    d.run(0.1, 7);
    const end = only(d.end(), 'segment_end');
    assert.equal(end.speechEndSample, 30 * F);
    assert.equal(end.endSample, 37 * F);
    assertExactAudio(end);
  });

  test('frames must be 512 samples', () => {
    assert.throws(() => new Segmenter().push(new Float32Array(511), 0.9), RangeError);
  });
});

describe('Segmenter: max length', () => {
  test('at the cap it cuts after the quietest frame of the search window, and speech continues at once', () => {
    const d = new Driver();
    d.run(0, 10); // the segment will start at frame 5; its window is frames 85..104
    d.run(0.9, 45);
    d.push(0.2); // frame 55: quieter, but before the search window
    d.run(0.9, 34);
    d.push(0.6); // frame 90
    d.run(0.9, 4);
    d.push(0.36); // frame 95: the quietest in the window
    d.run(0.9, 8);
    assert.equal(d.frames, 104);
    const events = d.push(0.9); // frame 104 brings the segment to 100 frames
    assert.equal(events.length, 2);
    const [cut, next] = events as [End, Start];
    assert.equal(cut.type, 'segment_end');
    assert.equal(cut.reason, 'max_length');
    assert.equal(cut.startSample, 5 * F);
    assert.equal(cut.endSample, 96 * F);
    assert.equal(cut.speechEndSample, 96 * F);
    assertExactAudio(cut);
    assert.equal(next.type, 'speech_start');
    assert.equal(next.segmentId, cut.segmentId + 1);
    assert.equal(next.startSample, cut.endSample);
    assert.equal(next.speechStartSample, cut.endSample);

    d.run(0, 10);
    const rest = d.ends()[1];
    assert.equal(rest.startSample, 96 * F, 'the rest starts exactly at the cut');
    assertExactAudio(rest);
  });

  test('of equally quiet frames in the window, the cut follows the latest', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 80);
    d.push(0.4); // frame 90
    d.run(0.9, 5);
    d.push(0.4); // frame 96
    d.run(0.9, 8);
    assert.equal(only(d.ends(), 'segment_end').endSample, 97 * F);
  });

  test('a cut inside a pause that goes on ends speech at the pause; the rest waits as pre-roll', () => {
    const d = new Driver();
    d.run(0, 10);
    d.run(0.9, 88); // frames 10..97
    d.push(0.05, 0.04, 0.03, 0.02, 0.01, 0.02, 0.03); // frames 98..104: a pause, quietest at 102
    const cut = only(d.ends(), 'segment_end');
    assert.equal(cut.reason, 'max_length');
    assert.equal(cut.endSample, 103 * F);
    assert.equal(cut.speechEndSample, 98 * F, 'speech ended where the pause began');
    assert.equal(d.starts().length, 1, 'no new segment for a pause');
    assert.equal(d.segmenter.openSegment(), null);

    d.run(0.05, 3); // frames 105..107
    const next = only(d.run(0.9, 3), 'speech_start');
    assert.equal(next.speechStartSample, 108 * F);
    assert.equal(next.startSample, 103 * F, 'pre-roll reaches back to the cut, not past it');
    d.run(0, 10);
    assertExactAudio(d.ends()[1]);
  });
});

/** A deterministic pseudo-random source, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Bursts of speech (with dips) and pauses (with blips), some bursts far longer than the cap. */
function syntheticProbabilities(seed: number, frames: number): number[] {
  const next = random(seed);
  const out: number[] = [];
  let speaking = false;
  while (out.length < frames) {
    const length = speaking ? Math.floor(3 + next() * (next() < 0.3 ? 900 : 150)) : Math.floor(1 + next() * 90);
    for (let i = 0; i < length; i++) {
      const r = next();
      out.push(speaking ? (r < 0.06 ? next() * 0.5 : 0.55 + next() * 0.45) : r < 0.03 ? 0.5 + next() * 0.5 : next() * 0.4);
    }
    speaking = !speaking;
  }
  return out.slice(0, frames);
}

describe('Segmenter: nothing lost, nothing doubled', () => {
  const configurations: [string, Partial<SegmenterOptions>][] = [
    ['defaults', {}],
    ['small cap, many cuts', SMALL],
    ['long pre-roll and tail, short endpoint', { preRollMs: 640, tailPadMs: 200, endpointMs: 200, maxSegmentS: 2, cutSearchS: 0.5 }],
    ['shrinking endpoint and early cuts on a small scale', { endpointMs: 480, minEndpointMs: 128, shrinkStartS: 0.5, shrinkEndS: 1.5, earlyCutS: 2, earlyCutPauseMs: 64, tailPadMs: 96, maxSegmentS: 3.2, cutSearchS: 0.64 }],
  ];
  for (const [name, options] of configurations) {
    test(`${name}: segments are exact, disjoint, capped, and together hold every sample of speech`, () => {
      const frames = 10 * 60 * (16_000 / F); // 10 minutes
      const probabilities = syntheticProbabilities(7, frames);
      const d = new Driver(options);
      d.push(...probabilities);
      d.end();
      const o = { ...DEFAULT_SEGMENTER_OPTIONS, ...options };
      const capSamples = Math.floor((o.maxSegmentS * 1000) / 32 + 1e-9) * F;
      const minSpeechFrames = Math.ceil(o.minSpeechMs / 32 - 1e-9);

      const ends = d.ends();
      const starts = d.starts();
      assert.ok(ends.some((e) => e.reason === 'max_length'), 'the input exercises max-length cuts');
      assert.equal(starts.length, ends.length);
      ends.forEach((end, i) => {
        assert.equal(end.segmentId, i, 'ids count up from 0');
        assert.equal(starts[i].segmentId, i);
        assert.equal(starts[i].startSample, end.startSample);
        assert.ok(end.startSample <= starts[i].speechStartSample && starts[i].speechStartSample <= end.speechEndSample && end.speechEndSample <= end.endSample);
        assert.ok(end.audio.length > 0 && end.audio.length <= capSamples, `segment ${i} is ${end.audio.length} samples`);
        assertExactAudio(end);
        if (i > 0) {
          const previous = ends[i - 1];
          assert.ok(end.startSample >= previous.endSample, `segment ${i} overlaps segment ${i - 1}`);
          if (previous.reason === 'max_length' && previous.speechEndSample === previous.endSample) {
            assert.equal(end.startSample, previous.endSample, 'a cut through speech continues exactly at the cut');
          }
        }
      });

      // All segment audio, concatenated: strictly increasing sample indices means no sample twice.
      const covered = new Uint8Array(frames * F);
      let last = -1;
      for (const end of ends) {
        for (const v of end.audio) {
          assert.ok(v > last, `sample ${v} repeated or out of order`);
          last = v;
          covered[v] = 1;
        }
      }
      // Every frame that is part of qualifying speech is in some segment: no sample lost.
      let run = 0;
      probabilities.forEach((p, k) => {
        run = p >= o.startThreshold ? run + 1 : 0;
        if (run >= minSpeechFrames) {
          for (let j = k - run + 1; j <= k; j++) {
            if (!covered[j * F] || !covered[j * F + F - 1]) assert.fail(`speech frame ${j} is in no segment`);
          }
        }
      });
    });
  }
});

describe('Segmenter: the endpoint shrinks as the segment grows', () => {
  // endpointMs 480 (15 frames) up to 1 s of segment, falling to 160 ms (5 frames) at 3 s; from 5 s a
  // 96 ms pause (3 frames) ends it. No pre-roll, so segment length = frames of speech so far.
  const SHRINK: Partial<SegmenterOptions> = { minSpeechMs: 96, preRollMs: 0, tailPadMs: 64, endpointMs: 480, minEndpointMs: 160, shrinkStartS: 1, shrinkEndS: 3, earlyCutS: 5, earlyCutPauseMs: 96, maxSegmentS: 10, cutSearchS: 2 };
  const SECOND = 31.25; // frames

  /** Frames of quiet, after `speechS` of speech, that end the segment (Infinity: 40 did not). */
  function pauseThatEnds(speechS: number): number {
    const d = new Driver(SHRINK);
    d.run(0.9, Math.round(speechS * SECOND));
    for (let quiet = 1; quiet <= 40; quiet++) if (d.push(0.05).some((e) => e.type === 'segment_end')) return quiet;
    return Infinity;
  }

  test('short segments end at endpointMs; from shrinkEndS at minEndpointMs; in between, linearly less', () => {
    assert.equal(pauseThatEnds(0.5), 15);
    assert.equal(pauseThatEnds(1), 15);
    assert.equal(pauseThatEnds(2), 10, 'half way: between 15 and 5 frames');
    assert.equal(pauseThatEnds(3), 5);
    assert.equal(pauseThatEnds(4.5), 5);
  });

  test('from earlyCutS on, a short breath ends the segment: with reason silence, long before the cap', () => {
    assert.equal(pauseThatEnds(5.2), 3);
    const d = new Driver(SHRINK);
    d.run(0.9, Math.round(6 * SECOND));
    const [end] = d.run(0.05, 3).filter((e): e is End => e.type === 'segment_end');
    assert.ok(end, 'a 96 ms breath after 6 s of speech ends the segment');
    assert.equal(end.reason, 'silence');
    assert.equal(end.speechEndSample, Math.round(6 * SECOND) * F, 'speech ended where the breath began');
    assertExactAudio(end);
  });

  test('a pause is judged by the length where it began; a frame of speech inside it starts a new pause', () => {
    const d = new Driver(SHRINK);
    d.run(0.9, Math.round(2.9 * SECOND)); // just under shrinkEndS: this pause needs 5–6 frames
    const events = d.run(0.05, 4);
    assert.ok(!events.some((e) => e.type === 'segment_end'), '4 quiet frames do not end a 2.9 s segment');
    d.push(0.9); // speech again: the segment is now over 3 s, its next pause needs 5 frames
    assert.equal(d.run(0.05, 4).filter((e) => e.type === 'segment_end').length, 0);
    assert.equal(d.run(0.05, 1).filter((e) => e.type === 'segment_end').length, 1);
  });

  test('a breath shorter than the shrunk endpoint does not end speech: words around it stay in one segment', () => {
    const d = new Driver(SHRINK);
    d.run(0.9, Math.round(4 * SECOND));
    d.run(0.05, 4); // 128 ms: a closure inside a word or a short breath
    d.run(0.9, Math.round(0.5 * SECOND));
    assert.equal(d.ends().length, 0);
  });

  test('defaults: 500 ms for a fresh segment, 200 ms once it holds 5 s, 96 ms from 7 s', () => {
    const o = DEFAULT_SEGMENTER_OPTIONS;
    assert.deepEqual([o.endpointMs, o.minEndpointMs, o.shrinkStartS, o.shrinkEndS, o.earlyCutS, o.earlyCutPauseMs], [500, 200, 2, 5, 7, 96]);
  });
});

describe('Segmenter: options', () => {
  test('inconsistent options are invalid_config with the reason', () => {
    const bad: [Partial<SegmenterOptions>, RegExp][] = [
      [{ startThreshold: 0.3, endThreshold: 0.5 }, /endThreshold/],
      [{ startThreshold: 1.5 }, /startThreshold/],
      [{ tailPadMs: 800, endpointMs: 400 }, /tailPadMs/],
      [{ maxSegmentS: 2, cutSearchS: 2 }, /maxSegmentS/],
    ];
    for (const [options, reason] of bad) {
      assert.throws(() => new Segmenter(options), (e) => isKolError(e, 'invalid_config') && reason.test(e.message), JSON.stringify(options));
    }
  });
});

describe('Segmenter with the real VAD', () => {
  test('asimov.wav (125 s of continuous speech): segments ≤ 10 s, exact and covering the speech; by default they end at breaths, and cap cuts fall in the quietest frames', async (t) => {
    const file = assetPath('audio', 'he', 'long', 'asimov.wav');
    if (!haveAssets(t, file)) return;
    const { pcm } = await decodeAudioFile(file);
    const vad = await SileroVad.load();
    const stream = vad.createStream();
    const frames = new FrameChunker().push(pcm);
    const probabilities: number[] = [];
    for (const frame of frames) probabilities.push(await stream.process(frame));
    await vad.close();

    const segment = (options: Partial<SegmenterOptions>) => {
      const segmenter = new Segmenter(options);
      const ends: End[] = [];
      frames.forEach((frame, i) => {
        for (const e of segmenter.push(frame, probabilities[i])) if (e.type === 'segment_end') ends.push(e);
      });
      for (const e of segmenter.end()) if (e.type === 'segment_end') ends.push(e);
      return ends;
    };
    // The defaults, and a fixed 500 ms endpoint (the old rule), which makes this narration reach the cap.
    const defaults = segment({});
    const fixed = segment(fixedEndpoint(500));

    for (const ends of [defaults, fixed]) {
      for (const [i, e] of ends.entries()) {
        assert.ok(e.audio.length <= 10 * 16_000, `segment ${e.segmentId} lasts ${e.audio.length / 16_000} s`);
        assert.deepEqual(e.audio, pcm.subarray(e.startSample, e.endSample), `segment ${e.segmentId} is exactly its span of the input`);
        if (i > 0) assert.ok(e.startSample >= ends[i - 1].endSample, 'segments do not overlap');
      }
      // Coverage: every frame the VAD calls speech (in runs long enough to start speech) is in a segment.
      const inSegment = (frame: number) => ends.some((e) => e.startSample <= frame * F && (frame + 1) * F <= e.endSample);
      let run = 0;
      probabilities.forEach((p, k) => {
        run = p >= 0.5 ? run + 1 : 0;
        if (run >= 3) assert.ok(inSegment(k), `speech frame ${k} (${((k * F) / 16_000).toFixed(2)} s) is in no segment`);
      });
    }
    const describeEnds = (ends: End[]) => ends.map((e) => `${((e.endSample - e.startSample) / 16_000).toFixed(1)}${e.reason === 'max_length' ? '!' : ''}`).join(' ');
    t.diagnostic(`defaults: ${defaults.length} segments (s; ! = cut at the cap): ${describeEnds(defaults)}`);
    t.diagnostic(`fixed 500 ms endpoint: ${fixed.length} segments: ${describeEnds(fixed)}`);
    assert.equal(defaults.filter((e) => e.reason === 'max_length').length, 0, 'by default every segment ends at a pause');

    const cuts = fixed.filter((e) => e.reason === 'max_length');
    assert.ok(cuts.length > 0, 'with a fixed endpoint, continuous speech reaches the cap');
    const maxFrames = Math.floor((DEFAULT_SEGMENTER_OPTIONS.maxSegmentS * 1000) / 32);
    const searchFrames = Math.ceil((DEFAULT_SEGMENTER_OPTIONS.cutSearchS * 1000) / 32);
    for (const cut of cuts) {
      const cutFrame = cut.endSample / F - 1;
      const windowStart = cut.startSample / F + maxFrames - searchFrames;
      const window = probabilities.slice(windowStart, windowStart + searchFrames);
      const mean = window.reduce((a, b) => a + b, 0) / window.length;
      const p = probabilities[cutFrame];
      assert.equal(p, Math.min(...window), 'the cut follows the quietest frame of its window');
      assert.ok(p < 0.5 && p < mean - 0.3, `the cut frame (p=${p}) is not quiet relative to its window (mean ${mean})`);
    }
  });
});
