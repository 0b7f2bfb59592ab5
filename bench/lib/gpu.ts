/**
 * The GPU side of the bench: nvidia-smi sampling during a run, the random-weight large-v3-turbo model
 * (../shared/tools/make_random_ggml.py: right shape and speed, nonsense text), and what one decode costs.
 *
 * Token budget: whisper-server takes no per-request token limit. whisper.cpp has `max_tokens`
 * (whisper_full_params), but examples/server/server.cpp reads neither a `max_tokens` form field nor a
 * flag for it (its fields: offset_t, offset_n, duration, max_context, max_len — characters per
 * segment, not tokens —, best_of, beam_size, audio_ctx, thresholds, temperature, …). A random model
 * rarely emits end-of-text, so each window decodes to whisper's own cap, n_text_ctx/2 − 4 = 220
 * tokens: in effect a fixed, worst-case budget. `decodeBudget` measures it with temperature fallback
 * off and reports the tokens actually decoded, so the per-token cost is known either way.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../engine/paths.js';
import { inferenceFields } from '../../engine/whisper/client.js';
import { encodeWav16k } from '../../engine/audio/wav.js';
import { createLocalWorkers } from '../../engine/whisper/local-workers.js';
import { benchEngine } from './engine.js';
import { dist, type Dist } from './stats.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';
import type { Logger } from '../../engine/log.js';

export const RANDOM_TURBO = path.join(REPO_ROOT, 'bench', '.venv', 'models', 'ggml-large-v3-turbo-random.bin');

export function hasNvidiaSmi(): boolean {
  try {
    execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Samples GPU utilisation (%) and memory used (MiB) every 500 ms; null samples where there is no nvidia-smi. */
export function gpuSampler(): { start(): void; stop(): { utilPct: Dist; memMiB: Dist } | null } {
  let child: ReturnType<typeof spawn> | null = null;
  let util: number[] = [];
  let mem: number[] = [];
  return {
    start() {
      util = [];
      mem = [];
      if (!hasNvidiaSmi()) return;
      child = spawn('nvidia-smi', ['--query-gpu=utilization.gpu,memory.used', '--format=csv,noheader,nounits', '-lms', '500'], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        for (const line of d.split('\n')) {
          const [u, m] = line.split(',').map((x) => Number(x.trim()));
          if (Number.isFinite(u) && Number.isFinite(m)) {
            util.push(u);
            mem.push(m);
          }
        }
      });
    },
    stop() {
      if (!child) return null;
      child.kill('SIGTERM');
      child = null;
      return { utilPct: dist(util), memMiB: dist(mem) };
    },
  };
}

/** The random-weight large-v3-turbo, made once (needs numpy: bench/.venv from setup.sh, else python3's). */
export function ensureRandomTurbo(): string {
  if (fs.existsSync(RANDOM_TURBO)) return RANDOM_TURBO;
  fs.mkdirSync(path.dirname(RANDOM_TURBO), { recursive: true });
  const venvPython = path.join(REPO_ROOT, 'bench', '.venv', 'bin', 'python');
  const python = fs.existsSync(venvPython) ? venvPython : 'python3';
  const tool = path.join(REPO_ROOT, '..', 'shared', 'tools', 'make_random_ggml.py');
  process.stderr.write(`bench: writing ${RANDOM_TURBO} (random weights, large-v3-turbo shape; takes a minute)\n`);
  execFileSync(python, [tool, `${RANDOM_TURBO}.tmp`, 'large-v3-turbo'], { stdio: 'inherit' });
  fs.renameSync(`${RANDOM_TURBO}.tmp`, RANDOM_TURBO);
  return RANDOM_TURBO;
}

export interface DecodeBudgetRow {
  audioS: number;
  beam: number;
  ms: Dist;
  tokens: Dist;
  msPerToken: number;
}

/** Direct requests to one whisper-server: time and tokens decoded per request, temperature fallback off. */
export async function decodeBudget(options: { model: string; gpu: boolean; threads?: number; repeats?: number; logger: Logger }): Promise<DecodeBudgetRow[]> {
  const engine = await benchEngine(options.gpu, options.logger);
  const [worker] = createLocalWorkers({ binary: engine.binary, model: options.model, count: 1, threads: options.threads, useGpu: options.gpu, logger: options.logger });
  await worker.start();
  const rows: DecodeBudgetRow[] = [];
  try {
    for (const audioS of [2, 5, 10]) {
      // Noise-like audio: a random model does not care what it hears.
      const pcm = Float32Array.from({ length: audioS * SAMPLE_RATE }, (_, i) => 0.1 * Math.sin(i / 7) * Math.sin(i / 1300));
      const wav = new Blob([new Uint8Array(encodeWav16k(pcm))], { type: 'audio/wav' });
      for (const beam of [1, 5]) {
        const fields = inferenceFields(pcm.length, { beamSize: beam, temperatureFallback: false });
        const times: number[] = [];
        const tokens: number[] = [];
        for (let r = 0; r < (options.repeats ?? 3) + 1; r++) {
          const form = new FormData();
          form.append('file', wav, 'audio.wav');
          for (const [k, v] of Object.entries(fields)) form.append(k, v);
          const t0 = performance.now();
          const res = await fetch(new URL('/inference', worker.baseUrl), { method: 'POST', body: form });
          const json = (await res.json()) as { segments?: Array<{ words?: unknown[]; tokens?: unknown[] }> };
          const ms = performance.now() - t0;
          if (r === 0) continue; // warm-up
          times.push(ms);
          tokens.push((json.segments ?? []).reduce((sum, s) => sum + (s.tokens?.length ?? s.words?.length ?? 0), 0));
        }
        const t = dist(times);
        const k = dist(tokens);
        rows.push({ audioS, beam, ms: t, tokens: k, msPerToken: k.mean > 0 ? t.mean / k.mean : NaN });
      }
    }
  } finally {
    await worker.stop();
  }
  return rows;
}
