/**
 * Fuzz: over 10,000 random and mutated frames (binary and text, over several concurrent sessions),
 * plus connections that break the WebSocket framing itself, while a well-behaved session streams a
 * Hebrew clip at real-time pace. The server must stay up, answer every bad frame with an error code
 * (counted: each frame gets exactly the code it deserves), and the good session's transcript must
 * match a clean run (WER within 0.02).
 *
 * Seeded: KOL_FUZZ_SEED=<n> replays a run (the seed is printed).
 */
// test-cores: 1 (one good session at real-time pace; the fuzz frames never reach a worker: measured 1.1 cores; scripts/test.js)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { toKolError, type ErrorCode } from '../../engine/errors.js';
import { wordErrorRate } from '../../engine/wer.js';
import { streamAudio, type StreamResult } from '../../clients/cli/stream-client.js';
import type { RunningServer } from '../app.js';
import { parseClientMessage } from '../dialects/protocol.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { clipS16, heClip, RecordingClient, sleep, waitUntil } from '../../test/helpers/production.js';
import { startTestServer } from '../../test/helpers/server.js';
import { seeded } from '../../test/helpers/signals.js';

const SEED = Number(process.env.KOL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const FUZZ_SESSIONS = 4;
const FRAMES_PER_SESSION = 2600;
/** Fuzz sessions use a wide format so that the pace limit (which counts text frames) never kicks in; a sample frame is 32 bytes. */
const FUZZ_QUERY = '?sample_rate=192000&encoding=pcm_f32le&channels=8';
const SAMPLE_FRAME_BYTES = 4 * 8;
const MAX_FRAME_BYTES = 256 * 1024;

const rng = seeded;

type Frame = { binary: boolean; data: Buffer; expected: ErrorCode };

class FrameFactory {
  private readonly r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.r() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** Random text of valid UTF-8: ASCII, Hebrew, JSON punctuation, emoji, control characters. */
  text(n: number): string {
    const pools = ['{}[]":,\\ ', 'abcxyz019-+.eE', 'אבגדהוזחטיכלמנסעפצקרשת', '\u0000\u0001\u001f\t\n\r', '😀🎤\u2028\u200f', 'typeconfigaudioflusheofdata'];
    let out = '';
    for (let i = 0; i < n; i++) out += this.pick([...this.pick(pools)]);
    return out;
  }

  valid(): Record<string, unknown> {
    return this.pick([
      () => ({ type: 'config', language: 'he', partials: this.r() < 0.5, endpoint_ms: 500 }),
      () => ({ type: 'config', sample_rate: this.pick([8000, 16000, 3, -1, 1e12, 'x', null]), encoding: this.pick(['pcm_s16le', 'mp3', 7]) }),
      () => ({ type: 'audio', data: this.bytes(this.int(200)).toString('base64') }),
      () => ({ type: 'flush' }),
      () => ({ type: 'eof' }),
    ])();
  }

  /** A valid-looking message, mutated at the character level (never breaking UTF-8). */
  mutated(): string {
    let s = JSON.stringify(this.valid());
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(s.length + 1);
      switch (this.int(8)) {
        case 0:
          s = s.slice(0, at) + s.slice(at + 1); // delete
          break;
        case 1:
          s = s.slice(0, at) + this.text(1 + this.int(3)) + s.slice(at); // insert
          break;
        case 2:
          s = s.slice(0, at) + this.text(1) + s.slice(at + 1); // replace
          break;
        case 3:
          s = s.slice(0, at); // truncate
          break;
        case 4:
          s = s.replace(/"type":"\w+"/, `"type":${this.pick(['"transcribe"', '1', 'null', '[]', '{"a":1}', '"CONFIG"', '""'])}`);
          break;
        case 5:
          s = s.replace(/}$/, `,"${this.pick(['extra', 'data', 'type', '__proto__', 'constructor'])}":${this.pick(['1', '"x"', 'null', '{}', '[1,2]'])}}`);
          break;
        case 6:
          s = s.replace(/"data":"[^"]*"/, `"data":${this.pick(['123', 'null', '"***"', '"QQ"', '"QUJD"', `"${'A'.repeat(1 + this.int(9))}"`, '"a b c"'])}`);
          break;
        default:
          s = this.pick(['[', '{"type":', '[[[[[[[[[[]]]]]]]]]]', `${'['.repeat(5000)}${']'.repeat(5000)}`, '1e999', '"\\ud800"', 'true', 'null', '{}', '[]']) + (this.r() < 0.3 ? s : '');
      }
    }
    return s;
  }

  /** One frame the server must reject, with the code it must answer (regenerated until one is bad). */
  bad(): Frame {
    for (;;) {
      const kind = this.r();
      let binary: boolean;
      let data: Buffer;
      if (kind < 0.3) {
        binary = true;
        data = this.bytes(1 + this.int(4000));
      } else if (kind < 0.305) {
        binary = this.r() < 0.5;
        // Over maxFrameBytes, under ws's hard limit of 4 × that (ASCII text, so characters are bytes).
        const size = MAX_FRAME_BYTES + 1 + this.int(MAX_FRAME_BYTES);
        data = binary ? this.bytes(size) : Buffer.from(`{"type":"audio","data":"${'A'.repeat(size)}"}`);
      } else if (kind < 0.5) {
        binary = false;
        data = Buffer.from(this.text(1 + this.int(300)));
      } else {
        binary = false;
        data = Buffer.from(this.mutated());
      }
      const expected = expectedError(binary, data);
      if (expected) return { binary, data, expected };
    }
  }
}

