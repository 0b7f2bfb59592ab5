/**
 * Access control and per-session limits against a real server over real sockets: API keys (header and
 * ?token=), key scopes, the origin allow-list, session limits overall and per key, frame size, the
 * real-time pace limit, idle timeout, heartbeat, session length, and a client that never reads.
 */
// test-cores: 1 (one worker with one thread, mostly waiting on timers: measured 0.25 cores; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../app.js';
import { Connection } from '../transport/connection.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { capturingLogger } from '../../test/helpers/log.js';
import { RecordingClient, sleep, tryUpgrade, waitUntil, type Refusal } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';

const KEY_ALL = 'all-scopes-key-0001';
const KEY_PUBLISH = 'publish-only-key-02:publish';
const KEY_VIEW = 'view-only-key-0003:view';
const ORIGIN_OK = 'https://captions.example';
const bearer = (entry: string) => ({ authorization: `Bearer ${entry.split(':')[0]}` });

function isRefusal(r: { ws: WebSocket } | Refusal): r is Refusal {
  return 'status' in r;
}

async function refused(url: string, options: Parameters<typeof tryUpgrade>[1] = {}): Promise<Refusal> {
  const result = await tryUpgrade(url, options);
  if (!isRefusal(result)) {
    result.ws.terminate();
    assert.fail(`${url} was accepted; expected a refusal`);
  }
  return result;
}

async function accepted(url: string, options: Parameters<typeof tryUpgrade>[1] = {}): Promise<WebSocket> {
  const result = await tryUpgrade(url, options);
  if (isRefusal(result)) assert.fail(`${url} was refused: ${result.status} ${JSON.stringify(result.body)}`);
  return result.ws;
}

