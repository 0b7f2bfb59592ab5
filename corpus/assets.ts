/**
 * The shared corpus the tests and the benchmarks both run on: where it lies, its models, and its
 * clips with their reference transcripts. Owned by neither; a test's skip-when-missing is in
 * test/helpers/assets.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../engine/paths.js';

/** The shared test data: KOL_ASSETS, falling back to ../shared/assets beside the repository. */
const ASSETS_DIR = path.resolve(process.env.KOL_ASSETS ?? path.join(REPO_ROOT, '..', 'shared', 'assets'));

export const REAL_MODEL = path.join(ASSETS_DIR, 'models', 'ggml-base-q8_0.bin');

export function assetPath(...parts: string[]): string {
  return path.join(ASSETS_DIR, ...parts);
}

export interface Clip {
  name: string;
  wav: string;
  /** Reference transcript, or null where the clip has none (he/long). */
  reference: string | null;
}

/** The clips of one folder of the shared audio (e.g. "he", "en"), sorted by name. */
export function clips(language: string): Clip[] {
  const dir = assetPath('audio', language);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.wav'))
    .sort()
    .map((f) => {
      const txt = path.join(dir, f.replace(/\.wav$/, '.txt'));
      return {
        name: f.replace(/\.wav$/, ''),
        wav: path.join(dir, f),
        reference: fs.existsSync(txt) ? fs.readFileSync(txt, 'utf8').trim() : null,
      };
    });
}
