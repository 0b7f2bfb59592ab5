/**
 * GET /metrics on real servers: the series docs/OPERATIONS.md lists move as a real session streams
 * (sessions, audio seconds, segments, partials, finals, latency, queue wait, inference, worker busy
 * time, errors by code counted once), and two servers in one process keep separate registries.
 */
// test-cores: 1 (one session at real-time pace on each of two servers in turn: measured 1.3 cores; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { streamAudio } from '../../clients/cli/stream-client.js';
import type { RunningServer } from '../app.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { clipS16, heClip, RecordingClient, waitUntil } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';

/** The value of one series line, e.g. value(text, 'kol_finals_total{outcome="text"}'); 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function scrape(server: RunningServer): Promise<string> {
  const res = await fetch(`${server.url.replace(/^ws/, 'http')}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

describe('/metrics', () => {
  let a: RunningServer;
  let b: RunningServer;
  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    [a, b] = await Promise.all([startTestServer(), startTestServer({ workers: 1 })]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  test('a streamed clip moves the session, audio, transcript, latency and worker series; a bad frame counts once', async (t) => {
    const clip = heClip('Hungary1_0068');
    if (!haveAssets(t, REAL_MODEL, clip.wav)) return;
    const audio = await clipS16(clip);
    const c = await RecordingClient.open(`${a.url}/v1/stream`);
    await c.waitFor((m) => m.type === 'ready');
    c.ws.send('{not json');
    await c.waitFor((m) => m.type === 'error');
    const during = await scrape(a);
    assert.equal(value(during, 'kol_sessions_active'), 1);
    c.ws.close();
    await c.closed;

    const result = await streamAudio({ url: `${a.url}/v1/stream`, audio, speed: 2 });
    await waitUntil(() => a.gateway.sessionCount === 0, 5000, 'sessions to close');
    const text = await scrape(a);
    const finals = result.finals.filter((f) => f.text);
    const partials = result.messages.filter((m) => m.message.type === 'partial').length;
    const seconds = audio.length / 32000;

    assert.equal(value(text, 'kol_sessions_total'), 2);
    assert.equal(value(text, 'kol_sessions_active'), 0);
    assert.equal(value(text, 'kol_session_duration_seconds_count'), 2);
    assert.ok(Math.abs(value(text, 'kol_audio_seconds_total') - seconds) < 0.1, `audio seconds ${value(text, 'kol_audio_seconds_total')} ≈ ${seconds.toFixed(2)}`);
    assert.equal(value(text, 'kol_segments_total'), result.messages.filter((m) => m.message.type === 'speech_start').length);
    assert.equal(value(text, 'kol_partials_sent_total'), partials);
    assert.equal(value(text, 'kol_finals_total{outcome="text"}'), finals.length);
    assert.equal(value(text, 'kol_final_latency_seconds_count'), finals.length);
    assert.equal(value(text, 'kol_finals_degraded_total'), result.finals.filter((f) => f.decoding?.degraded).length, 'degraded finals, as the finals say');
    assert.equal(value(text, 'kol_finals_retried_total'), result.finals.filter((f) => f.decoding?.retried).length);
    const latencySum = finals.reduce((s, f) => s + f.latency_ms / 1000, 0);
    assert.ok(Math.abs(value(text, 'kol_final_latency_seconds_sum') - latencySum) < 0.01, 'the latency histogram holds the finals\' latency_ms');
    assert.ok(value(text, 'kol_inference_seconds_count{pool="final"}') >= finals.length);
    assert.ok(value(text, 'kol_queue_wait_seconds_count{pool="final"}') >= finals.length);
    assert.ok(value(text, 'kol_scheduler_wait_seconds_count{kind="final"}') >= finals.length);
    assert.ok(value(text, 'kol_transcribed_audio_seconds_total{pool="final"}') >= seconds * 0.9);
    assert.equal(value(text, 'kol_errors_total{code="invalid_json"}'), 1, 'one bad frame, counted once');
    assert.equal(value(text, 'kol_worker_up{pool="final",worker="w0",url="' + a.runtime.finalPool.stats().workers[0].url + '"}'), 1);
    const busy = value(text, 'kol_worker_busy_seconds_total{pool="final",worker="w0"}') + value(text, 'kol_worker_busy_seconds_total{pool="final",worker="w1"}');
    assert.ok(busy > 0, 'worker busy time');
    assert.equal(value(text, 'kol_ready'), 1);
    for (const series of ['kol_event_loop_lag_seconds{quantile="0.99"}', 'process_resident_memory_bytes', 'kol_pool_queue_depth{pool="final"}', 'kol_scheduler_pending{kind="final"}']) {
      assert.ok(text.includes(`${series} `), `${series} is exported`);
    }
    t.diagnostic(`finals ${finals.length}, partials ${partials}, latency sum ${latencySum.toFixed(2)} s, workers busy ${busy.toFixed(1)} s`);

    // The other server in this process saw none of it.
    const other = await scrape(b);
    assert.equal(value(other, 'kol_sessions_total'), 0);
    assert.equal(value(other, 'kol_audio_seconds_total'), 0);
    assert.equal(value(other, 'kol_errors_total{code="invalid_json"}'), 0);
  });
});
