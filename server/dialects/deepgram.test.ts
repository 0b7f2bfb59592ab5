/**
 * The Deepgram-compatible endpoint driven by Deepgram's own SDK (@deepgram/sdk, pinned), pointed at
 * this server with `baseUrl` and nothing else changed: a real Hebrew clip, real workers, real model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DeepgramClient } from '@deepgram/sdk';
import type { RunningServer } from '../app.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { CLIP_TXT, CLIP_WAV, loadClip, nativeText, paced, reproducibleServer, until, wer, withReproducibleServer } from '../../test/helpers/compat.js';

const KEY = 'compat-deepgram-test-key';
/** The pace both sides of the WER comparison share (the gateway allows up to 4× real time). */
const SPEED = 2;

type Message = Record<string, unknown> & { type: string };

/** One live session through the SDK: connect, stream, control messages, until the server closes. */
async function deepgramSession(
  serverUrl: string,
  params: Record<string, string | number>,
  drive: (socket: Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>, messages: Message[]) => Promise<void>,
): Promise<{ messages: Message[]; closeCode: number }> {
  const client = new DeepgramClient({ apiKey: KEY, baseUrl: serverUrl });
  const socket = await client.listen.v1.connect({ model: 'nova-3', ...params, Authorization: `Token ${KEY}`, reconnectAttempts: 0 });
  const messages: Message[] = [];
  let closeCode: number | null = null;
  socket.on('message', (message) => messages.push(message as unknown as Message));
  socket.on('close', (event) => {
    closeCode ??= event.code;
  });
  socket.on('error', () => {});
  socket.connect();
  await socket.waitForOpen();
  await drive(socket, messages);
  await until(() => closeCode !== null, 60_000, 'the server to close the Deepgram session');
  return { messages, closeCode: closeCode! };
}

const results = (messages: Message[]) => messages.filter((m) => m.type === 'Results') as Array<Message & { is_final: boolean; speech_final: boolean; from_finalize: boolean; start: number; duration: number; channel: { alternatives: Array<{ transcript: string; words: Array<Record<string, unknown>> }> } }>;
const finalText = (messages: Message[]) =>
  results(messages)
    .filter((r) => r.is_final)
    .map((r) => r.channel.alternatives[0].transcript)
    .filter(Boolean)
    .join(' ');

