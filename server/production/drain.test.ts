/**
 * Graceful shutdown of a real `node bin/kol.js serve` process: SIGTERM right after the audio ends
 * (before its final) must still deliver that final, preceded by a `server_shutting_down` notice and
 * followed by `closed` and close 1001, and the process exits 0 with its whisper-servers gone. A second
 * SIGTERM exits at once. The info-level log of the run must hold no transcript text.
 */
// test-cores: 1 (one kol serve at a time, mostly one session: measured 1.0 cores; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { decodeAudioFile } from '../../engine/audio/wav.js';
import { assetPath, REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { childPids, cleanEnv, clipS16, heClip, KolProcess, processState, RecordingClient, sleep, toS16, tryUpgrade, waitUntil } from '../../test/helpers/production.js';

type Final = { type: 'final'; text: string; end: number };

async function startServe(env: Record<string, string> = {}): Promise<{ kol: KolProcess; url: string }> {
  const kol = new KolProcess(['serve'], cleanEnv({ KOL_MODEL: REAL_MODEL, KOL_PORT: '0', KOL_WORKERS: '2', KOL_THREADS: '1', KOL_GPU: 'off', KOL_CAPACITY: '2', ...env }));
  const listening = await kol.waitForLog('kol is listening');
  return { kol, url: String(listening.url) };
}

/** Streams `audio` at 2× real time (in 100 ms frames) and resolves when the last frame is sent. */
async function sendPaced(ws: WebSocket, audio: Uint8Array): Promise<void> {
  const frame = 3200;
  const started = performance.now();
  for (let offset = 0; offset < audio.length; offset += frame) {
    ws.send(audio.subarray(offset, offset + frame));
    const due = started + ((offset + frame) / 32000 / 2) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

describe('SIGTERM drains a real kol serve process', () => {
  test('SIGTERM right after the audio ends: notice, the pending finals, closed, close 1001; exit 0; no transcript in the logs', async (t) => {
    const clip = heClip('Hungary1_0068');
    const other = heClip('Lod_0053');
    if (!haveAssets(t, REAL_MODEL, clip.wav, other.wav)) return;
    const { kol, url } = await startServe();
    try {
      const workers = childPids(kol.pid, 'whisper-server');
      assert.equal(workers.length, 2, 'two whisper-server children');
      // Two sessions: one just stops sending (no eof), one sends eof at the same moment; both must get
      // every final. Partials off, so that the last final is the only work left when SIGTERM comes.
      const quiet = await RecordingClient.open(`${url}?partials=false`);
      const eof = await RecordingClient.open(`${url}?partials=false`);
      await Promise.all([quiet.waitFor((m) => m.type === 'ready'), eof.waitFor((m) => m.type === 'ready')]);
      const [a, b] = await Promise.all([clipS16(clip), clipS16(other)]);
      await Promise.all([sendPaced(quiet.ws, a), sendPaced(eof.ws, b)]);
      eof.ws.send(JSON.stringify({ type: 'eof' }));
      const finalsBefore = quiet.messages.filter((m) => m.type === 'final').length + eof.messages.filter((m) => m.type === 'final').length;
      kol.child.kill('SIGTERM');
      const signalledAt = performance.now();

      // A new connection is not accepted any more.
      await sleep(300);
      const refused = await new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('open', () => resolve('open'));
        ws.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
        ws.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      });
      assert.match(refused, /ECONNREFUSED|HTTP 503/, `a new connection during the drain is refused (${refused})`);

      const [quietClose, eofClose] = await Promise.all([quiet.closed, eof.closed]);
      const exit = await kol.exited;
      const drainSeconds = (performance.now() - signalledAt) / 1000;
      const finalsAfter = quiet.messages.filter((m) => m.type === 'final').length + eof.messages.filter((m) => m.type === 'final').length - finalsBefore;
      t.diagnostic(`drained in ${drainSeconds.toFixed(1)} s; ${finalsAfter} final(s) were still in flight at SIGTERM and delivered`);

      for (const [name, client, close, clipSeconds] of [
        ['no eof', quiet, quietClose, a.length / 32000],
        ['eof just before', eof, eofClose, b.length / 32000],
      ] as const) {
        const types = client.messages.map((m) => m.type);
        const finals = client.messages.filter((m): m is Final & (typeof client.messages)[number] => m.type === 'final');
        assert.ok(finals.some((f) => f.text.length > 0), `${name}: finals arrived`);
        assert.ok(finals.at(-1)!.end >= clipSeconds - 1, `${name}: the last final covers the end of the audio (${finals.at(-1)!.end} of ${clipSeconds.toFixed(1)} s)`);
        assert.equal(types.at(-1), 'closed', `${name}: closed is the last message`);
        if (name === 'no eof') {
          const notice = client.messages.findIndex((m) => m.type === 'error' && m.code === 'server_shutting_down' && !m.fatal);
          assert.ok(notice >= 0, `${name}: a server_shutting_down notice`);
          assert.equal(close.code, 1001, `${name}: close 1001 (going away)`);
          assert.equal((client.messages.at(-1) as { reason?: string }).reason, 'server_shutting_down');
        } else {
          assert.ok([1000, 1001].includes(close.code), `${name}: closed normally (${close.code})`);
        }
      }
      assert.ok(finalsAfter >= 1, 'at least one final was still pending when SIGTERM came, and it was delivered');
      assert.deepEqual(exit, { code: 0, signal: null }, 'exit code 0');
      await waitUntil(() => workers.every((pid) => processState(pid) !== 'alive'), 5000, 'the whisper-servers to exit');

      // Logs at info level: session ids, no transcript text and no audio.
      const log = kol.lines.join('\n');
      assert.match(log, /"session":"[0-9a-f-]{36}"/, 'log lines carry session ids');
      const words = [...quiet.messages, ...eof.messages]
        .filter((m): m is Final & (typeof quiet.messages)[number] => m.type === 'final')
        .flatMap((f) => f.text.split(/\s+/))
        .map((w) => w.replace(/[.,?!]/g, ''))
        .filter((w) => w.length >= 4);
      assert.ok(words.length > 5);
      for (const word of words) assert.ok(!log.includes(word), `the info log does not contain the transcript word "${word}"`);
    } finally {
      kol.kill();
    }
  });

  test('while draining: /readyz is 503 at once, a new WebSocket gets 503, audio a client keeps sending is dropped without an error per frame; logs show at most a quarter of a key', async (t) => {
    const clip = heClip('Hungary1_0068');
    if (!haveAssets(t, REAL_MODEL, clip.wav)) return;
    // 10 characters: the log may show 2 of them.
    const key = 'K7f2Qx9mZ1';
    const { kol, url } = await startServe({ KOL_API_KEYS: key, KOL_WORKERS: '1' });
    const http = url.replace(/^ws/, 'http').replace(/\/v1\/stream$/, '');
    let sender: NodeJS.Timeout | undefined;
    try {
      assert.equal((await fetch(`${http}/readyz`)).status, 200, 'ready before the signal');
      const client = await RecordingClient.open(`${url}?partials=false`, { headers: { authorization: `Bearer ${key}` } });
      await client.waitFor((m) => m.type === 'ready');
      // Real time, 100 ms a frame, looping the clip, until the server closes the socket.
      const audio = await clipS16(clip);
      let offset = 0;
      sender = setInterval(() => {
        if (client.ws.readyState !== WebSocket.OPEN) return;
        client.ws.send(audio.subarray(offset, offset + 3200));
        offset = (offset + 3200) % (audio.length - (audio.length % 3200));
      }, 100);
      await sleep(3000);
      const errorsBefore = client.errors().length;
      kol.child.kill('SIGTERM');
      const signalledAt = performance.now();

      let readyz: { status: number; body: unknown } | null = null;
      while (performance.now() - signalledAt < 2000) {
        const res = await fetch(`${http}/readyz`).catch((err: Error) => ({ status: 0, json: async () => (err.cause as Error | undefined)?.message ?? err.message }));
        readyz = { status: res.status, body: await res.json() };
        if (readyz.status !== 200) break;
        await sleep(10);
      }
      const readyzMs = performance.now() - signalledAt;
      t.diagnostic(`/readyz answered ${readyz?.status} ${JSON.stringify(readyz?.body)} ${readyzMs.toFixed(0)} ms after SIGTERM`);
      assert.deepEqual(readyz, { status: 503, body: { status: 'draining' } }, '/readyz answers 503 draining');
      assert.equal(client.ws.readyState, WebSocket.OPEN, 'while the session is still finishing');
      const refusal = await tryUpgrade(url, { headers: { authorization: `Bearer ${key}` } });
      assert.ok('status' in refusal, 'a new WebSocket during the drain is refused');
      assert.deepEqual([refusal.status, refusal.body.code], [503, 'server_shutting_down']);

      const closed = await client.closed;
      clearInterval(sender);
      assert.equal(closed.code, 1001);
      assert.deepEqual(await kol.exited, { code: 0, signal: null });
      const during = client.errors().slice(errorsBefore);
      t.diagnostic(`errors during the drain: ${JSON.stringify(during.map((e) => e.code))}`);
      assert.deepEqual(
        during.map((e) => [e.code, e.fatal]),
        [['server_shutting_down', false]],
        'one notice, and no error for each frame sent after it',
      );
      assert.match(during[0].message, /audio sent from now on is ignored/);

      const log = kol.lines.join('\n');
      assert.ok(kol.records().some((r) => r.msg === 'session opened' && r.key === 'K7…'), 'the session is logged with its key masked');
      assert.ok(!log.includes(key.slice(0, 3)), 'no more than a quarter of the key is logged');
    } finally {
      clearInterval(sender);
      kol.kill();
    }
  });

  test('a second SIGTERM during the drain exits at once (code 1), whisper-servers included', async (t) => {
    const long = assetPath('audio', 'he', 'long', 'asimov.wav');
    if (!haveAssets(t, REAL_MODEL, long) || !fs.existsSync(long)) return;
    const { kol, url } = await startServe();
    try {
      const workers = childPids(kol.pid, 'whisper-server');
      const { pcm } = await decodeAudioFile(long);
      const client = await RecordingClient.open(url);
      await client.waitFor((m) => m.type === 'ready');
      // 40 s of speech as fast as the server takes it: many finals queue up behind two workers.
      const audio = toS16(pcm.subarray(0, 40 * 16000));
      for (let offset = 0; offset < audio.length; offset += 32000) client.ws.send(audio.subarray(offset, offset + 32000));
      await client.waitFor((m) => m.type === 'final', 60_000);
      kol.child.kill('SIGTERM');
      await kol.waitForLog('draining before exit (send the signal again to exit at once)', 10_000);
      const second = performance.now();
      kol.child.kill('SIGTERM');
      const exit = await kol.exited;
      const seconds = (performance.now() - second) / 1000;
      t.diagnostic(`exited ${seconds.toFixed(2)} s after the second SIGTERM`);
      assert.equal(exit.code, 1);
      assert.ok(seconds < 2, `exited at once (${seconds.toFixed(2)} s)`);
      await waitUntil(() => workers.every((pid) => processState(pid) !== 'alive'), 3000, 'the whisper-servers to exit');
      await client.closed;
    } finally {
      kol.kill();
    }
  });
});
