/**
 * Generated 16 kHz mono signals with no speech in them, the kind whisper invents text for: silence,
 * noise, music-like tones. Seeded, so a failure can be replayed.
 */

const RATE = 16_000;

/** mulberry32: a small seedable generator, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function silence(seconds: number): Float32Array {
  return new Float32Array(Math.round(seconds * RATE));
}

/** White noise, uniform in [-amplitude, amplitude]. */
export function whiteNoise(seconds: number, amplitude: number, seed = 1): Float32Array {
  const random = seeded(seed);
  return Float32Array.from({ length: Math.round(seconds * RATE) }, () => (random() * 2 - 1) * amplitude);
}

/**
 * A melody of gated notes, as music between speech sounds to a recogniser: 150–400 ms notes of a
 * pentatonic scale with three harmonics, a short attack and decay, and gaps of 40–150 ms.
 */
export function gatedTones(seconds: number, seed = 1): Float32Array {
  const random = seeded(seed);
  const scale = [220, 247.5, 277.2, 330, 370, 440, 495, 554.4, 660];
  const out = new Float32Array(Math.round(seconds * RATE));
  let at = 0;
  while (at < out.length) {
    const length = Math.round((0.15 + random() * 0.25) * RATE);
    const pitch = scale[Math.floor(random() * scale.length)];
    const attack = 0.01 * RATE;
    for (let i = 0; i < length && at + i < out.length; i++) {
      const envelope = Math.min(1, i / attack) * Math.exp((-3 * i) / length);
      const t = i / RATE;
      out[at + i] = 0.3 * envelope * (Math.sin(2 * Math.PI * pitch * t) + 0.5 * Math.sin(4 * Math.PI * pitch * t) + 0.25 * Math.sin(6 * Math.PI * pitch * t));
    }
    at += length + Math.round((0.04 + random() * 0.11) * RATE);
  }
  return out;
}

/**
 * Another melody: notes of equal length (C major, C4 to C5) gated by a short silence. Voice activity
 * detectors take parts of it for speech, and whisper answers those with non-speech markers
 * ("*תאגר*"), loops or invented words.
 */
/** C major, C4 to C5. */
const SCALE_HZ = [261.63, 293.66, 329.63, 349.23, 392.0, 440.0, 493.88, 523.25];

export function evenNotes(seconds: number, options: { seed?: number; noteMs?: number; gapMs?: number } = {}): Float32Array {
  const { seed = 1, noteMs = 250, gapMs = 50 } = options;
  const random = seeded(seed);
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

export function concatAudio(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
