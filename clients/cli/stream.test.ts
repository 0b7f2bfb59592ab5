/**
 * `kol stream` as a user runs it: the real command in a child process against a real server.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeAudioFile, encodeWav16k } from '../../engine/audio/wav.js';
import { REPO_ROOT } from '../../engine/paths.js';
import { wordErrorRate } from '../../engine/wer.js';
import type { RunningServer } from '../../server/app.js';
import { floatsToS16le } from '../../engine/audio/format.js';
import { streamUrl } from '../../cli/stream.js';
import { refusedPort } from '../../test/helpers/file-server.js';
import { assetPath, REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { startTestServer } from '../../test/helpers/server.js';
import { recordingAssets, speechRecording } from '../../test/helpers/recording.js';
import { kolTranscribe } from '../../test/helpers/transcribe.js';

const CLIP = assetPath('audio', 'he', 'Hashlama112_0024.wav');
const SHORT_CLIP = assetPath('audio', 'he', 'Hashlama117_0009.wav');
const KEY = 'cli-test-key-1';

let server: RunningServer;
let tmp: string;

before(async () => {
  server = await startTestServer({ apiKeys: [KEY] });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-stream-'));
});
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kol(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'kol.js'), 'stream', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, KOL_TOKEN: KEY, KOL_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('streams a WAV and prints each final on its own line, as well as `kol transcribe` hears it', { timeout: 90_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, ...recordingAssets())) return;
  // The measured clips one after another in one file (see MEASURED_CLIPS), each its own utterance.
  const recording = await speechRecording();
  const wav = path.join(tmp, 'recording.wav');
  fs.writeFileSync(wav, encodeWav16k(recording.pcm));
  const [run, baseline] = await Promise.all([kol([wav, '--url', server.url, '--speed', '4']), kolTranscribe(...recording.wavs)]);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.ok(lines.length >= recording.wavs.length, 'a final line per utterance');
  assert.doesNotMatch(run.stdout, /\x1b/, 'no terminal codes when stdout is not a terminal');
  const streamed = wordErrorRate(recording.reference, lines.join(' ')).wer;
  const offline = wordErrorRate(recording.reference, baseline.join(' ')).wer;
  t.diagnostic(`kol stream WER ${streamed.toFixed(3)}: ${lines.join(' | ')}`);
  t.diagnostic(`kol transcribe WER ${offline.toFixed(3)}: ${baseline.join(' | ')}`);
  assert.ok(streamed <= offline + 0.05, `kol stream WER ${streamed} vs kol transcribe ${offline}`);
});

test('--json prints the raw server messages, one per line; a 48 kHz stereo file works too', { timeout: 60_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, SHORT_CLIP)) return;
  // The clip at 48 kHz in stereo: any rate and channel count is decoded and sent as 16 kHz mono.
  const clip = await decodeAudioFile(SHORT_CLIP);
  const wav48 = path.join(tmp, 'stereo-48k.wav');
  fs.writeFileSync(wav48, stereoWav48k(clip.pcm));
  const run = await kol([wav48, '--url', server.url.replace('ws://', 'http://'), '--speed', 'max', '--json', '--room', 'cli-room']);
  assert.equal(run.code, 0, run.stderr);
  const messages = run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; text?: string; config?: { room: string | null } });
  const types = messages.map((m) => m.type);
  assert.equal(types[0], 'ready');
  assert.equal(types.at(-1), 'closed');
  assert.ok(types.includes('final'));
  assert.equal(messages.filter((m) => m.type === 'ready').at(-1)?.config?.room, 'cli-room', 'the room went in the config');
  const text = messages
    .filter((m) => m.type === 'final')
    .map((m) => m.text)
    .join(' ');
  assert.ok(text.trim().length > 0, 'the 48 kHz stereo file was transcribed');
});

test('on a terminal the partial is redrawn in place and cleared before each final', { timeout: 60_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, CLIP)) return;
  if (spawnSync('script', ['--version']).status !== 0) {
    t.skip('util-linux `script` (for a pseudo-terminal) is not installed');
    return;
  }
  const command = [process.execPath, path.join(REPO_ROOT, 'bin', 'kol.js'), 'stream', CLIP, '--url', server.url, '--speed', '2'].map((a) => `'${a}'`).join(' ');
  // Not spawnSync: the server lives in this process and must keep answering.
  const run = await new Promise<Run>((resolve) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { ...process.env, KOL_TOKEN: KEY, KOL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /\r\x1b\[2K\x1b\[2m[^\r\n]+\x1b\[0m/, 'a dim partial, drawn over the line');
  assert.match(run.stdout, /\r\x1b\[2K[^\x1b\r\n]+\r?\n/, 'a final on a line of its own, after the partial is cleared');
  assert.match(run.stdout, /segment\(s\), [\d.]+ s of audio, final latency median \d+ ms/, 'a summary at the end');
});

test('--mic records through arecord (here a stand-in that plays a file) until it stops', { timeout: 60_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, SHORT_CLIP)) return;
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const raw = path.join(tmp, 'mic.raw');
  fs.writeFileSync(raw, floatsToS16le((await decodeAudioFile(SHORT_CLIP)).pcm));
  const argsFile = path.join(tmp, 'arecord-args');
  fs.writeFileSync(path.join(bin, 'arecord'), `#!/bin/sh\necho "$@" > '${argsFile}'\nexec cat '${raw}'\n`, { mode: 0o755 });
  const run = await kol(['--mic', '--device', 'hw:1', '--url', server.url], { PATH: `${bin}:/usr/bin:/bin` });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(fs.readFileSync(argsFile, 'utf8').trim(), '-q -t raw -f S16_LE -r 16000 -c 1 -D hw:1');
  assert.ok(run.stdout.trim().length > 0, 'the recorded speech was transcribed');
});

test('--mic without arecord or sox says what to install', async () => {
  const empty = path.join(tmp, 'empty-bin');
  fs.mkdirSync(empty, { recursive: true });
  const run = await kol(['--mic'], { PATH: empty });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /needs arecord or sox/);
  assert.match(run.stderr, /alsa-utils/);
  assert.match(run.stderr, /install sox/);
});

test('clear messages for a server that is not there, a missing key, and bad arguments', { timeout: 60_000 }, async (t) => {
  if (!haveAssets(t, SHORT_CLIP)) return;
  const port = await refusedPort();
  const refused = await kol([SHORT_CLIP, '--url', `ws://127.0.0.1:${port}`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /connection refused\. Is `kol serve` running there\?/);

  const noKey = await kol([SHORT_CLIP, '--url', server.url], { KOL_TOKEN: undefined });
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /needs an API key: pass --token KEY or set KOL_TOKEN/);

  const nothing = await kol(['--url', server.url]);
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /give an audio file to stream, or --mic/);
  const badSpeed = await kol([SHORT_CLIP, '--speed', 'fast']);
  assert.equal(badSpeed.code, 1);
  assert.match(badSpeed.stderr, /--speed must be a number above 0/);
  const missing = await kol([path.join(tmp, 'nope.wav'), '--url', server.url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.wav: the file could not be read/);
});

test('server URLs: /v1/stream is added to a bare address, http becomes ws', () => {
  assert.equal(streamUrl('ws://host:8009'), 'ws://host:8009/v1/stream');
  assert.equal(streamUrl('host:8009'), 'ws://host:8009/v1/stream');
  assert.equal(streamUrl('https://asr.example/'), 'wss://asr.example/v1/stream');
  assert.equal(streamUrl('ws://host/kol/v1/stream?language=en'), 'ws://host/kol/v1/stream?language=en');
  assert.throws(() => streamUrl('ftp://host'), /ws:\/\/ or wss:\/\//);
});

/** 16 kHz mono → a 48 kHz stereo 16-bit WAV (linear interpolation is plenty for this). */
function stereoWav48k(pcm: Float32Array): Buffer {
  const frames = pcm.length * 3;
  const data = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    const pos = i / 3;
    const a = pcm[Math.floor(pos)] ?? 0;
    const b = pcm[Math.min(pcm.length - 1, Math.floor(pos) + 1)] ?? 0;
    const v = Math.round(Math.max(-1, Math.min(1, a + (b - a) * (pos - Math.floor(pos)))) * 32767);
    data.writeInt16LE(v, i * 4);
    data.writeInt16LE(v, i * 4 + 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(2, 22);
  header.writeUInt32LE(48000, 24);
  header.writeUInt32LE(48000 * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
