/**
 * Caption rooms over a real server: a session publishes to a room while plain `ws` clients watch
 * it at /v1/captions, as `wscat -c ws://host:8009/v1/captions?room=NAME` would.
 */
// test-cores: 1 (one worker with one thread; scripts/test.js)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { streamAudio } from '../clients/cli/stream-client.js';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { assetPath, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { startTestServer } from '../test/helpers/server.js';
import type { RunningServer } from './app.js';
import { floatsToS16le } from '../engine/audio/format.js';
import type { CaptionMessage } from './captions/rooms.js';

const CLIP = assetPath('audio', 'he', 'Hashlama117_0009.wav');
const VIEW_KEY = 'view-key-0001';
const PUBLISH_KEY = 'publish-key-0001';

let server: RunningServer | null = null;
let pcm: Uint8Array;

before(async () => {
  server = await startTestServer({ workers: 1, apiKeys: [`${VIEW_KEY}:view`, `${PUBLISH_KEY}:publish`] });
  pcm = floatsToS16le((await decodeAudioFile(CLIP)).pcm);
});
after(() => server?.close());

interface Watcher {
  ws: WebSocket;
  messages: CaptionMessage[];
  /** The next message (from the start of the stream) that matches, waiting for it. */
  waitFor<T extends CaptionMessage>(match: (m: CaptionMessage) => m is T, what: string, timeoutMs?: number): Promise<T>;
  closed: Promise<{ code: number; reason: string }>;
}

function watch(query: string, key = VIEW_KEY): Promise<Watcher> {
  const ws = new WebSocket(`${server!.url}/v1/captions?${query}`, { headers: { authorization: `Bearer ${key}` } });
  const messages: CaptionMessage[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const watcher: Watcher = {
    ws,
    messages,
    closed,
    waitFor(match, what, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < messages.length; seen++) {
            const m = messages[seen];
            if (match(m)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(m);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(watcher));
    ws.once('error', reject);
  });
}

const isRoom = (m: CaptionMessage): m is Extract<CaptionMessage, { type: 'room' }> => m.type === 'room';
const isFinal = (m: CaptionMessage): m is Extract<CaptionMessage, { type: 'final' }> => m.type === 'final' && m.text !== '';
const isPartial = (m: CaptionMessage): m is Extract<CaptionMessage, { type: 'partial' }> => m.type === 'partial';

test('viewers see a publishing session live: status, partials, the same finals, and its leaving; a late viewer gets the backlog', { timeout: 60_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, CLIP)) return;
  const early = await watch('room=studio-1');
  const first = await early.waitFor(isRoom, 'room status');
  assert.deepEqual(first, { type: 'room', room: 'studio-1', publishers: 0, backlog: [] });

  // The room is named in the config message, as wscat users would send it.
  const result = await streamAudio({ url: `${server!.url}/v1/stream`, audio: pcm, speed: 4, config: { room: 'studio-1' }, headers: { authorization: `Bearer ${PUBLISH_KEY}` } });
  const ready = result.messages.map((m) => m.message).find((m) => m.type === 'ready');
  const published = result.finals.filter((f) => f.text !== '');
  assert.ok(published.length > 0, 'the session produced a final');

  const joined = await early.waitFor((m): m is Extract<CaptionMessage, { type: 'room' }> => isRoom(m) && m.event === 'publisher_joined', 'publisher_joined');
  assert.equal(joined.publishers, 1);
  assert.equal(joined.session_id, ready?.type === 'ready' ? ready.session_id : undefined);
  await early.waitFor(isPartial, 'a partial');
  const seen = await early.waitFor(isFinal, 'a final');
  assert.equal(seen.text, published[0].text);
  assert.equal(seen.session_id, joined.session_id);
  assert.equal(seen.start, published[0].start);
  const left = await early.waitFor((m): m is Extract<CaptionMessage, { type: 'room' }> => isRoom(m) && m.event === 'publisher_left', 'publisher_left');
  assert.equal(left.publishers, 0);

  const late = await watch('room=studio-1');
  const status = await late.waitFor(isRoom, 'room status');
  assert.equal(status.publishers, 0, 'a room with no publisher says so');
  assert.deepEqual(
    status.backlog?.map((f) => f.text),
    published.map((f) => f.text),
  );
  early.ws.close();
  late.ws.close();
});

test('a viewer must name a valid room, cannot publish through the caption stream, and needs a key that may view', { timeout: 30_000 }, async () => {
  for (const query of ['', 'room=', 'room=has%20space', `room=${'x'.repeat(65)}`]) {
    const viewer = await watch(query);
    const closed = await viewer.closed;
    assert.equal(closed.code, 1008, query);
    assert.equal(closed.reason, 'room_required');
    const error = viewer.messages[0] as unknown as { type: string; code: string; fatal: boolean };
    assert.deepEqual([error.type, error.code, error.fatal], ['error', 'room_required', true]);
  }

  const viewer = await watch('room=quiet');
  await viewer.waitFor(isRoom, 'room status');
  viewer.ws.send(JSON.stringify({ type: 'audio', data: 'AAAA' }));
  const error = await viewer.waitFor((m): m is CaptionMessage => (m as { type: string }).type === 'error', 'read-only error');
  assert.equal((error as unknown as { code: string; fatal: boolean }).code, 'invalid_message');
  assert.equal((error as unknown as { fatal: boolean }).fatal, false);
  assert.equal(viewer.ws.readyState, WebSocket.OPEN, 'the viewer stays connected');
  viewer.ws.close();

  // A publish-only key may not watch, and a view-only key may not publish.
  await assert.rejects(watch('room=quiet', PUBLISH_KEY), /403/);
  await assert.rejects(watch('room=quiet', 'not-a-key-at-all'), /401/);
  await assert.rejects(
    streamAudio({ url: `${server!.url}/v1/stream`, audio: new Uint8Array(3200), headers: { authorization: `Bearer ${VIEW_KEY}` } }),
    /403/,
  );
});

test('viewers are told the server is going away when it shuts down', { timeout: 30_000 }, async () => {
  const viewer = await watch('room=closing');
  await viewer.waitFor(isRoom, 'room status');
  const own = server!;
  server = null;
  await own.drain();
  const closed = await viewer.closed;
  assert.equal(closed.code, 1001);
  assert.equal(closed.reason, 'server_shutting_down');
});
