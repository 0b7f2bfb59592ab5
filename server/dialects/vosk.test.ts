/**
 * The Vosk-compatible endpoint driven by a client written to vosk-server's documented WebSocket
 * protocol (alphacep/vosk-server websocket/test.py): a config message, then each audio chunk followed
 * by waiting for exactly one reply, then `{"eof" : 1}` and its reply, then the server closes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RunningServer } from '../app.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { CLIP_TXT, CLIP_WAV, loadClip, nativeText, reproducibleServer, wer, withReproducibleServer, type ClipPcm } from '../../test/helpers/compat.js';

/** Twice real time: see deepgram.test.ts. */
const SPEED = 2;

type Reply = Record<string, unknown>;

/** A request/response Vosk client: every send is followed by reading one reply. */
class VoskClient {
  private readonly inbox: Reply[] = [];
  private waiting: ((reply: Reply) => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Replies that arrived without a request waiting for them. */
  unsolicited = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const reply = JSON.parse(data.toString()) as Reply;
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = null;
        deliver(reply);
      } else {
        this.unsolicited++;
        this.inbox.push(reply);
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string): Promise<VoskClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new VoskClient(ws);
  }

  /** Sends without waiting for a reply (vosk-server answers a config with nothing). */
  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  async request(data: string | Uint8Array, timeoutMs = 60_000): Promise<Reply> {
    this.ws.send(data);
    const queued = this.inbox.shift();
    if (queued) return queued;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply from the Vosk endpoint')), timeoutMs);
      this.waiting = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
    });
  }
}

/** vosk-server's test.py, paced: config, 0.2 s chunks each answered, then eof. */
async function voskSession(url: string, clip: ClipPcm, options: { config?: Record<string, unknown>; before?: (client: VoskClient) => Promise<void>; speed?: number } = {}) {
  const speed = options.speed ?? SPEED;
  const client = await VoskClient.open(url);
  client.send(JSON.stringify({ config: { sample_rate: clip.sampleRate, ...options.config } }));
  await options.before?.(client);
  const chunkBytes = Math.round(clip.sampleRate * 0.2) * 2;
  const replies: Reply[] = [];
  const started = performance.now();
  for (let offset = 0; offset < clip.pcm.length; offset += chunkBytes) {
    const chunk = clip.pcm.subarray(offset, offset + chunkBytes);
    replies.push(await client.request(chunk));
    const due = started + ((offset + chunk.length) / (clip.sampleRate * 2) / speed) * 1000;
    if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
  }
  const last = await client.request('{"eof" : 1}');
  const closed = await client.closed;
  const chunks = Math.ceil(clip.pcm.length / chunkBytes);
  return { replies, last, closed, chunks, client };
}

const textOf = (replies: Reply[]) =>
  replies
    .map((r) => (typeof r.text === 'string' ? r.text : ''))
    .filter(Boolean)
    .join(' ');