/** What the server must answer to one frame of a fuzz session that has started its audio, or null when the frame is acceptable. */
function expectedError(binary: boolean, data: Buffer): ErrorCode | null {
  if (data.length > MAX_FRAME_BYTES) return 'frame_too_large';
  if (binary) return data.length % SAMPLE_FRAME_BYTES === 0 ? null : 'odd_pcm_length';
  let message;
  try {
    message = parseClientMessage(data.toString('utf8'));
  } catch (err) {
    return toKolError(err).code; // as native.ts reports it
  }
  switch (message.type) {
    case 'config':
      return 'config_after_audio';
    case 'audio': {
      const pcm = Buffer.from(message.data, 'base64');
      return pcm.length % SAMPLE_FRAME_BYTES === 0 ? null : 'odd_pcm_length';
    }
    default:
      return null; // a valid flush or eof is not an error
  }
}

/** Sends the frames in bursts, waiting for the socket to drain; resolves when all are sent. */
async function sendAll(ws: WebSocket, frames: Frame[]): Promise<void> {
  for (let i = 0; i < frames.length; i++) {
    ws.send(frames[i].data, { binary: frames[i].binary });
    if (i % 50 === 49) {
      await sleep(2);
      while (ws.bufferedAmount > 1 << 20) await sleep(5);
    }
  }
}

/** A raw TCP client that upgrades, then sends bytes that break the WebSocket framing. Resolves with what the server did. */
function rawGarbage(port: number, garbage: Buffer, upgrade: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no reaction within 5 s');
    }, 5000);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (upgrade && !upgraded && received.includes('\r\n\r\n')) {
        upgraded = true;
        const end = received.indexOf('\r\n\r\n') + 4;
        if (!received.subarray(0, end).toString().startsWith('HTTP/1.1 101')) return;
        received = received.subarray(end);
        socket.write(garbage);
      }
      // The server's close frame (after its `ready` message) is its answer; we need not reply.
      const code = upgrade && upgraded ? closeCodeIn(received) : null;
      if (code !== null) {
        clearTimeout(timer);
        resolve(`close ${code}`);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      if (!upgrade) return resolve(received.toString('latin1').split('\r\n')[0]);
      // A close frame: 0x88, a length, then the status code.
      const code = closeCodeIn(received);
      resolve(code !== null ? `close ${code}` : 'closed without a close frame');
    });
    socket.on('connect', () => {
      if (upgrade) {
        socket.write(
          'GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      } else {
        socket.write(garbage);
      }
    });
  });
}

