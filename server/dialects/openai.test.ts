/**
 * The OpenAI Realtime–compatible endpoint driven by the `openai` SDK's own realtime WebSocket client
 * (OpenAIRealtimeWS, pinned), with its base URL set to this server: a real Hebrew clip at OpenAI's
 * 24 kHz, real workers, real model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import type { RunningServer } from '../app.js';
import { REAL_MODEL } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { CLIP_TXT, CLIP_WAV, loadClip, nativeText, paced, reproducibleServer, until, wer, withReproducibleServer, type ClipPcm } from '../../test/helpers/compat.js';

const KEY = 'compat-openai-test-key';
/** Twice real time: see deepgram.test.ts. */
const SPEED = 2;

type Event = Record<string, unknown> & { type: string };

/**
 * The SDK always connects with wss:// (it rewrites the base URL's scheme). In production kol sits
 * behind a TLS proxy; here the SDK's own `options` pass ws a plain TCP connection instead of TLS.
 */
const plainTcp = ((options: { host: string; port: number }) => net.connect({ host: options.host, port: options.port })) as unknown as typeof net.createConnection;

interface Realtime {
  rt: OpenAIRealtimeWS;
  events: Event[];
  errors: Array<{ code?: string | null; type: string; param?: string | null; message: string }>;
  of(type: string): Event[];
  next(type: string, after?: number): Promise<Event>;
}

