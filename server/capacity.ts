/**
 * Admission by capacity: how many real-time speakers this server's final workers sustain, either
 * configured (`capacity`) or measured at start by timing calibration requests on the warm pool.
 * The gateway refuses a streaming session beyond it (503 server_at_capacity) instead of letting every
 * session fall behind.
 */
import { KolError, toKolError } from '../engine/errors.js';
import type { Logger } from '../engine/log.js';
import { DEGRADED_DECODING } from '../engine/scheduler.js';
import { SAMPLE_RATE } from '../engine/audio/format.js';
import type { TranscribeOptions, Transcriber } from '../engine/whisper/types.js';
import type { ServerConfig } from './config.js';

/** Share of the workers' time admitted sessions may fill: the rest absorbs bursts (two people finishing a sentence at once). */
export const UTILISATION_TARGET = 0.8;
/** A speaker talking continuously produces about one final per this many seconds of speech (segments of 2–8 s, breaths between). */
export const SPEECH_SECONDS_PER_FINAL = 4;
/** Partials re-decode the open segment (greedy, window sized to the audio): about 30 % more work on top of each final. */
export const PARTIAL_OVERHEAD = 0.3;
/** Length of the calibration audio: one final's worth of speech. */
export const CALIBRATION_SECONDS = SPEECH_SECONDS_PER_FINAL;
/** How long a refused client is asked to wait before trying again (Retry-After, seconds). */
export const RETRY_AFTER_SECONDS = 5;

export interface CapacityInputs {
  /** Requests the final pool runs at once without slowing each other (see poolParallelism). */
  parallelism: number;
  /** Seconds one final of SPEECH_SECONDS_PER_FINAL seconds of speech takes on a worker. */
  finalCostSeconds: number;
}

/**
 * Concurrent real-time speakers the workers sustain: each speaker asks for
 * finalCost × (1 + partial overhead) seconds of worker time per SPEECH_SECONDS_PER_FINAL seconds of
 * speech, and the pool offers `parallelism` seconds per second, of which UTILISATION_TARGET is used.
 */
export function capacityFor({ parallelism, finalCostSeconds }: CapacityInputs): number {
  if (!(finalCostSeconds > 0) || !(parallelism > 0)) throw new RangeError(`capacityFor needs a positive cost and parallelism, got ${finalCostSeconds} s and ${parallelism}`);
  return Math.floor((UTILISATION_TARGET * parallelism * SPEECH_SECONDS_PER_FINAL) / (finalCostSeconds * (1 + PARTIAL_OVERHEAD)));
}

/**
 * Requests the final pool runs in parallel. Local CPU workers share the same cores (each uses all of
 * them by default), so together they count once; a local GPU worker or a remote worker brings its
 * own hardware, so each counts.
 */
export function poolParallelism(config: Pick<ServerConfig, 'workers' | 'workerUrls'>, gpu: boolean): number {
  const local = gpu ? config.workers : Math.min(config.workers, 1);
  return local + config.workerUrls.length;
}

/**
 * CALIBRATION_SECONDS of synthetic, speech-like audio: voiced syllables at about 4 per second (a
 * glottal pulse train at a drifting 110–190 Hz pitch, shaped by three vowel formants that change each
 * syllable), short noise bursts for consonants, and a 0.3 s breath in the middle. Silence or a steady
 * tone would let the decoder stop after a token or two and under-measure the cost; on this the model
 * decodes a pseudo-word per syllable group, as many tokens as a sentence. Seeded, so every start
 * measures the same audio. Measured on base q8_0 (a warm worker on a busy 2-core machine, beam 5):
 * 2.7–3.1 s with the window sized to the audio against 1.5–3.1 s for 4 s of two real Hebrew clips, and
 * 15–20 s against 12–22 s at the full window. Other seeds decoded up to twice as long (more repeats).
 */
export function calibrationAudio(seconds = CALIBRATION_SECONDS, seed = 1): Float32Array {
  const rate = SAMPLE_RATE;
  const out = new Float32Array(Math.round(seconds * rate));
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: deterministic, no dependency.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  // (F1, F2, F3) of a few vowels, Hz.
  const vowels = [
    [730, 1090, 2440],
    [530, 1840, 2480],
    [270, 2290, 3010],
    [570, 840, 2410],
    [300, 870, 2240],
  ];
  const breathStart = seconds / 2 - 0.15;
  let t = 0.1;
  let phase = 0;
  while (t < seconds - 0.1) {
    if (t >= breathStart && t < breathStart + 0.3) {
      t = breathStart + 0.3;
      continue;
    }
    const consonant = 0.03 + random() * 0.05;
    const vowel = 0.1 + random() * 0.12;
    const [f1, f2, f3] = vowels[Math.floor(random() * vowels.length)];
    const pitch = 110 + random() * 80;
    const begin = Math.round(t * rate);
    // Consonant: a short burst of noise.
    const consonantEnd = Math.min(out.length, begin + Math.round(consonant * rate));
    for (let i = begin; i < consonantEnd; i++) out[i] += (random() * 2 - 1) * 0.08;
    // Vowel: pulses through three resonators, under a raised-cosine envelope.
    const length = Math.round(vowel * rate);
    const resonators = [f1, f2, f3].map((f, k) => resonator(f, 80 + 40 * k, rate));
    for (let n = 0; n < length && consonantEnd + n < out.length; n++) {
      const glide = pitch * (1 + 0.1 * Math.sin((Math.PI * n) / length));
      phase += glide / rate;
      const pulse = phase >= 1 ? 1 : 0;
      if (phase >= 1) phase -= 1;
      let sample = 0;
      for (let k = 0; k < 3; k++) sample += resonators[k](pulse) / (k + 1);
      const envelope = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / length);
      out[consonantEnd + n] += sample * envelope;
    }
    t += consonant + vowel + 0.02 + random() * 0.04;
  }
  // Normalise to a speaking level (peak 0.5).
  let peak = 0;
  for (const v of out) peak = Math.max(peak, Math.abs(v));
  if (peak > 0) for (let i = 0; i < out.length; i++) out[i] *= 0.5 / peak;
  return out;
}

