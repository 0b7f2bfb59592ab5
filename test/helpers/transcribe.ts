import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../engine/paths.js';
import { REAL_MODEL } from '../../corpus/assets.js';

/** What one `kol transcribe` run left: its exit code and everything it printed. */
export interface TranscribeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `kol transcribe ARGS…` on the real model, in a process of its own, exactly as a user runs it. */
export function runKolTranscribe(args: string[]): Promise<TranscribeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'kol.js'), 'transcribe', '--model', REAL_MODEL, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, KOL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * `kol transcribe FILE…` on the real model, in a process of its own, as a user runs it: the
 * offline transcripts (one per file, in order) that the streaming clients are measured against.
 *
 * Its own process on purpose: finals are decoded with temperature fallback, whose sampling draws
 * on each whisper-server's random state, so the same audio can come out differently depending on
 * what that worker decoded before. Keeping the baseline off the server's workers leaves them fresh
 * for the client under test, and both sides reproducible. Asynchronous on purpose too: the server
 * under test usually lives in the test's own process.
 */
export async function kolTranscribe(...files: string[]): Promise<string[]> {
  const { code, stdout, stderr } = await runKolTranscribe(['--threads', '1', '--json', ...files]);
  if (code !== 0) throw new Error(`kol transcribe exited with ${code}: ${stderr}`);
  return stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { text: string }).text);
}