async function metricValue(server: RunningServer, series: string): Promise<number> {
  const text = await server.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('access control and limits', () => {
  let server: RunningServer;
  let url: string;

  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    server = await startTestServer({
      apiKeys: [KEY_ALL, KEY_PUBLISH, KEY_VIEW],
      allowedOrigins: [ORIGIN_OK],
      maxSessions: 3,
      maxSessionsPerKey: 2,
      maxFrameBytes: 64 * 1024,
    });
    url = `${server.url}/v1/stream`;
  });
  after(() => server?.close());

  test('no key or a wrong key: 401 before any WebSocket exists (header and ?token=)', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    for (const [what, target, headers] of [
      ['no key', url, {}],
      ['wrong Bearer key', url, { authorization: 'Bearer not-a-real-key-123' }],
      ['wrong ?token=', `${url}?token=not-a-real-key-123`, {}],
      ['a key that is only a prefix of a real one', `${url}?token=${KEY_ALL.slice(0, 10)}`, {}],
      ['the scope suffix is not part of the key', `${url}?token=${encodeURIComponent(KEY_PUBLISH)}`, {}],
    ] as const) {
      const r = await refused(target, { headers });
      assert.equal(r.status, 401, what);
      assert.equal(r.body.code, 'unauthorized', what);
    }
    // The right key in either place is let in; so is the "Token" scheme.
    (await accepted(url, { headers: bearer(KEY_ALL) })).close();
    (await accepted(`${url}?token=${KEY_ALL}`)).close();
    (await accepted(url, { headers: { authorization: `Token ${KEY_ALL}` } })).close();
  });

  test("browsers' subprotocol keys: OpenAI's openai-insecure-api-key.KEY and Deepgram's token, KEY", async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    // The server answers with the client's first protocol that is not a key, never with the key.
    const openai = await accepted(`${server.url}/v1/realtime?intent=transcription`, { protocols: ['realtime', `openai-insecure-api-key.${KEY_ALL}`, 'openai-beta.realtime-v1'] });
    assert.equal(openai.protocol, 'realtime');
    openai.close();
    const deepgram = await accepted(`${server.url}/v1/listen`, { protocols: ['token', KEY_ALL] });
    assert.equal(deepgram.protocol, 'token');
    deepgram.close();
    const wrong = await refused(`${server.url}/v1/realtime?intent=transcription`, { protocols: ['realtime', 'openai-insecure-api-key.not-a-real-key-123'] });
    assert.equal(wrong.status, 401);
    assert.equal((await refused(url, { protocols: ['token', 'not-a-real-key-123'] })).status, 401);
  });

  test('an origin outside the allow-list: 403; an allowed origin and no origin (not a browser) are let in', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const r = await refused(url, { headers: bearer(KEY_ALL), origin: 'https://evil.example' });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'forbidden_origin');
    (await accepted(url, { headers: bearer(KEY_ALL), origin: ORIGIN_OK })).close();
    (await accepted(url, { headers: bearer(KEY_ALL) })).close();
  });

  test('key scopes: a view-only key cannot publish, a publish-only key cannot view; /metrics needs a full key', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const viewOnStream = await refused(`${url}?token=${KEY_VIEW.split(':')[0]}`);
    assert.equal(viewOnStream.status, 403);
    assert.equal(viewOnStream.body.code, 'forbidden_scope');
    const captions = `${server.url}/v1/captions?room=lobby`;
    const publishOnCaptions = await refused(captions, { headers: bearer(KEY_PUBLISH) });
    assert.equal(publishOnCaptions.status, 403);
    assert.equal(publishOnCaptions.body.code, 'forbidden_scope');
    (await accepted(captions, { headers: bearer(KEY_VIEW) })).close();
    (await accepted(url, { headers: bearer(KEY_PUBLISH) })).close();

    const http = server.url.replace(/^ws/, 'http');
    assert.equal((await fetch(`${http}/metrics`)).status, 401);
    assert.equal((await fetch(`${http}/metrics`, { headers: bearer(KEY_VIEW) })).status, 403);
    const ok = await fetch(`${http}/metrics`, { headers: bearer(KEY_ALL) });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /kol_sessions_active/);
    assert.equal((await fetch(`${http}/healthz`)).status, 200, 'health checks need no key');
  });

  test('session limits: per key (429 code) and overall (503 code), each counted once in the metrics', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    await waitUntil(() => server.gateway.sessionCount === 0, 5000, 'earlier sessions to close');
    const perKeyBefore = await metricValue(server, 'kol_errors_total{code="too_many_sessions_for_key"}');
    const overallBefore = await metricValue(server, 'kol_errors_total{code="too_many_sessions"}');
    const open: RecordingClient[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await RecordingClient.open(url, { headers: bearer(KEY_PUBLISH) });
      await c.waitFor((m) => m.type === 'ready');
      open.push(c);
    }
    const third = await RecordingClient.open(url, { headers: bearer(KEY_PUBLISH) });
    const closeThird = await third.closed;
    assert.deepEqual(third.errors().map((e) => [e.code, e.fatal]), [['too_many_sessions_for_key', true]]);
    assert.equal(closeThird.code, 1013);
    assert.equal(closeThird.reason, 'too_many_sessions_for_key');

    const other = await RecordingClient.open(url, { headers: bearer(KEY_ALL) });
    await other.waitFor((m) => m.type === 'ready');
    open.push(other);
    const fourth = await RecordingClient.open(url, { headers: bearer(KEY_ALL) });
    const closeFourth = await fourth.closed;
    assert.deepEqual(fourth.errors().map((e) => e.code), ['too_many_sessions']);
    assert.equal(closeFourth.code, 1013);

    assert.equal(await metricValue(server, 'kol_errors_total{code="too_many_sessions_for_key"}'), perKeyBefore + 1);
    assert.equal(await metricValue(server, 'kol_errors_total{code="too_many_sessions"}'), overallBefore + 1);
    for (const c of open) c.ws.close();
    await Promise.all(open.map((c) => c.closed));
    await waitUntil(() => server.gateway.sessionCount === 0, 5000, 'sessions to close');
  });

  test('a frame over maxFrameBytes gets frame_too_large and the session goes on; one over 4× is cut off with 1009', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const c = await RecordingClient.open(url, { headers: bearer(KEY_ALL) });
    await c.waitFor((m) => m.type === 'ready');
    c.ws.send(Buffer.alloc(64 * 1024 + 2));
    const error = await c.waitFor((m) => m.type === 'error');
    assert.equal(error.type === 'error' && error.code, 'frame_too_large');
    assert.equal(error.type === 'error' && error.fatal, false);
    c.ws.send(Buffer.alloc(3200)); // 100 ms of silence: accepted
    c.ws.send(JSON.stringify({ type: 'eof' }));
    await c.waitFor((m) => m.type === 'closed');
    assert.equal((await c.closed).code, 1000);
    assert.equal(c.errors().length, 1, 'only the oversized frame was an error');

    const huge = await RecordingClient.open(url, { headers: bearer(KEY_ALL) });
    await huge.waitFor((m) => m.type === 'ready');
    huge.ws.send(Buffer.alloc(4 * 64 * 1024 + 2));
    assert.equal((await huge.closed).code, 1009, 'ws enforces the hard limit (4 × maxFrameBytes) by closing');
    assert.equal((await fetch(`${server.url.replace(/^ws/, 'http')}/healthz`)).status, 200);
  });

  test('audio faster than 4× real time is throttled to 4× (+10 s burst, not saved up while quiet) and told audio_too_fast once', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    // 48 kHz stereo float: 384 kB per second of audio, so 30 s (11.5 MB) is more than the socket
    // buffers hold and the server's pace shows.
    const c = await RecordingClient.open(`${url}?sample_rate=48000&encoding=pcm_f32le&channels=2`, { headers: bearer(KEY_ALL) });
    await c.waitFor((m) => m.type === 'ready');
    const session = server.gateway.sessions().at(-1)!;
    const bytesPerSecond = 48000 * 2 * 4;
    const seconds = 30;
    const frame = Buffer.alloc(bytesPerSecond / 10); // 100 ms of silence
    // 3 quiet seconds first: a budget counted from the start of the session would now allow 10 + 12 s
    // at once; the token bucket still allows only the 10 s burst.
    await sleep(3000);
    const started = performance.now();
    const samples: Array<{ t: number; audio: number }> = [];
    const sampler = setInterval(() => samples.push({ t: (performance.now() - started) / 1000, audio: session.audioSeconds }), 100);
    for (let i = 0; i < seconds * 10; i++) {
      c.ws.send(frame);
      while (c.ws.bufferedAmount > 4 << 20) await sleep(5);
    }
    c.ws.send(JSON.stringify({ type: 'eof' }));
    await c.waitFor((m) => m.type === 'closed', 60_000);
    clearInterval(sampler);
    const elapsed = (performance.now() - started) / 1000;
    const worst = Math.max(...samples.map((s) => s.audio - (10 + 4 * s.t)));
    t.diagnostic(`${seconds} s of audio accepted in ${elapsed.toFixed(1)} s; most ahead of 10 s + 4 × t: ${worst.toFixed(2)} s`);
    assert.ok(elapsed >= (seconds - 10) / 4 - 0.5, `took ${elapsed.toFixed(1)} s, at least (30 − 10) / 4 = 5 s`);
    assert.ok(worst <= 1, `the server never read more than 10 s + 4 × elapsed (+1 s of frames in flight); worst ${worst.toFixed(2)} s ahead`);
    const notices = c.errors().filter((e) => e.code === 'audio_too_fast');
    assert.equal(notices.length, 1, 'one audio_too_fast notice');
    assert.equal(notices[0].fatal, false);
  });
});