/** A two-pole resonator at `frequency` Hz with `bandwidth` Hz: the shape of one formant. */
function resonator(frequency: number, bandwidth: number, rate: number): (x: number) => number {
  const r = Math.exp((-Math.PI * bandwidth) / rate);
  const a1 = 2 * r * Math.cos((2 * Math.PI * frequency) / rate);
  const a2 = -r * r;
  let y1 = 0;
  let y2 = 0;
  return (x) => {
    const y = (1 - r) * x + a1 * y1 + a2 * y2;
    y2 = y1;
    y1 = y;
    return y;
  };
}

export interface CapacityMeasurement {
  /** Seconds a final took at the server's own decoding settings. */
  fullCostSeconds: number;
  /** Seconds a final took at DEGRADED_FINAL_OPTIONS. */
  degradedCostSeconds: number;
  parallelism: number;
  /** Speakers sustained with every final at full accuracy. */
  fullAccuracyStreams: number;
  /** Speakers admitted: sustained when finals are decoded the cheaper way under load (at least 1). */
  streams: number;
}

/** Seconds one calibration request takes on the pool. */
async function timeFinal(pool: Transcriber, pcm: Float32Array, options: TranscribeOptions): Promise<number> {
  const started = performance.now();
  await pool.transcribe(pcm, options);
  return (performance.now() - started) / 1000;
}

/**
 * Measures the capacity on a started pool. A first, untimed request warms the worker: a fresh
 * whisper-server's first inference allocates its buffers and faults the model in, and took from 1.5 to
 * 30 times longer than the next on this project's 2-core machine. Then one final at the server's own
 * settings and two at the degraded ones, the fastest of which counts (a busy neighbour only ever
 * slows a run down). Without temperature fallback: babble, unlike speech, can fail whisper's entropy
 * check and would then be decoded up to six times.
 */
export async function measureCapacity(pool: Transcriber, config: ServerConfig, gpu: boolean): Promise<CapacityMeasurement> {
  const pcm = calibrationAudio();
  const common: TranscribeOptions = { language: config.language, temperatureFallback: false };
  const full: TranscribeOptions = { ...common, beamSize: config.finalBeamSize, audioCtx: config.finalAudioCtx === 'full' ? undefined : config.finalAudioCtx };
  // How the scheduler decodes a final when finals queue (engine/scheduler.ts): under load this is the
  // cost that counts, so capacity is measured at it.
  const degraded: TranscribeOptions = { ...common, ...DEGRADED_DECODING };
  await pool.transcribe(pcm, degraded);
  const fullCostSeconds = await timeFinal(pool, pcm, full);
  const degradedCostSeconds = Math.min(await timeFinal(pool, pcm, degraded), await timeFinal(pool, pcm, degraded));
  const parallelism = poolParallelism(config, gpu);
  const fullAccuracyStreams = capacityFor({ parallelism, finalCostSeconds: fullCostSeconds });
  // The server decodes the cheaper way when finals queue (unless degradeFinals is off), so that is the cost at capacity.
  const costAtLoad = config.degradeFinals ? Math.min(fullCostSeconds, degradedCostSeconds) : fullCostSeconds;
  const streams = Math.max(1, capacityFor({ parallelism, finalCostSeconds: costAtLoad }));
  return { fullCostSeconds, degradedCostSeconds, parallelism, fullAccuracyStreams, streams };
}

/**
 * The number of streaming sessions to admit: the configured `capacity`, or (0, auto) the measured one.
 * Null when auto measurement failed: then only maxSessions limits admission.
 */
export async function resolveCapacity(pool: Transcriber, config: ServerConfig, gpu: boolean, logger: Logger): Promise<{ streams: number | null; measured: CapacityMeasurement | null }> {
  if (config.capacity > 0) {
    logger.info({ capacity: config.capacity }, 'admission capacity: configured');
    return { streams: config.capacity, measured: null };
  }
  try {
    const measured = await measureCapacity(pool, config, gpu);
    const round = (s: number) => Math.round(s * 1000) / 1000;
    logger.info(
      {
        capacity: measured.streams,
        fullAccuracyStreams: measured.fullAccuracyStreams,
        fullCostSeconds: round(measured.fullCostSeconds),
        degradedCostSeconds: round(measured.degradedCostSeconds),
        parallelism: measured.parallelism,
        calibrationSeconds: CALIBRATION_SECONDS,
        utilisationTarget: UTILISATION_TARGET,
      },
      'admission capacity: measured',
    );
    if (measured.fullAccuracyStreams < 1) logger.warn('these workers cannot keep up with even one speaker at full accuracy; finals will be decoded the cheaper way or late');
    return { streams: measured.streams, measured };
  } catch (err) {
    const e = toKolError(err);
    logger.warn({ code: e.code, err: e.message }, 'admission capacity could not be measured; only maxSessions limits sessions (set capacity to fix a number)');
    return { streams: null, measured: null };
  }
}

/** The error a session beyond capacity is refused with. */
export function atCapacityError(streams: number): KolError {
  return new KolError('server_at_capacity', `The server is at its capacity of ${streams} real-time stream${streams === 1 ? '' : 's'}; try again in ${RETRY_AFTER_SECONDS} s.`);
}