/** Walks the server's (unmasked) frames; the status code of a close frame among them, if complete. */
function closeCodeIn(bytes: Buffer): number | null {
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at] & 0x0f;
    let length = bytes[at + 1] & 0x7f;
    let header = 2;
    if (length === 126) {
      if (at + 4 > bytes.length) return null;
      length = bytes.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      if (at + 10 > bytes.length) return null;
      length = Number(bytes.readBigUInt64BE(at + 2));
      header = 10;
    }
    if (at + header + length > bytes.length) return null;
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(at + header) : 1005;
    at += header + length;
  }
  return null;
}

function finalText(result: StreamResult): string {
  return result.finals.map((f) => f.text).filter(Boolean).join(' ');
}

describe('fuzzing the WebSocket endpoint while a good session streams', () => {
  let server: RunningServer;
  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    server = await startTestServer();
  });
  after(() => server?.close());

  test(`${FUZZ_SESSIONS * FRAMES_PER_SESSION}+ bad frames: every one answered with its error code, the server stays up, the good transcript is intact`, async (t) => {
    const clip = heClip('Credit_Rating_0006');
    if (!haveAssets(t, REAL_MODEL, clip.wav)) return;
    t.diagnostic(`seed ${SEED} (KOL_FUZZ_SEED=${SEED} replays this run)`);
    // 1.5 s of silence after the speech: every segment ends on a pause, none on eof (where a final
    // computed speculatively during the pause and one computed at eof may differ by a trailing word).
    const speech = await clipS16(clip);
    const audio = new Uint8Array(speech.length + 1.5 * 32000);
    audio.set(speech);
    const url = `${server.url}/v1/stream`;

    // Partials off for the good session: with them, whether a final was computed speculatively during
    // the pause (or had to wait for a worker a partial held) depends on timing, and the same audio can
    // come out a word different from run to run even without any fuzz. Without partials the path is
    // the same every time, so a difference would be the fuzz's doing.
    const goodUrl = `${url}?partials=false`;
    const t0 = performance.now();
    const clean = await streamAudio({ url: goodUrl, audio, speed: 1 });
    const phase = (what: string) => t.diagnostic(`${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    phase('clean run done');
    assert.equal(clean.closeCode, 1000);
    const cleanText = finalText(clean);
    assert.ok(cleanText.length > 0, 'the clean run has a transcript');

    // The fuzz sessions, each started with one sample frame of audio so that its audio has begun
    // (after which every config message is config_after_audio, whatever it holds). A rejected frame
    // would not do: it is not audio.
    const factory = new FrameFactory(SEED);
    const sessions = await Promise.all(
      Array.from({ length: FUZZ_SESSIONS }, async () => {
        const client = await RecordingClient.open(`${url}${FUZZ_QUERY}`);
        await client.waitFor((m) => m.type === 'ready');
        client.ws.send(Buffer.alloc(SAMPLE_FRAME_BYTES));
        const frames = Array.from({ length: FRAMES_PER_SESSION }, () => factory.bad());
        return { client, frames };
      }),
    );
    const garbageFactory = new FrameFactory(SEED + 1);
    const breakers: Array<Promise<string>> = [];
    const good = streamAudio({ url: goodUrl, audio, speed: 1 });
    const started = performance.now();

    // Connections that break the protocol below the JSON level; each must be closed, never hang the server.
    for (let i = 0; i < 20; i++) {
      // Invalid UTF-8 in a text frame: closed with 1007.
      breakers.push(
        (async () => {
          const c = await RecordingClient.open(url);
          c.ws.send(Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), garbageFactory.bytes(garbageFactory.int(50))]), { binary: false });
          return `close ${(await c.closed).code}`;
        })(),
      );
      // Broken framing after the upgrade: an unmasked frame, a reserved opcode, or RSV bits set.
      const head = garbageFactory.pick([0x81, 0x83, 0x8b, 0xc1, 0xa2, 0x92]);
      const masked = head === 0x81 ? 0x05 : 0x85;
      breakers.push(rawGarbage(server.port, Buffer.concat([Buffer.from([head, masked]), garbageFactory.bytes(4 + garbageFactory.int(60))]), true));
      // Not HTTP at all.
      breakers.push(rawGarbage(server.port, Buffer.concat([garbageFactory.bytes(1 + garbageFactory.int(200)), Buffer.from('\r\n\r\n')]), false));
    }
    // Over 4 × maxFrameBytes: ws's hard limit, 1009.
    for (let i = 0; i < 3; i++) {
      breakers.push(
        (async () => {
          const c = await RecordingClient.open(url);
          c.ws.send(garbageFactory.bytes(4 * MAX_FRAME_BYTES + 1 + garbageFactory.int(1000)));
          return `close ${(await c.closed).code}`;
        })(),
      );
    }

    await Promise.all(sessions.map(({ client, frames }) => sendAll(client.ws, frames)));
    const sendSeconds = (performance.now() - started) / 1000;
    phase('fuzz frames sent');
    // Every bad frame is answered.
    for (const { client, frames } of sessions) {
      await waitUntil(() => client.errors().length >= frames.length, 30_000, `${frames.length} errors (have ${client.errors().length})`);
    }
    phase('every fuzz frame answered');
    const outcomes = await Promise.all(breakers);
    phase('protocol breakers done');
    const goodResult = await good;
    phase('good session done');

    const total = sessions.reduce((n, s) => n + s.frames.length, 0);
    const byCode = new Map<string, { expected: number; got: number }>();
    for (const { client, frames } of sessions) {
      await sleep(200); // nothing more should arrive
      assert.equal(client.errors().length, frames.length, 'exactly one error per bad frame');
      for (const f of frames) {
        const entry = byCode.get(f.expected) ?? { expected: 0, got: 0 };
        entry.expected++;
        byCode.set(f.expected, entry);
      }
      for (const e of client.errors()) {
        const entry = byCode.get(e.code) ?? { expected: 0, got: 0 };
        entry.got++;
        byCode.set(e.code, entry);
        assert.equal(e.fatal, false, 'a bad frame never ends the session');
      }
      assert.equal(client.ws.readyState, WebSocket.OPEN, 'the fuzzed session is still open');
      client.ws.close();
    }
    t.diagnostic(`${total} bad frames sent in ${sendSeconds.toFixed(1)} s over ${FUZZ_SESSIONS} sessions; answered by code: ${[...byCode].map(([code, n]) => `${code} ${n.got}`).join(', ')}`);
    for (const [code, n] of byCode) assert.equal(n.got, n.expected, `${code}: expected ${n.expected}, got ${n.got}`);
    assert.ok(total >= 10_000);

    const reactions = new Map<string, number>();
    for (const o of outcomes) reactions.set(o, (reactions.get(o) ?? 0) + 1);
    t.diagnostic(`${outcomes.length} protocol-breaking connections: ${[...reactions].map(([o, n]) => `${o} ×${n}`).join(', ')}`);
    for (const o of outcomes) assert.match(o, /^(close 100[279]|HTTP\/1\.1 400 Bad Request)$/, `every protocol-breaking connection was refused or closed (got "${o}")`);

    assert.equal(goodResult.closeCode, 1000, 'the good session closed normally');
    // The pipeline is not bit-for-bit reproducible from run to run even without fuzz (seen here: a
    // trailing word of the clip's last, cut-off syllable comes and goes). So "matches a clean run"
    // means: within 0.02 of the clean run before the fuzz, or, failing that, of a second clean run after it.
    const fuzzed = finalText(goodResult);
    const cleanTexts = [cleanText];
    let difference = wordErrorRate(cleanText, fuzzed).wer;
    if (difference > 0.02) {
      const again = finalText(await streamAudio({ url: goodUrl, audio, speed: 1 }));
      cleanTexts.push(again);
      difference = Math.min(difference, wordErrorRate(again, fuzzed).wer);
    }
    t.diagnostic(`clean ${cleanTexts.map((c) => `"${c}"`).join(' / ')} | under fuzz "${fuzzed}" (WER ${difference.toFixed(3)})`);
    assert.ok(difference <= 0.02, `the good session's transcript matches a clean run (WER ${difference.toFixed(3)})`);
    assert.ok(!goodResult.messages.some((m) => m.message.type === 'error'), 'the good session saw no errors');

    const health = await fetch(`${server.url.replace(/^ws/, 'http')}/healthz`);
    assert.equal(health.status, 200, 'the server is up');
  });
});
