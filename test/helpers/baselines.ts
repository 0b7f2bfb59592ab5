/**
 * Whole-clip offline transcripts, the baselines that streaming tests measure against, decoded once
 * per `npm test` run: the real model's tests (engine/whisper/pool.test.ts) record what they decode,
 * and a later test file that needs the same clip, decoded the same way, reads it instead of spending
 * a full-window beam search on it again (seconds per clip on 2 cores).
 *
 * scripts/test.js sets KOL_TEST_BASELINES to a fresh folder for the run and removes it afterwards.
 * Without it (one test file run by hand) nothing is remembered and every baseline is decoded.
 * The key is all that decides the text: engine binary, model, threads, flash attention, request
 * options and the audio itself.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TranscribeOptions } from '../../engine/whisper/types.js';

/** How the workers that decode a baseline were started. */
export interface WorkerSetup {
  binary: string;
  model: string;
  threads: number;
  flashAttention: boolean;
}

function fileFor(setup: WorkerSetup, pcm: Float32Array, options: TranscribeOptions): string | null {
  const dir = process.env.KOL_TEST_BASELINES;
  if (!dir) return null;
  const hash = createHash('sha256').update(JSON.stringify({ setup, options })).update(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength)).digest('hex');
  return path.join(dir, `${hash.slice(0, 32)}.txt`);
}

/** Records a transcript just decoded, for later test files of this run. */
export function recordBaseline(setup: WorkerSetup, pcm: Float32Array, options: TranscribeOptions, text: string): void {
  const file = fileFor(setup, pcm, options);
  if (!file) return;
  // Written whole, then renamed: a test file running beside this one never reads half of it.
  fs.writeFileSync(`${file}.${process.pid}`, text);
  fs.renameSync(`${file}.${process.pid}`, file);
}

/** The recorded transcript when this run has one, else `decode()`'s (then recorded). */
export async function baseline(setup: WorkerSetup, pcm: Float32Array, options: TranscribeOptions, decode: () => Promise<string>): Promise<string> {
  const file = fileFor(setup, pcm, options);
  if (file && fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
  const text = await decode();
  recordBaseline(setup, pcm, options, text);
  return text;
}