describe('Vosk-compatible /v1/vosk with a vosk-server protocol client', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  test('one reply per chunk (a partial, or a result with words), the last result on eof, then a normal close; WER within 0.02 of native', async (t) => {
    if (!haveAssets(t, CLIP_WAV, CLIP_TXT)) return;
    const clip = await loadClip({ padSeconds: 1.5 });
    const native = await withReproducibleServer({}, (server) => nativeText(server.url, clip, { speed: SPEED }));
    const session = await withReproducibleServer({}, (server) => voskSession(`${server.url}/v1/vosk`, clip));

    const { replies, last, closed, chunks, client } = session;
    assert.equal(replies.length, chunks, 'exactly one reply per audio chunk');
    assert.equal(client.unsolicited, 0, 'nothing arrives unasked (the config gets no reply)');
    for (const r of replies) assert.ok(typeof r.partial === 'string' || typeof r.text === 'string', `a partial or a result: ${JSON.stringify(r)}`);
    // Results that were ready before eof came as replies to chunks; the rest come in the reply to eof.
    const results = replies.filter((r) => 'text' in r);
    const words = [...results, last].flatMap((r) => (r.result as Array<Record<string, unknown>> | undefined) ?? []);
    assert.ok(words.length > 5, 'results carry words');
    for (const w of words) {
      assert.deepEqual(Object.keys(w).sort(), ['conf', 'end', 'start', 'word']);
      assert.ok((w.end as number) >= (w.start as number) && (w.conf as number) >= 0 && (w.conf as number) <= 1);
    }
    assert.equal(typeof last.text, 'string', 'eof is answered with a final result');
    assert.equal(closed.code, 1000, 'then the server closes normally');

    const dialect = textOf([...results, last]);
    const werDialect = wer(clip.reference, dialect);
    const werNative = wer(clip.reference, native);
    t.diagnostic(`WER vosk ${werDialect.toFixed(3)} vs native ${werNative.toFixed(3)}\n  vosk:   ${dialect}\n  native: ${native}`);
    assert.ok(Math.abs(werDialect - werNative) <= 0.02, `WER ${werDialect.toFixed(3)} (Vosk) vs ${werNative.toFixed(3)} (native)`);
  });

  describe('on one server', () => {
    let server: RunningServer;
    before(async () => {
      server = await reproducibleServer();
    });
    after(() => server?.close());

    test('at /vosk, in real time: partial hypotheses; bad messages get one {"error", "code"} reply each and the session goes on; words and alternatives options', async (t) => {
      if (!haveAssets(t, CLIP_WAV)) return;
      const full = await loadClip();
      // The first sentence only, with a second of silence so that it ends as a result before eof.
      const clip: ClipPcm = { ...full, pcm: Buffer.concat([full.pcm.subarray(0, 4.5 * 32000), Buffer.alloc(32000)]) };
      const errors: Reply[] = [];
      const session = await voskSession(`${server.url}/vosk`, clip, {
        // Real time: partials (previews, dropped first when workers are busy) have time to come back.
        speed: 1,
        config: { words: 0, max_alternatives: 1 },
        before: async (client) => {
          errors.push(await client.request('hello'));
          errors.push(await client.request(JSON.stringify({ reset: 1 })));
          errors.push(await client.request(new Uint8Array(2))); // and audio is still answered, with a partial
        },
      });
      assert.deepEqual(
        errors.map((e) => e.code),
        ['invalid_json', 'unknown_message_type', undefined],
      );
      for (const e of errors.slice(0, 2)) assert.ok(typeof e.error === 'string' && (e.error as string).length > 0);
      assert.equal(errors[2].partial, '');
      assert.ok(
        session.replies.some((r) => typeof r.partial === 'string' && r.partial.length > 0),
        'partial hypotheses arrived while the sentence went on',
      );
      const results = [...session.replies, session.last].filter((r) => 'alternatives' in r) as Array<{ alternatives: Array<Record<string, unknown>> }>;
      assert.ok(results.length >= 1, 'max_alternatives > 0: results as {"alternatives": [...]}');
      for (const r of results) {
        assert.equal(r.alternatives.length, 1);
        assert.equal(typeof r.alternatives[0].confidence, 'number');
        assert.ok(!('result' in r.alternatives[0]), 'words: 0 → no word list');
      }
      const text = results.map((r) => r.alternatives[0].text).join(' ');
      t.diagnostic(`first sentence: ${text}`);
      assert.match(text, /בלבד/);
      assert.equal(session.closed.code, 1000);
    });

    test('a config it cannot use ends the session with an error and 1008', async () => {
      const client = await VoskClient.open(`${server.url}/v1/vosk`);
      const reply = await client.request(JSON.stringify({ config: { sample_rate: 4000 } }));
      assert.equal(reply.code, 'unsupported_sample_rate');
      assert.equal((await client.closed).code, 1008);
    });
  });
});
