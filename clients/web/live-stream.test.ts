/**
 * The page's connection logic (live-stream.js) in Node, with `ws` as its WebSocket, against a real
 * server: a dropped connection is replaced and the words around the drop are still transcribed,
 * while what was already final stays as it was.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { decodeAudioFile } from '../../engine/audio/wav.js';
import { normalizeText } from '../../engine/wer.js';
import { assetPath, REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { sleep, waitUntil } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';
import { floatToInt16 } from './resampler.js';
import { LiveStream, type LiveEvent } from './live-stream.js';

const FIRST = assetPath('audio', 'he', 'Hashlama117_0009.wav');
const SECOND = assetPath('audio', 'he', 'Meat_0089.wav');
const SECOND_REFERENCE = assetPath('audio', 'he', 'Meat_0089.txt');

test('a dropped connection is replaced; the speech around the drop is sent again and transcribed once', { timeout: 90_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, FIRST, SECOND, SECOND_REFERENCE)) return;
  const server = await startTestServer();
  t.after(() => server.close());

  // Two utterances with a pause between them; the connection is cut in the middle of the second.
  const first = (await decodeAudioFile(FIRST)).pcm;
  const second = (await decodeAudioFile(SECOND)).pcm;
  const pause = new Float32Array(1.5 * 16000);
  const audio = new Float32Array(first.length + pause.length * 2 + second.length);
  audio.set(first, 0);
  audio.set(second, first.length + pause.length);
  const secondStart = (first.length + pause.length) / 16000;
  const pcm = floatToInt16(audio);

  const sockets: WebSocket[] = [];
  class TrackedWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const events: LiveEvent[] = [];
  let resolveFirstFinal: () => void = () => {};
  const firstFinal = new Promise<void>((resolve) => (resolveFirstFinal = resolve));
  const live = new LiveStream({
    url: () => `${server.url}/v1/stream?sample_rate=16000&encoding=pcm_s16le`,
    WebSocket: TrackedWebSocket,
    retryDelaysMs: [300],
    onEvent: (event) => {
      events.push(event);
      if (event.type === 'final' && event.text.trim() !== '') resolveFirstFinal();
    },
  });
  live.start();

  // 100 ms chunks at 4× real time (what the server allows), as the microphone would hand them over.
  let dropped = false;
  for (let offset = 0; offset < pcm.length; offset += 1600) {
    live.push(pcm.slice(offset, offset + 1600));
    await new Promise((resolve) => setTimeout(resolve, 25));
    if (!dropped && offset / 16000 >= secondStart + 2) {
      // Mid-sentence: wait until the first utterance is final, then cut the line without a close.
      await firstFinal;
      sockets.at(-1)!.terminate();
      dropped = true;
    }
  }
  await live.finish();

  assert.equal(sockets.length, 2, 'one new connection after the drop');
  const states = events.filter((e) => e.type === 'state').map((e) => (e.type === 'state' ? e.state : ''));
  assert.deepEqual(states, ['connecting', 'live', 'reconnecting', 'reconnecting', 'live', 'finishing', 'closed']);
  const finals = events.filter((e): e is Extract<LiveEvent, { type: 'final' }> => e.type === 'final' && e.text.trim() !== '');
  t.diagnostic(finals.map((f) => `[${f.start.toFixed(2)}–${f.end.toFixed(2)}] ${f.text}`).join('\n'));

  // The first utterance: once, from the first connection. The second: from the new connection,
  // whole (its start was sent again), and on the recording's timeline rather than the new session's.
  const before = finals.filter((f) => f.key.startsWith('1:'));
  const after = finals.filter((f) => f.key.startsWith('2:'));
  assert.equal(before.length, 1);
  assert.ok(before[0].end < secondStart);
  assert.ok(after.length >= 1, 'the second utterance was transcribed after the drop');
  assert.ok(Math.abs(after[0].start - secondStart) < 0.6, `the second utterance starts at ${after[0].start}, not ${secondStart}`);
  const heard = normalizeText(after.map((f) => f.text).join(' ')).split(' ');
  const reference = normalizeText(fs.readFileSync(SECOND_REFERENCE, 'utf8')).split(' ');
  const found = reference.filter((word) => heard.includes(word)).length;
  assert.ok(found / reference.length >= 0.6, `only ${found} of ${reference.length} words of the second utterance came back: ${heard.join(' ')}`);
});

test('a session the server refuses is not retried, and says why', { timeout: 30_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL)) return;
  const server = await startTestServer({ workers: 1 });
  t.after(() => server.close());
  const events: LiveEvent[] = [];
  let connections = 0;
  class CountingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      connections++;
    }
  }
  const live = new LiveStream({ url: () => `${server.url}/v1/stream?sample_rate=5`, WebSocket: CountingWebSocket, retryDelaysMs: [100], onEvent: (e) => events.push(e) });
  live.start();
  await waitUntil(() => live.state === 'failed', 25_000, 'the stream to fail');
  await sleep(400);
  assert.equal(connections, 1);
  const error = events.find((e) => e.type === 'error');
  assert.ok(error && error.type === 'error' && error.fatal && error.code === 'unsupported_sample_rate', JSON.stringify(events));
});
