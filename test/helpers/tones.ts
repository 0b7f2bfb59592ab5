/**
 * Music-like audio for tests of what must not become text: a seeded random melody of gated notes
 * (a tone with two harmonics, then a short silence), mono float32 at 16 kHz. Voice activity detectors
 * take parts of it for speech, and whisper answers those with non-speech markers ("*תאגר*"), loops or
 * invented words.
 */
const RATE = 16_000;
/** C major, C4 to C5. */
const SCALE_HZ = [261.63, 293.66, 329.63, 349.23, 392.0, 440.0, 493.88, 523.25];

export function gatedTones(seconds: number, options: { seed?: number; noteMs?: number; gapMs?: number } = {}): Float32Array {
  const { seed = 1, noteMs = 250, gapMs = 50 } = options;
  const random = mulberry32(seed);
  const out = new Float32Array(Math.round(seconds * RATE));
  const noteSamples = Math.floor((noteMs * RATE) / 1000);
  const sounding = noteSamples - Math.floor((gapMs * RATE) / 1000);
  const ramp = RATE / 100; // 10 ms fade in and out, so the gate does not click
  for (let at = 0; at < out.length; at += noteSamples) {
    const hz = SCALE_HZ[Math.floor(random() * SCALE_HZ.length)] * (random() < 0.3 ? 0.5 : 1);
    for (let k = 0; k < sounding && at + k < out.length; k++) {
      const phase = (2 * Math.PI * hz * k) / RATE;
      const envelope = Math.min(1, k / ramp, (sounding - k) / ramp);
      out[at + k] = (0.5 * Math.sin(phase) + 0.25 * Math.sin(2 * phase) + 0.12 * Math.sin(3 * phase)) * envelope * 0.6;
    }
  }
  return out;
}

/** A small seedable generator (mulberry32), so that a failing run can be replayed exactly. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
