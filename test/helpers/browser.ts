import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { REPO_ROOT } from '../../engine/paths.js';

/** Debian's Chromium (scripts/install-test-deps.sh installs it); KOL_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env.KOL_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests leave their screenshots (gitignored). */
export const ARTIFACTS_DIR = path.join(REPO_ROOT, 'test-artifacts');

/** True when Chromium is there; otherwise says so loudly and skips: a browser test never passes without a browser. */
export function haveChromium(t: TestContext): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  const why = `CHROMIUM MISSING at ${CHROMIUM}: browser test not run (install it with scripts/install-test-deps.sh, or set KOL_CHROMIUM)`;
  process.stderr.write(`\n!!! ${why}\n`);
  t.skip(why);
  return false;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Chromium, headless, in a fresh profile; with `fakeAudioWav`, a fake microphone that plays it (in
 * a loop) and is granted without asking. `args`: more command-line switches.
 */
export async function launchChromium(options: { fakeAudioWav?: string; args?: string[] } = {}): Promise<Browser> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  if (options.fakeAudioWav) {
    args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${options.fakeAudioWav}`);
  }
  args.push(...(options.args ?? []));
  // launchPersistentContext passes --user-data-dir itself: the fresh profile made above.
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args, viewport: { width: 1100, height: 760 } });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
