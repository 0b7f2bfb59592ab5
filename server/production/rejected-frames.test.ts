/**
 * What counts as audio, over a real socket into a real server: a frame that was rejected or held no
 * bytes is not audio, so the configuration stays open after it; a config with a field the protocol
 * does not know — `__proto__` included — is refused like any other; audio after eof is answered once.
 */
// test-cores: 1 (one worker with one thread; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../app.js';
import type { ServerMessage } from '../dialects/protocol.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { RecordingClient, sleep } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';

type Ready = Extract<ServerMessage, { type: 'ready' }>;

/** Sends one frame and returns what the server answered to it (the messages within `quietMs` after the first). */
async function answer(c: RecordingClient, frame: Buffer | string, quietMs = 300): Promise<ServerMessage[]> {
  const before = c.messages.length;
  c.ws.send(frame, { binary: typeof frame !== 'string' });
  await sleep(quietMs);
  return c.messages.slice(before);
}

const codes = (messages: ServerMessage[]) => messages.map((m) => (m.type === 'error' ? m.code : m.type));

describe('rejected frames, unknown config fields and late audio', () => {
  let server: RunningServer;
  let url: string;
  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    server = await startTestServer({ workers: 1 });
    url = `${server.url}/v1/stream`;
  });
  after(() => server?.close());

  test('an odd-length frame, a 0-byte frame and empty base64 audio do not lock the configuration', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const c = await RecordingClient.open(url);
    await c.waitFor((m) => m.type === 'ready');
    assert.deepEqual(codes(await answer(c, Buffer.alloc(3))), ['odd_pcm_length']);
    assert.deepEqual(codes(await answer(c, Buffer.alloc(0))), [], 'an empty frame is ignored quietly');
    assert.deepEqual(codes(await answer(c, JSON.stringify({ type: 'audio', data: '' }))), [], 'so is empty base64 audio');
    const reply = await answer(c, JSON.stringify({ type: 'config', sample_rate: 8000 }));
    assert.deepEqual(codes(reply), ['ready'], 'the config after them is accepted');
    assert.equal((reply[0] as Ready).config.sample_rate, 8000);
    // Real audio does fix the configuration.
    assert.deepEqual(codes(await answer(c, Buffer.alloc(320))), []);
    assert.deepEqual(codes(await answer(c, JSON.stringify({ type: 'config', sample_rate: 16000 }))), ['config_after_audio']);
    c.ws.close();
  });

  test('"__proto__" in a config is an unknown field: invalid_config, nothing applied', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const c = await RecordingClient.open(url);
    await c.waitFor((m) => m.type === 'ready');
    for (const frame of ['{"type":"config","__proto__":{"sample_rate":8000}}', '{"type":"config","language":"en","__proto__":{"sample_rate":8000}}', '{"type":"config","constructor":{"prototype":{}}}']) {
      const reply = await answer(c, frame);
      assert.deepEqual(codes(reply), ['invalid_config'], frame);
    }
    const reply = await answer(c, JSON.stringify({ type: 'config', partials: false }));
    assert.deepEqual(codes(reply), ['ready']);
    assert.deepEqual([(reply[0] as Ready).config.sample_rate, (reply[0] as Ready).config.language], [16000, 'he'], 'none of the refused configs was applied');
    c.ws.close();
  });

  test('audio after eof: one session_ended error, not one per frame', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const c = await RecordingClient.open(url);
    await c.waitFor((m) => m.type === 'ready');
    c.ws.send(Buffer.alloc(3200));
    c.ws.send(JSON.stringify({ type: 'eof' }));
    for (let i = 0; i < 20; i++) c.ws.send(Buffer.alloc(3200));
    await c.closed;
    const late = c.errors().filter((e) => e.code === 'session_ended');
    assert.equal(late.length, 1, JSON.stringify(c.errors()));
    assert.equal(late[0].fatal, false);
    assert.equal(c.messages.at(-1)?.type, 'closed');
  });
});
