/**
 * Two hosts on one machine: `node bin/kol.js worker` (the GPU host's side, here on the CPU) in a
 * process of its own on a loopback port, and a gateway with no local workers and `workerUrls`
 * pointing at it. A clip streams end to end through the remote worker; killing the whisper-server
 * inside `kol worker` mid-final is survived (kol worker restarts it, the gateway retries); killing
 * `kol worker` itself takes its whisper-server with it.
 */
// test-cores: 1 (one remote worker with one thread: measured 0.7 cores; scripts/test.js)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { streamAudio } from '../../clients/cli/stream-client.js';
import { decodeAudioFile } from '../../engine/audio/wav.js';
import { wordErrorRate } from '../../engine/wer.js';
import type { RunningServer } from '../app.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { cleanEnv, clipS16, freeTcpPort, heClip, KolProcess, processState, sleep, waitUntil } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';
import fs from 'node:fs';

describe('a gateway with a remote kol worker', () => {
  let worker: KolProcess | null = null;
  let server: RunningServer | null = null;
  let workerUrl = '';

  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    const port = await freeTcpPort();
    worker = new KolProcess(['worker', '--host', '127.0.0.1', '--port', String(port), '--model', REAL_MODEL, '--threads', '1'], cleanEnv({ KOL_GPU: 'off' }));
    await worker.waitForLog('kol worker ready');
    workerUrl = `http://127.0.0.1:${port}`;
    server = await startTestServer({ workers: 0, workerUrls: [workerUrl] });
  });
  after(async () => {
    await server?.close();
    worker?.kill();
  });

  test('a clip streams end to end through the remote worker', async (t) => {
    const clip = heClip('Hashlama112_0024');
    if (!haveAssets(t, REAL_MODEL, clip.wav)) return;
    assert.equal(server!.runtime.finalPool.size, 1);
    assert.equal(server!.runtime.finalPool.stats().workers[0].url, workerUrl);
    const result = await streamAudio({ url: `${server!.url}/v1/stream`, audio: await clipS16(clip), speed: 2 });
    assert.equal(result.closeCode, 1000);
    const text = result.finals.map((f) => f.text).filter(Boolean).join(' ');
    // The same model locally, whole clip, as the baseline.
    const offline = await server!.runtime.finalPool.transcribe((await decodeAudioFile(clip.wav)).pcm, { language: 'he', beamSize: 5 });
    const wer = wordErrorRate(clip.reference ?? '', text).wer;
    const baseline = wordErrorRate(clip.reference ?? '', offline.text).wer;
    t.diagnostic(`streamed via ${workerUrl}: "${text}" (WER ${wer.toFixed(2)}, offline ${baseline.toFixed(2)})`);
    assert.ok(text.length > 0);
    assert.ok(wer <= baseline + 0.1, `WER ${wer.toFixed(2)} within 0.1 of offline ${baseline.toFixed(2)}`);
    const metrics = await server!.metrics.registry.metrics();
    assert.match(metrics, new RegExp(`kol_worker_up\\{pool="final",worker="r0",url="${workerUrl.replace(/[.]/g, '\\.')}"\\} 1`));
    assert.match(metrics, /kol_worker_requests_total\{pool="final",worker="r0",outcome="ok"\} [1-9]/);
  });

  test('the remote whisper-server killed mid-final: kol worker restarts it, the gateway retries, no final lost', async (t) => {
    const clips = [heClip('Hungary1_0068'), heClip('Lod_0053')];
    if (!haveAssets(t, REAL_MODEL, ...clips.map((c) => c.wav))) return;
    const { joinClips } = await import('../../corpus/streams.js');
    const stream = await joinClips(clips, [1.2], 0.5);
    const audio = new Uint8Array(stream.pcm16.byteLength + 32000);
    audio.set(new Uint8Array(stream.pcm16.buffer, stream.pcm16.byteOffset, stream.pcm16.byteLength));
    const pool = server!.runtime.finalPool;
    const serverPid = () => Number(worker!.records().filter((r) => r.msg === 'kol worker ready' || r.msg === 'whisper-server restarted').at(-1)?.serverPid);
    const victim = serverPid();
    let struckAt = 0;
    const watcher = setInterval(() => {
      if (struckAt || pool.stats().workers[0].state !== 'busy') return;
      struckAt = performance.now();
      process.kill(victim, 'SIGKILL');
    }, 10);
    const finalsAt: number[] = [];
    const result = await streamAudio({ url: `${server!.url}/v1/stream?partials=false`, audio, speed: 2, onMessage: (m, at) => m.type === 'final' && finalsAt.push(at) });
    clearInterval(watcher);
    assert.ok(struckAt > 0, 'the remote whisper-server was killed during a request');
    assert.equal(result.closeCode, 1000);
    assert.deepEqual(result.messages.filter((m) => m.message.type === 'error').map((m) => m.message), [], 'the client saw no error');
    for (const u of stream.utterances) {
      assert.ok(
        result.finals.some((f) => f.end >= u.end - 0.3 && f.start < u.end && f.text),
        `utterance ${u.name} got its final`,
      );
    }
    await worker!.waitForLog('whisper-server restarted', 10_000);
    const restartedAt = performance.now();
    t.diagnostic(`killed remote whisper-server pid ${victim}; next final ${((finalsAt.find((at) => at > struckAt) ?? NaN) - struckAt).toFixed(0)} ms later; new pid ${serverPid()}`);
    assert.ok(restartedAt > struckAt);
    assert.notEqual(serverPid(), victim);
    // The killed request counts as worker_crashed, unless it was a final started during a pause that
    // speech then cancelled (counted as aborted: not the worker's fault; as in worker-faults.test.ts).
    // A retry that meets the whisper-server while kol worker is still bringing it back may count
    // another crash, so the count is at least one.
    const lines = (await server!.metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('kol_worker_failures_total{') || l.startsWith('kol_worker_requests_total{'));
    t.diagnostic(`worker requests and failures: ${lines.join('; ')}`);
    assert.ok(
      lines.some((l) => /^kol_worker_failures_total\{pool="final",worker="r0",code="worker_crashed"\} [1-9]\d*$/.test(l) || /^kol_worker_requests_total\{pool="final",worker="r0",outcome="aborted"\} [1-9]\d*$/.test(l)),
      `the crash is counted, or the killed request was a cancelled one: ${lines.join('; ')}`,
    );
  });

  test('kol worker killed with SIGKILL: its whisper-server dies with it (parent-death signal)', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const pid = Number(worker!.records().filter((r) => r.msg === 'kol worker ready' || r.msg === 'whisper-server restarted').at(-1)?.serverPid);
    assert.equal(processState(pid), 'alive');
    worker!.kill('SIGKILL');
    await worker!.exited;
    await waitUntil(() => processState(pid) !== 'alive', 3000, `whisper-server ${pid} to die with kol worker`);
    await sleep(100);
  });
});
