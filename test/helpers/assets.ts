import fs from 'node:fs';
import type { TestContext } from 'node:test';

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
