import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO_ROOT } from '../engine/paths.js';

/** The shared test data: KOL_ASSETS, falling back to ../shared/assets beside the repository. */
export const ASSETS_DIR = path.resolve(process.env.KOL_ASSETS ?? path.join(REPO_ROOT, '..', 'shared', 'assets'));

export const REAL_MODEL = path.join(ASSETS_DIR, 'models', 'ggml-base-q8_0.bin');
export const WEIGHTLESS_MODEL = path.join(ASSETS_DIR, 'models', 'for-tests-ggml-tiny.bin');

export function assetPath(...parts: string[]): string {
  return path.join(ASSETS_DIR, ...parts);
}

/**
 * Returns true when every named asset exists. Otherwise says so loudly on stderr and skips the test:
 * a test that needs real data must never pass silently without it.
 */
export function haveAssets(t: TestContext, ...files: string[]): boolean {
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return true;
  const why = `MISSING TEST ASSETS (set KOL_ASSETS): ${missing.join(', ')}`;
  process.stderr.write(`\n!!! ${why}\n`);
  t.skip(why);
  return false;
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