describe('time limits, heartbeat and slow readers', () => {
  let server: RunningServer;
  let url: string;
  const log = capturingLogger();

  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    // 1 s idle timeout and 3 s sessions (heartbeat every 333 ms); the smallest send buffer.
    server = await startTestServer({ idleTimeoutSeconds: 1, maxSessionSeconds: 3, sendBufferBytes: 16 * 1024, workers: 1 }, log.logger);
    url = `${server.url}/v1/stream`;
  });
  after(() => server?.close());

  test('idle: no message for idleTimeoutSeconds → idle_timeout, close 1008', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const started = performance.now();
    const c = await RecordingClient.open(url);
    const closed = await c.closed;
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual(c.errors().map((e) => [e.code, e.fatal]), [['idle_timeout', true]]);
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'idle_timeout');
    assert.ok(seconds >= 0.9 && seconds < 3, `closed after ${seconds.toFixed(1)} s`);
  });

  test('session length: a session streaming past maxSessionSeconds → session_too_long, close 1008', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const c = await RecordingClient.open(url);
    const timer = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send(Buffer.alloc(3200)), 100);
    const closed = await c.closed;
    clearInterval(timer);
    assert.deepEqual(c.errors().map((e) => e.code), ['session_too_long']);
    assert.equal(closed.code, 1008);
  });

  test('heartbeat: a client that goes quiet and does not answer pings is cut off (before the idle timeout would close it)', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const ws = new WebSocket(url, { autoPong: false });
    const c = new RecordingClient(ws);
    await new Promise((resolve) => ws.once('open', resolve));
    const started = performance.now();
    const closed = await c.closed;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(closed.code, 1006, 'terminated without a close handshake (not the idle timeout\'s 1008)');
    assert.deepEqual(c.errors(), [], 'no idle_timeout: the heartbeat came first');
    assert.ok(seconds < 1, `cut off after ${seconds.toFixed(2)} s`);
  });

  test('heartbeat: a client that keeps sending counts as alive even when its pongs are not read', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const ws = new WebSocket(url, { autoPong: false });
    const c = new RecordingClient(ws);
    await new Promise((resolve) => ws.once('open', resolve));
    const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(Buffer.alloc(3200)), 100);
    const closed = await c.closed;
    clearInterval(timer);
    assert.deepEqual(c.errors().map((e) => e.code), ['session_too_long'], 'it lived to the session limit');
    assert.equal(closed.code, 1008);
  });

  test('a client that never reads: closed with 1013 slow_consumer while the server buffers at most sendBufferBytes + one message', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    // Record how much the server lets queue up for this client.
    let maxBuffered = 0;
    const original = Connection.prototype.send;
    Connection.prototype.send = function (this: Connection, message: object) {
      maxBuffered = Math.max(maxBuffered, this.bufferedAmount);
      return original.call(this, message);
    };
    const rssBefore = process.memoryUsage().rss;
    try {
      // A wide format so that the pace limit (which counts text frames too) does not slow the flood.
      const ws = new WebSocket(`${url}?sample_rate=192000&encoding=pcm_f32le&channels=8`);
      const c = new RecordingClient(ws);
      await new Promise((resolve) => ws.once('open', resolve));
      ws.pause(); // never read: everything the server sends piles up
      // Each config message makes the server answer with a `ready` of about 1.4 kB (prompt included).
      const config = JSON.stringify({ type: 'config', prompt: 'א'.repeat(500) });
      let sent = 0;
      const slowConsumers = () => server.metrics.registry.getSingleMetric('kol_errors_total')!.get();
      const closedForSlowness = async () => (await slowConsumers()).values.some((v) => v.labels.code === 'slow_consumer' && v.value > 0);
      while (!(await closedForSlowness()) && sent < 200_000) {
        for (let i = 0; i < 500; i++) ws.send(config);
        sent += 500;
        while (ws.bufferedAmount > 1 << 20) await sleep(5);
        await sleep(1);
      }
      t.diagnostic(`${sent} config messages (${((sent * config.length) / 1e6).toFixed(1)} MB) sent before the server gave up; it buffered at most ${maxBuffered} bytes`);
      assert.ok(await closedForSlowness(), 'the server closed the slow consumer');
      // Now read: the backlog, then the close frame (the server waits 2 s before it terminates).
      ws.resume();
      const closed = await c.closed;
      assert.equal(closed.code, 1013);
      assert.equal(closed.reason, 'slow_consumer');
      const ready = c.messages.find((m) => m.type === 'ready');
      const cutOff = log.lines.filter((r) => r.msg === 'closing a client that does not read its messages');
      assert.ok(ready && cutOff.length > 0 && cutOff.every((r) => r.session === ready.session_id), `the log line names the session (${JSON.stringify(cutOff[0])})`);
      assert.ok(maxBuffered <= 16 * 1024 + 4096, `server-side buffer stayed bounded (${maxBuffered} bytes)`);
      const growth = (process.memoryUsage().rss - rssBefore) / 1e6;
      t.diagnostic(`RSS growth during the flood (server and client in this process): ${growth.toFixed(0)} MB`);
      assert.ok(growth < 150, `memory stayed bounded (${growth.toFixed(0)} MB)`);
    } finally {
      Connection.prototype.send = original;
    }
  });
});
