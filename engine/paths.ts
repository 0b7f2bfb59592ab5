import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in <root>/engine). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where built engines and downloaded models are kept between runs. KOL_CACHE_DIR overrides;
 * otherwise $XDG_CACHE_HOME/kol or ~/.cache/kol, so a fresh clone reuses an earlier build.
 */
export function cacheDir(): string {
  if (process.env.KOL_CACHE_DIR) return path.resolve(process.env.KOL_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'kol');
}
