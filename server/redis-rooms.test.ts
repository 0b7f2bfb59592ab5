/**
 * Caption rooms across two gateways through a real redis-server: a viewer connected to gateway B
 * sees what a publisher streams into gateway A, and a viewer joining B late gets the backlog.
 */
// test-cores: 1 (one worker with one thread, shared by both gateways; scripts/test.js)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { floatsToS16le } from '../engine/audio/format.js';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { freePort } from '../engine/whisper/worker.js';
import { wordErrorRate } from '../engine/wer.js';
import { streamAudio } from '../clients/cli/stream-client.js';
import { clips, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { startTestServer } from '../test/helpers/server.js';
import type { RunningServer } from './app.js';
import type { CaptionMessage } from './captions/rooms.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

function watch(url: string): { messages: CaptionMessage[]; socket: WebSocket; opened: Promise<void> } {
  const socket = new WebSocket(url);
  const messages: CaptionMessage[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as CaptionMessage));
  return { messages, socket, opened: new Promise((resolve) => socket.once('open', () => resolve())) };
}

async function until(check: () => boolean, what: string | (() => string), ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('caption rooms fan out through Redis across two gateways', () => {
  let redis: ChildProcess | undefined;
  let a: RunningServer | undefined;
  let b: RunningServer | undefined;

  before(async () => {
    if (!haveRedis) {
      process.stderr.write('\n!!! redis-server is not installed (scripts/install-test-deps.sh installs it): skipping the multi-gateway test\n');
      return;
    }
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const redisUrl = `redis://127.0.0.1:${port}`;
    a = await startTestServer({ redisUrl, workers: 1 });
    // Gateway B runs no whisper of its own: it borrows A's worker as a remote one, like a second
    // gateway behind a load balancer sharing a GPU host.
    b = await startTestServer({ redisUrl, workers: 0, workerUrls: [a.runtime.finalPool.stats().workers[0].url] });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    redis?.kill();
  });

  test('a viewer on gateway B sees a publisher on gateway A; a late viewer on B gets the backlog', async (t) => {
    if (!haveRedis) return t.skip('redis-server missing');
    const clip = clips('he').find((c) => c.name === 'Hashlama112_0024');
    if (!haveAssets(t, REAL_MODEL, clip?.wav ?? 'Hashlama112_0024.wav')) return;
    const viewer = watch(`${b!.url}/v1/captions?room=studio-1`);
    await viewer.opened;
    await until(() => viewer.messages.some((m) => m.type === 'room'), 'the room status');
    assert.deepEqual(viewer.messages[0], { type: 'room', room: 'studio-1', publishers: 0, backlog: [] });

    const pcm = (await decodeAudioFile(clip!.wav)).pcm;
    const published = await streamAudio({ url: `${a!.url}/v1/stream?room=studio-1`, audio: floatsToS16le(pcm), speed: 2 });
    const publishedText = published.finals.map((f) => f.text).join(' ');
    assert.ok(publishedText.length > 0);

    await until(() => viewer.messages.some((m) => m.type === 'room' && m.event === 'publisher_left'), () => `the publisher leaving (seen: ${JSON.stringify(viewer.messages).slice(0, 800)})`);
    const seen = viewer.messages.filter((m) => m.type === 'final').map((m) => (m.type === 'final' ? m.text : ''));
    t.diagnostic(`published "${publishedText}" | seen on B "${seen.join(' ')}"`);
    assert.equal(wordErrorRate(publishedText, seen.join(' ')).wer, 0, 'the viewer on B saw exactly the finals published on A');
    assert.ok(viewer.messages.some((m) => m.type === 'room' && m.event === 'publisher_joined' && m.publishers === 1));
    assert.ok(viewer.messages.some((m) => m.type === 'partial'), 'partials cross gateways too');

    const late = watch(`${b!.url}/v1/captions?room=studio-1`);
    await until(() => late.messages.length > 0, 'the late viewer’s room status');
    const status = late.messages[0];
    assert.equal(status.type, 'room');
    assert.equal(status.type === 'room' && status.publishers, 0, 'nobody publishes any more');
    const backlog = status.type === 'room' ? (status.backlog ?? []).map((f) => f.text).join(' ') : '';
    assert.equal(backlog, publishedText, 'the late viewer got the finals from Redis');
    viewer.socket.close();
    late.socket.close();
  });
});