async function connect(server: RunningServer): Promise<Realtime> {
  const client = new OpenAI({ apiKey: KEY, baseURL: `${server.url.replace(/^ws:/, 'http:')}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-4o-transcribe', options: { createConnection: plainTcp } }, client);
  const events: Event[] = [];
  const errors: Realtime['errors'] = [];
  rt.on('event', (event: RealtimeServerEvent) => events.push(event as unknown as Event));
  rt.on('error', (err) => {
    if (err.error) errors.push(err.error);
  });
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  const of = (type: string) => events.filter((e) => e.type === type);
  const next = async (type: string, after = 0) => {
    await until(() => of(type).length > after, 60_000, type);
    return of(type)[after];
  };
  return { rt, events, errors, of, next };
}

async function appendPaced(rt: OpenAIRealtimeWS, clip: ClipPcm, pcm: Uint8Array): Promise<void> {
  await paced(pcm, clip.sampleRate * 2, SPEED, (chunk) => rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from(chunk).toString('base64') }));
}

describe('OpenAI Realtime transcription at /v1/realtime through the openai SDK', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  test('server VAD: session.created/updated, speech_started/stopped, committed, append-only deltas, completed; WER within 0.02 of native', async (t) => {
    if (!haveAssets(t, CLIP_WAV, CLIP_TXT)) return;
    // OpenAI's own format: 16-bit PCM at 24 kHz. Trailing silence lets the last turn end by VAD.
    const clip = await loadClip({ padSeconds: 1.5, sampleRate: 24000 });
    const native = await withReproducibleServer({ apiKeys: [KEY] }, (server) => nativeText(server.url, clip, { speed: SPEED, headers: { authorization: `Bearer ${KEY}` } }));
    const session = await withReproducibleServer({ apiKeys: [KEY] }, async (server) => {
      const s = await connect(server);
      await s.next('session.created');
      s.rt.send({
        type: 'session.update',
        session: {
          type: 'transcription',
          audio: {
            input: {
              format: { type: 'audio/pcm', rate: 24000 },
              transcription: { model: 'gpt-4o-transcribe', language: 'he' },
              turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
            },
          },
        },
      });
      await s.next('session.updated');
      await appendPaced(s.rt, clip, clip.pcm);
      const settled = () => {
        const started = s.of('input_audio_buffer.speech_started').length;
        return started >= 2 && s.of('conversation.item.input_audio_transcription.completed').length === started;
      };
      await until(settled, 60_000, 'every turn to be transcribed');
      s.rt.close();
      return s;
    });

    const created = session.of('session.created')[0].session as { type: string; object: string; audio: { input: { format: unknown; turn_detection: unknown } } };
    assert.equal(created.type, 'transcription');
    assert.deepEqual(created.audio.input.format, { type: 'audio/pcm', rate: 24000 });
    const updated = session.of('session.updated')[0].session as { audio: { input: { transcription: { language: string }; turn_detection: { type: string; silence_duration_ms: number } } } };
    assert.equal(updated.audio.input.transcription.language, 'he');
    assert.equal(updated.audio.input.turn_detection.type, 'server_vad');
    assert.equal(updated.audio.input.turn_detection.silence_duration_ms, 500);
    assert.deepEqual(session.errors, []);

    const events = session.events;
    const ids = (type: string) => session.of(type).map((e) => e.item_id as string);
    const started = ids('input_audio_buffer.speech_started');
    assert.ok(started.length >= 2, `speech_started per turn (${started.length})`);
    assert.deepEqual(ids('input_audio_buffer.speech_stopped'), started, 'speech_stopped for each started item');
    assert.deepEqual(ids('input_audio_buffer.committed'), started, 'committed with the item_id announced by speech_started');
    assert.deepEqual(ids('conversation.item.input_audio_transcription.completed'), started, 'completed for each committed item, in order');
    const committed = session.of('input_audio_buffer.committed');
    committed.forEach((c, i) => assert.equal(c.previous_item_id, i === 0 ? null : started[i - 1], 'previous_item_id chains the items'));
    for (const e of session.of('input_audio_buffer.speech_started')) assert.equal(typeof e.audio_start_ms, 'number');

    const deltas = session.of('conversation.item.input_audio_transcription.delta');
    assert.ok(deltas.length > 0, 'delta events arrived');
    for (const completed of session.of('conversation.item.input_audio_transcription.completed')) {
      const item = completed.item_id;
      const mine = deltas.filter((d) => d.item_id === item);
      assert.equal(mine.map((d) => d.delta).join(''), completed.transcript, 'the deltas, appended, are exactly the completed transcript');
      assert.equal(completed.content_index, 0);
      assert.equal((completed.usage as { type: string }).type, 'duration');
      const at = (e: Event) => events.indexOf(e);
      const commit = committed.find((c) => c.item_id === item)!;
      for (const d of mine) assert.ok(at(commit) < at(d) && at(d) < at(completed), 'committed → deltas → completed');
      assert.ok(typeof completed.event_id === 'string' && (completed.event_id as string).startsWith('event_'));
    }

    const dialect = session
      .of('conversation.item.input_audio_transcription.completed')
      .map((c) => c.transcript as string)
      .filter(Boolean)
      .join(' ');
    const werDialect = wer(clip.reference, dialect);
    const werNative = wer(clip.reference, native);
    t.diagnostic(`WER openai ${werDialect.toFixed(3)} vs native ${werNative.toFixed(3)}\n  openai: ${dialect}\n  native: ${native}`);
    assert.ok(Math.abs(werDialect - werNative) <= 0.02, `WER ${werDialect.toFixed(3)} (OpenAI) vs ${werNative.toFixed(3)} (native)`);
  });

  describe('on one server', () => {
    let server: RunningServer;
    before(async () => {
      server = await reproducibleServer({ apiKeys: [KEY] });
    });
    after(() => server?.close());

    test('manual turns (beta transcription_session.update, turn_detection null): errors in OpenAI shape with our code, clear drops audio, commit transcribes', async (t) => {
      if (!haveAssets(t, CLIP_WAV)) return;
      const clip = await loadClip({ sampleRate: 24000 });
      const s = await connect(server);
      await s.next('session.created');
      const raw = (event: unknown) => s.rt.socket.send(typeof event === 'string' ? event : JSON.stringify(event));

      raw({ type: 'transcription_session.update', session: { input_audio_format: 'pcm16', input_audio_transcription: { model: 'whisper-1', language: 'he' }, turn_detection: null } });
      const updated = (await s.next('transcription_session.updated')).session as { input_audio_format: string; turn_detection: unknown };
      assert.equal(updated.input_audio_format, 'pcm16');
      assert.equal(updated.turn_detection, null);

      raw('{"type": "input_audio_buffer.append", '); // broken JSON
      raw({ type: 'response.create', event_id: 'evt_client_1' });
      raw({ type: 'input_audio_buffer.append', audio: '***' });
      s.rt.send({ type: 'input_audio_buffer.commit' }); // nothing appended yet
      await until(() => s.errors.length >= 4, 10_000, 'four errors');
      assert.deepEqual(
        s.errors.map((e) => e.code),
        ['invalid_json', 'unknown_message_type', 'invalid_base64', 'audio_too_short'],
      );
      for (const e of s.errors) assert.equal(e.type, 'invalid_request_error');
      const unknown = s.of('error')[1].error as { event_id: string | null };
      assert.equal(unknown.event_id, 'evt_client_1', "the error names the client's event_id");

      // The first sentence (0–4.5 s), then clear: it must never be transcribed.
      const at = (seconds: number) => Math.round(seconds * clip.sampleRate) * 2;
      await appendPaced(s.rt, clip, clip.pcm.subarray(0, at(4.5)));
      s.rt.send({ type: 'input_audio_buffer.clear' });
      await s.next('input_audio_buffer.cleared');

      // Format changes after audio are refused; the session goes on.
      raw({ type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcm', rate: 16000 } } } } });
      await until(() => s.errors.length >= 5, 10_000, 'config_after_audio');
      assert.equal(s.errors[4].code, 'config_after_audio');

      // The second sentence (4.5–9.3 s), committed by hand.
      await appendPaced(s.rt, clip, clip.pcm.subarray(at(4.5), at(9.3)));
      s.rt.send({ type: 'input_audio_buffer.commit' });
      const committed = await s.next('input_audio_buffer.committed');
      const completed = await s.next('conversation.item.input_audio_transcription.completed');
      s.rt.close();

      assert.equal(completed.item_id, committed.item_id);
      assert.equal(committed.previous_item_id, null);
      const transcript = completed.transcript as string;
      t.diagnostic(`manual turn: ${transcript}`);
      assert.match(transcript, /הסיכון/, 'the committed sentence is transcribed');
      assert.doesNotMatch(transcript, /בלבד|אומר/, 'the cleared sentence is not');
      const deltas = s.of('conversation.item.input_audio_transcription.delta').filter((d) => d.item_id === completed.item_id);
      assert.equal(deltas.map((d) => d.delta).join(''), transcript);
      assert.equal(s.of('input_audio_buffer.speech_started').length, 0, 'no VAD events with turn_detection null');
    });
  });
});