describe('Deepgram-compatible /v1/listen through @deepgram/sdk', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  test('interim and final Results, SpeechStarted, UtteranceEnd, Metadata; final WER within 0.02 of the native endpoint', async (t) => {
    if (!haveAssets(t, CLIP_WAV, CLIP_TXT)) return;
    // Trailing silence: the last segment ends by endpointing (speech_final) and an UtteranceEnd follows.
    const clip = await loadClip({ padSeconds: 1.5 });
    const started = performance.now();
    const native = await withReproducibleServer({ apiKeys: [KEY] }, (server) => nativeText(server.url, clip, { speed: SPEED, headers: { authorization: `Bearer ${KEY}` } }));
    const { messages, closeCode } = await withReproducibleServer({ apiKeys: [KEY] }, (server) =>
      deepgramSession(
        server.url,
        { language: 'he', encoding: 'linear16', sample_rate: 16000, channels: 1, interim_results: 'true', punctuate: 'true', endpointing: 500, utterance_end_ms: 1000, vad_events: 'true' },
        async (socket) => {
          await paced(clip.pcm, 32000, SPEED, (chunk) => socket.sendMedia(chunk));
          socket.sendKeepAlive({ type: 'KeepAlive' });
          socket.sendCloseStream({ type: 'CloseStream' });
        },
      ),
    );

    t.diagnostic(`native and Deepgram runs took ${Math.round(performance.now() - started)} ms`);
    const all = results(messages);
    const interim = all.filter((r) => !r.is_final);
    const finals = all.filter((r) => r.is_final);
    t.diagnostic(`messages: ${messages.map((m) => (m.type === 'Results' ? (m.is_final ? 'final' : 'interim') : m.type)).join(', ')}`);
    // (Interim results are previews that busy workers drop first: their arrival is asserted in real time below.)
    for (const r of interim) assert.ok(!r.speech_final && r.channel.alternatives[0].transcript.length > 0);
    assert.ok(finals.length >= 2, `final results arrived (${finals.length})`);
    assert.ok(finals.some((r) => r.speech_final), 'a final ended by endpointing has speech_final: true');
    for (const r of all) {
      assert.deepEqual(r.channel_index, [0, 1]);
      assert.equal(typeof r.start, 'number');
      assert.ok(r.duration >= 0);
      assert.equal(r.from_finalize, false);
      const metadata = r.metadata as { request_id: string; model_uuid: string; model_info: { name: string } };
      assert.ok(metadata.request_id && metadata.model_uuid && metadata.model_info.name, 'Results carry metadata');
    }
    const words = finals.flatMap((r) => r.channel.alternatives[0].words);
    assert.ok(words.length > 5, 'final results carry words');
    for (const w of words) {
      assert.equal(typeof w.word, 'string');
      assert.equal(typeof w.punctuated_word, 'string');
      assert.ok((w.end as number) >= (w.start as number) && (w.confidence as number) >= 0 && (w.confidence as number) <= 1);
    }
    assert.ok(messages.some((m) => m.type === 'SpeechStarted' && Array.isArray(m.channel) && typeof m.timestamp === 'number'), 'SpeechStarted (vad_events=true)');
    const utteranceEnd = messages.find((m) => m.type === 'UtteranceEnd');
    assert.ok(utteranceEnd && typeof utteranceEnd.last_word_end === 'number', 'UtteranceEnd after the trailing silence');
    const metadata = messages.at(-1)!;
    assert.equal(metadata.type, 'Metadata', 'Metadata is the last message, after CloseStream');
    assert.ok(Math.abs((metadata.duration as number) - clip.seconds) < 0.05, `Metadata.duration ${metadata.duration} ≈ ${clip.seconds}`);
    assert.equal(metadata.channels, 1);
    assert.match(metadata.sha256 as string, /^[0-9a-f]{64}$/);
    assert.equal(closeCode, 1000);

    const dialect = finalText(messages);
    const werDialect = wer(clip.reference, dialect);
    const werNative = wer(clip.reference, native);
    t.diagnostic(`WER deepgram ${werDialect.toFixed(3)} vs native ${werNative.toFixed(3)}\n  deepgram: ${dialect}\n  native:   ${native}`);
    assert.ok(Math.abs(werDialect - werNative) <= 0.02, `WER ${werDialect.toFixed(3)} (Deepgram) vs ${werNative.toFixed(3)} (native)`);
  });

  describe('on one server', () => {
    let server: RunningServer;
    before(async () => {
      server = await reproducibleServer({ apiKeys: [KEY] });
    });
    after(() => server?.close());

    test('in real time, WAV without encoding, cut anywhere: interim results; malformed messages get Error with our code and the session goes on; Finalize', async (t) => {
      if (!haveAssets(t, CLIP_WAV)) return;
      const wav = fs.readFileSync(CLIP_WAV);
      const bytesPerSecond = 32000;
      const firstPart = 44 + 6 * bytesPerSecond; // header + 6 s: the second sentence is under way
      const { messages, closeCode } = await deepgramSession(server.url, { language: 'he', interim_results: 'true', endpointing: 'false' }, async (socket, received) => {
        // Odd-sized chunks: samples split across frames must be carried over, not rejected.
        const send = (bytes: Uint8Array) => {
          for (let offset = 0; offset < bytes.length; offset += 3001) socket.sendMedia(bytes.subarray(offset, offset + 3001));
        };
        await paced(wav.subarray(0, firstPart), bytesPerSecond, 1, send, 250);
        const raw = socket.socket as unknown as { send: (data: string) => void };
        raw.send('{"type": "Finalize"'); // broken JSON
        raw.send(JSON.stringify({ type: 'Transcribe' }));
        // The session survived both: Finalize still works, and the first half-second of the next audio is taken.
        socket.sendFinalize({ type: 'Finalize' });
        await until(() => received.some((m) => m.type === 'Results' && m.from_finalize === true), 30_000, 'a from_finalize result');
        socket.sendMedia(wav.subarray(firstPart, firstPart + 16000));
        socket.sendCloseStream({ type: 'CloseStream' });
      });

      const errors = messages.filter((m) => m.type === 'Error');
      assert.deepEqual(
        errors.map((e) => e.code),
        ['invalid_json', 'unknown_message_type'],
      );
      for (const e of errors) assert.ok(typeof e.description === 'string' && e.description.length > 0 && e.fatal === false);
      const all = results(messages);
      assert.ok(
        all.some((r) => !r.is_final && r.channel.alternatives[0].transcript.length > 0),
        'interim results (is_final: false) arrived while a sentence went on',
      );
      assert.ok(all.every((r) => r.speech_final === false), 'endpointing=false: never speech_final');
      assert.ok(all.some((r) => r.from_finalize), 'Finalize → a result with from_finalize: true');
      const flushed = all.find((r) => r.from_finalize)!;
      assert.ok(flushed.start > 4 && flushed.start + flushed.duration <= 6.1, `the Finalize result covers the speech under way (${flushed.start}+${flushed.duration})`);
      assert.equal(messages.at(-1)?.type, 'Metadata');
      assert.ok(Math.abs((messages.at(-1)!.duration as number) - 6.5) < 0.05, `Metadata.duration ${messages.at(-1)!.duration} counts the WAV's audio`);
      assert.equal(closeCode, 1000);
    });

    test('an unsupported encoding: Error with unsupported_encoding, then a 1008 close', async () => {
      const { messages, closeCode } = await deepgramSession(server.url, { encoding: 'opus' }, async () => {});
      assert.equal(messages[0]?.type, 'Error');
      assert.equal(messages[0]?.code, 'unsupported_encoding');
      assert.equal(messages[0]?.fatal, true);
      assert.equal(closeCode, 1008);
    });
  });
});
