/**
 * The streaming server end to end: real WebSockets into a real `kol serve` with real whisper-server
 * workers on the real base model, fed the shared recordings both at real-time pace and as fast as
 * the server accepts (its pacing limit).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { floatsToS16le } from '../engine/audio/format.js';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { corpusWer, normalizeText, wordErrorRate } from '../engine/wer.js';
import { streamAudio, type StreamResult } from '../clients/cli/stream-client.js';
import { CONTINUOUS_GAPS_S, joinClips, type BenchStream } from '../corpus/streams.js';
import { assetPath, clips, REAL_MODEL, type Clip } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { baseline } from '../test/helpers/baselines.js';
import { startTestServer, testWorkerSetup } from '../test/helpers/server.js';
import type { RunningServer } from './app.js';
import type { ServerMessage } from './dialects/protocol.js';

type Final = Extract<ServerMessage, { type: 'final' }>;
const AS_FAST_AS_ACCEPTED = Infinity;

async function clipBytes(clip: Clip): Promise<Uint8Array> {
  return floatsToS16le((await decodeAudioFile(clip.wav)).pcm);
}

function finalText(result: StreamResult): string {
  return result.finals.map((f) => f.text).filter(Boolean).join(' ');
}

/** The finals' words that fall in each utterance of a joined stream (by each word's midpoint). */
function wordsPerUtterance(stream: BenchStream, result: StreamResult): string[] {
  const words = result.finals.flatMap((f) => f.words);
  return stream.utterances.map((u, i) => {
    const next = stream.utterances[i + 1];
    const from = i === 0 ? -Infinity : (stream.utterances[i - 1].end + u.start) / 2;
    const to = next ? (u.end + next.start) / 2 : Infinity;
    return words
      .filter((w) => (w.start + w.end) / 2 >= from && (w.start + w.end) / 2 < to)
      .map((w) => w.word)
      .join(' ');
  });
}

describe('streaming over /v1/stream with the real base model', () => {
  let server: RunningServer;
  /**
   * The same server with every final decoded in full (`degradeFinals` off), for the tests that hold
   * streaming to offline accuracy. On 2 slow cores one speaker alone sometimes has a third final
   * waiting while two run; which final is then degraded depends on timing, and its cost on a short
   * segment is more than those bounds allow. Degraded finals have their own test below.
   */
  let fullAccuracy: RunningServer;
  /** kol transcribe's result per clip (the same pool, beam 5, whole file): the offline baseline. */
  const offline = new Map<string, string>();
  const heClips = clips('he');
  const jfk = clips('en').find((c) => c.name === 'jfk');

  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    [server, fullAccuracy] = await Promise.all([startTestServer(), startTestServer({ degradeFinals: false })]);
    // All at once: the pool spreads them over its workers (or the run's real-model tests decoded them already).
    const setup = await testWorkerSetup();
    await Promise.all(
      [...heClips, ...(jfk ? [jfk] : [])].map(async (clip) => {
        const { pcm } = await decodeAudioFile(clip.wav);
        const options = { language: clip === jfk ? 'en' : 'he', beamSize: 5 };
        offline.set(clip.name, await baseline(setup, pcm, options, async () => (await server.runtime.finalPool.transcribe(pcm, options)).text));
      }),
    );
  });
  after(() => Promise.all([server?.close(), fullAccuracy?.close()]));

  const url = (query = '', on: RunningServer = server) => `${on.url}/v1/stream${query}`;

  test('every Hebrew clip and jfk.wav at real-time pace: partials before long finals, finals in full within 0.04 WER of offline', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    assert.ok(jfk, 'jfk.wav is in the shared English set');
    const set = [...heClips, jfk];
    // One session at a time at real-time pace (concurrency has its own test below), each speaker
    // connecting as the one before finishes talking, while that one's last final is still on its way.
    const sessions: Array<Promise<{ clip: Clip; result: StreamResult }>> = [];
    for (const clip of set) {
      const audio = await clipBytes(clip);
      const seconds = audio.length / 32_000;
      let talked!: () => void;
      const doneTalking = new Promise<void>((resolve) => (talked = resolve));
      const session = streamAudio({ url: url(clip === jfk ? '?language=en' : '', fullAccuracy), audio, speed: 1, onChunkSent: (at) => at >= seconds && talked() });
      sessions.push(session.then((result) => ({ clip, result })));
      await Promise.race([doneTalking, session]);
    }
    const results = await Promise.all(sessions);
    const withoutPartial: string[] = [];
    let longSegments = 0;
    for (const { clip, result } of results) {
      assert.equal(result.closeCode, 1000, `${clip.name} closed normally`);
      assert.equal(result.messages.at(-1)?.message.type, 'closed');
      assert.ok(result.finals.length > 0, `${clip.name} got a final`);
      assert.ok(result.finals.every((f) => f.decoding?.degraded === false), `${clip.name}: every final decoded in full`);
      // A partial arrives before the final of segments longer than 2 s.
      for (const final of result.finals.filter((f) => f.end - f.start > 2)) {
        longSegments++;
        const finalAt = result.messages.findIndex((m) => m.message === final);
        const partialBefore = result.messages.slice(0, finalAt).some((m) => m.message.type === 'partial' && m.message.segment_id === final.segment_id);
        if (!partialBefore) withoutPartial.push(`${clip.name} segment ${final.segment_id} (${(final.end - final.start).toFixed(1)} s)`);
      }
      t.diagnostic(`${clip.name}: streamed "${finalText(result)}" | offline "${offline.get(clip.name)}"`);
    }
    // By design (engine/scheduler.ts, engine/stream.ts: a segment that ended without text is owed a
    // partial, ahead of the finals and shown before its final), not by timing.
    t.diagnostic(`long segments: ${longSegments}`);
    assert.deepEqual(withoutPartial, [], 'a partial came before the final of every segment over 2 s');
    const streamed = corpusWer(results.map(({ clip, result }) => ({ reference: clip.reference ?? '', hypothesis: finalText(result) }))).wer;
    const baseline = corpusWer(results.map(({ clip }) => ({ reference: clip.reference ?? '', hypothesis: offline.get(clip.name) ?? '' }))).wer;
    t.diagnostic(`WER streamed ${streamed.toFixed(3)}, offline ${baseline.toFixed(3)}`);
    // Offline here is each clip decoded whole. A stream cuts a clip at its pauses, and each cut costs
    // the context across it: with every final in full, +0.032 on this set (2026-12-02; mostly
    // Robo_Shaul_2_0040, cut in three). The bound leaves a word of room above that.
    assert.ok(streamed <= baseline + 0.04, `streamed WER ${streamed.toFixed(3)} within 0.04 of offline ${baseline.toFixed(3)}`);
  });

  test('continuous speech (clips joined with 0.15–0.35 s breaths) at real-time pace: no sentence lost, finals in full within 0.03 WER of offline, segments end at breaths', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    const joined = await joinClips(heClips, CONTINUOUS_GAPS_S);
    const result = await streamAudio({ url: url('', fullAccuracy), audio: new Uint8Array(joined.pcm16.buffer), speed: 1 });
    assert.equal(result.closeCode, 1000);
    const ids = result.finals.map((f) => f.segment_id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'finals arrive in segment order');
    const reasons = result.finals.map((f) => f.reason);
    t.diagnostic(`${result.finals.length} finals: ${result.finals.map((f) => `${(f.end - f.start).toFixed(1)} s ${f.reason}${f.decoding?.degraded ? ' (degraded)' : ''}`).join(', ')}`);
    assert.ok(reasons.filter((r) => r === 'silence').length > reasons.length / 2, `most segments end at a pause (${reasons.join(', ')})`);
    assert.ok(result.finals.every((f) => f.end - f.start <= 10 + 1e-6), 'no segment over the cap');
    assert.ok(result.finals.every((f) => f.decoding?.degraded === false), 'every final decoded in full');
    // No sentence lost: each clip's words are in the finals, about as well as offline.
    const perClip = wordsPerUtterance(joined, result);
    heClips.forEach((clip, i) => {
      const streamed = wordErrorRate(clip.reference ?? '', perClip[i]).wer;
      const alone = wordErrorRate(clip.reference ?? '', offline.get(clip.name) ?? '').wer;
      t.diagnostic(`${clip.name}: WER streamed ${streamed.toFixed(2)}, offline ${alone.toFixed(2)}: "${perClip[i]}"`);
      // Words are placed in clips by their times; one word may land across a 0.15 s breath.
      const slack = 0.15 + 1 / (clip.reference ?? '').split(/\s+/).length;
      assert.ok(streamed <= alone + slack, `${clip.name}: its words reached the client (WER ${streamed.toFixed(2)} vs offline ${alone.toFixed(2)})`);
    });
    const reference = heClips.map((c) => c.reference).join(' ');
    const streamed = wordErrorRate(reference, finalText(result)).wer;
    const baseline = corpusWer(heClips.map((c) => ({ reference: c.reference ?? '', hypothesis: offline.get(c.name) ?? '' }))).wer;
    t.diagnostic(`WER streamed ${streamed.toFixed(3)}, offline per clip ${baseline.toFixed(3)}`);
    assert.ok(streamed <= baseline + 0.03, `continuous-stream WER ${streamed.toFixed(3)} within 0.03 of offline ${baseline.toFixed(3)}`);
  });

  test('the same audio at the same settings gives the same finals', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    // Pauses long enough that no final meets another (nothing degraded), so the decoding is the same.
    const joined = await joinClips(heClips.filter((c) => c.name === 'Hashlama117_0009' || c.name === 'Robo_Shaul_1_0017'), [2.5]);
    const audio = new Uint8Array(joined.pcm16.buffer);
    const first = await streamAudio({ url: url(), audio, speed: 1 });
    const second = await streamAudio({ url: url(), audio, speed: 1 });
    const shape = (r: StreamResult) => r.finals.map((f) => [f.start, f.end, f.reason, f.decoding?.degraded]);
    assert.deepEqual(shape(second), shape(first), 'the same segments, decoded the same way');
    assert.ok(first.finals.every((f) => f.decoding?.degraded === false), 'one speaker at real time: nothing degraded');
    t.diagnostic(`"${finalText(first)}"`);
    assert.equal(wordErrorRate(finalText(first), finalText(second)).wer, 0, 'the same text');
  });

  test('more speech than the workers decode (joined clips as fast as accepted): finals degraded, marked, in order, each with its own text', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    const joined = await joinClips(heClips, [0.3, 1.5, 0.8, 1.1, 0.5]);
    const started = performance.now();
    const result = await streamAudio({ url: url(), audio: new Uint8Array(joined.pcm16.buffer), speed: AS_FAST_AS_ACCEPTED });
    const seconds = (performance.now() - started) / 1000;
    const degraded = result.finals.filter((f) => f.decoding?.degraded);
    t.diagnostic(`${joined.seconds.toFixed(0)} s of audio streamed in ${seconds.toFixed(1)} s; ${degraded.length} of ${result.finals.length} finals degraded`);
    assert.equal(result.closeCode, 1000);
    assert.ok(degraded.length > 0, 'a queue formed and finals were degraded');
    for (const f of degraded) assert.ok(f.decoding && f.decoding.audio_ctx < 1500, `a degraded final says how it was decoded: ${JSON.stringify(f.decoding)}`);
    const ids = result.finals.map((f) => f.segment_id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'finals arrive in segment order');
    for (let i = 1; i < result.finals.length; i++) assert.ok(result.finals[i].start >= result.finals[i - 1].end - 1e-6, 'segments do not overlap');
    // Each clip's words land in its own place: no final carries another segment's text.
    const perClip = wordsPerUtterance(joined, result);
    heClips.forEach((clip, i) => {
      const streamed = wordErrorRate(clip.reference ?? '', perClip[i]).wer;
      const alone = wordErrorRate(clip.reference ?? '', offline.get(clip.name) ?? '').wer;
      assert.ok(streamed <= alone + 0.25, `${clip.name}: its own words (WER ${streamed.toFixed(2)} vs offline ${alone.toFixed(2)}): "${perClip[i]}"`);
    });
    const reference = heClips.map((c) => c.reference).join(' ');
    const streamed = wordErrorRate(reference, finalText(result)).wer;
    const baseline = corpusWer(heClips.map((c) => ({ reference: c.reference ?? '', hypothesis: offline.get(c.name) ?? '' }))).wer;
    t.diagnostic(`WER streamed ${streamed.toFixed(3)}, offline per clip ${baseline.toFixed(3)}`);
    // Degraded decoding costs some accuracy by design (README "Decoding choices"): the bound of the
    // 4-speaker target, offline + 0.06.
    assert.ok(streamed <= baseline + 0.06, `joined-stream WER ${streamed.toFixed(3)} within 0.06 of offline ${baseline.toFixed(3)}`);
    // The server throttles to its real-time factor (4×) after a 10 s burst: it cannot have been much faster.
    assert.ok(seconds >= (joined.seconds - 10) / 4 - 1, 'pacing limit held');
  });

  // The first minute of asimov.wav, as fast as accepted: the whole 125 s goes through the real VAD
  // and segmenter in engine/vad/segmenter.test.ts, and at real time in `npm run bench`.
  test('a minute of continuous speech: segments <= 10 s, mostly ended at breaths, nothing lost or doubled at the cuts', async (t) => {
    const long = assetPath('audio', 'he', 'long', 'asimov.wav');
    if (!haveAssets(t, REAL_MODEL, long)) return;
    const pcm = (await decodeAudioFile(long)).pcm.subarray(0, 60 * 16_000);
    const [result, offlineText] = await Promise.all([
      streamAudio({ url: url(), audio: floatsToS16le(pcm), speed: AS_FAST_AS_ACCEPTED }),
      server.runtime.finalPool.transcribe(pcm, { language: 'he', beamSize: 5 }).then((r) => r.text),
    ]);
    assert.equal(result.closeCode, 1000);
    for (const f of result.finals) assert.ok(f.end - f.start <= 10 + 1e-6, `segment ${f.segment_id} is ${(f.end - f.start).toFixed(2)} s`);
    const cuts = result.finals.filter((f) => f.reason === 'max_length');
    t.diagnostic(`${result.finals.length} segments, ${cuts.length} cut at the 10 s cap`);
    assert.ok(cuts.length <= result.finals.length / 4, 'most segments end at a breath, not at the cap');
    const streamedWords = normalizeText(finalText(result)).split(' ').filter(Boolean);
    const offlineWords = normalizeText(offlineText).split(' ').filter(Boolean);
    t.diagnostic(`words: streamed ${streamedWords.length}, offline ${offlineWords.length}`);
    assert.ok(Math.abs(streamedWords.length - offlineWords.length) <= 0.1 * offlineWords.length, 'streamed word count within 10 % of offline');
    for (const cut of cuts) {
      const next = result.finals.find((f) => f.segment_id === cut.segment_id + 1);
      if (!next) continue;
      assert.ok(Math.abs(next.start - cut.end) < 1e-6, 'the next segment starts exactly at the cut');
      const before = normalizeText(cut.text).split(' ').filter(Boolean);
      const afterWords = normalizeText(next.text).split(' ').filter(Boolean);
      t.diagnostic(`cut at ${cut.end.toFixed(2)} s: "…${before.slice(-3).join(' ')}" | "${afterWords.slice(0, 3).join(' ')}…"`);
      // A word split by the cut and heard twice would end one segment and begin the next.
      for (let n = 1; n <= 3; n++) {
        if (before.length >= n && afterWords.length >= n) {
          assert.notDeepEqual(before.slice(-n), afterWords.slice(0, n), `the ${n} word(s) around the cut at ${cut.end.toFixed(2)} s are not doubled`);
        }
      }
    }
  });

  test('20 s of silence, of white noise and of babble-like noise: no final text', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    const n = 20 * 16000;
    const silence = new Float32Array(n);
    const white = new Float32Array(n);
    for (let i = 0; i < n; i++) white[i] = (Math.random() * 2 - 1) * 0.3;
    // Babble: eight different voices reversed (unintelligible, speech-shaped), summed and looped.
    const voices = await Promise.all(heClips.slice(0, 8).map(async (c) => (await decodeAudioFile(c.wav)).pcm.slice().reverse()));
    const babble = new Float32Array(n);
    for (const v of voices) for (let i = 0; i < n; i++) babble[i] += (v[i % v.length] * 0.9) / Math.sqrt(voices.length);
    const results = await Promise.all([silence, white, babble].map((pcm) => streamAudio({ url: url(), audio: floatsToS16le(pcm), speed: AS_FAST_AS_ACCEPTED })));
    for (const [i, result] of results.entries()) {
      const name = ['silence', 'white noise', 'babble'][i];
      t.diagnostic(`${name}: ${result.finals.length} finals, text "${finalText(result)}"`);
      assert.equal(result.closeCode, 1000);
      assert.equal(finalText(result), '', `${name} yields no final text`);
    }
  });

  test('8 concurrent sessions at real-time pace each get their own transcript', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    const chosen = heClips.slice(0, 8);
    const results = await Promise.all(chosen.map(async (clip) => streamAudio({ url: url(), audio: await clipBytes(clip), speed: 1 })));
    for (const [i, clip] of chosen.entries()) {
      const text = finalText(results[i]);
      const own = wordErrorRate(offline.get(clip.name) ?? '', text).wer;
      const others = chosen.filter((c) => c !== clip).map((c) => wordErrorRate(offline.get(c.name) ?? '', text).wer);
      t.diagnostic(`${clip.name}: WER vs its own offline text ${own.toFixed(2)}, vs the others' ≥ ${Math.min(...others).toFixed(2)}: "${text}"`);
      assert.ok(own <= 0.5, `${clip.name} matches its own clip (${own.toFixed(2)})`);
      assert.ok(others.every((w) => w > own), `${clip.name} got its own transcript, not another session's`);
    }
  });

  test('flush finalizes now; eof delivers every pending final, then closed, then close 1000', async (t) => {
    const clip = heClips.find((c) => c.name === 'Credit_Rating_0006');
    if (!haveAssets(t, REAL_MODEL, clip?.wav ?? 'Credit_Rating_0006.wav')) return;
    const audio = await clipBytes(clip!);
    const messages: ServerMessage[] = [];
    const ws = new WebSocket(url());
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const flushedFinal = new Promise<Final>((resolve) =>
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as ServerMessage;
        messages.push(m);
        if (m.type === 'final' && m.reason === 'flush') resolve(m);
      }),
    );
    await new Promise((resolve) => ws.once('open', resolve));
    // 2 s of speech, then flush in the middle of a sentence: a final comes without waiting for a pause.
    ws.send(audio.subarray(0, 2 * 32000));
    await new Promise((r) => setTimeout(r, 300));
    ws.send(JSON.stringify({ type: 'flush' }));
    const final = await flushedFinal;
    assert.ok(final.text.length > 0, 'the flushed segment has text');
    assert.ok(final.end <= 2.01, 'the flushed segment ends where the audio did');
    // The rest of the clip, then eof: its finals come before `closed`, then the socket closes normally.
    for (let at = 2 * 32000; at < audio.length; at += 3200) ws.send(audio.subarray(at, at + 3200));
    ws.send(JSON.stringify({ type: 'eof' }));
    assert.equal(await closed, 1000);
    const closedAt = messages.findIndex((m) => m.type === 'closed');
    assert.equal(closedAt, messages.length - 1, '`closed` is the last message');
    const finals = messages.filter((m): m is Final => m.type === 'final');
    assert.ok(finals.length >= 2, 'the rest of the clip was finalized before closing');
    assert.equal((messages[closedAt] as Extract<ServerMessage, { type: 'closed' }>).segments, finals.length);
  });

  test('malformed input gets specific error codes; the session and the server live on', async (t) => {
    if (!haveAssets(t, REAL_MODEL, ...heClips.map((c) => c.wav))) return;
    const errors: Array<{ code: string; fatal: boolean }> = [];
    const ws = new WebSocket(url());
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as ServerMessage;
      if (m.type === 'error') errors.push({ code: m.code, fatal: m.fatal });
    });
    await new Promise((resolve) => ws.once('open', resolve));
    const expectError = async (send: () => void, code: string) => {
      const before = errors.length;
      send();
      for (let i = 0; i < 100 && errors.length === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(errors[before]?.code, code, `expected ${code}, got ${JSON.stringify(errors.slice(before))}`);
      assert.equal(errors[before]?.fatal, false);
    };
    await expectError(() => ws.send('{not json'), 'invalid_json');
    await expectError(() => ws.send(JSON.stringify({ type: 'transcribe_please' })), 'unknown_message_type');
    await expectError(() => ws.send(JSON.stringify({ type: 'config', sample_rate: 3 })), 'unsupported_sample_rate');
    await expectError(() => ws.send(JSON.stringify({ type: 'config', encoding: 'mp3' })), 'unsupported_encoding');
    await expectError(() => ws.send(JSON.stringify({ type: 'audio', data: '***' })), 'invalid_base64');
    await expectError(() => ws.send(Buffer.alloc(3)), 'odd_pcm_length');
    await expectError(() => ws.send(Buffer.alloc(server.gateway.config.maxFrameBytes + 2)), 'frame_too_large');
    // The rejected frames above were not audio; one that is fixes the configuration.
    ws.send(Buffer.alloc(320));
    await expectError(() => ws.send(JSON.stringify({ type: 'config', language: 'en' })), 'config_after_audio');
    // The session still works: real audio gives a real final.
    const audio = await clipBytes(heClips[0]);
    const finals: Final[] = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as ServerMessage;
      if (m.type === 'final') finals.push(m);
    });
    const closed = new Promise((resolve) => ws.on('close', resolve));
    ws.send(audio);
    ws.send(JSON.stringify({ type: 'eof' }));
    await expectError(() => ws.send(Buffer.alloc(320)), 'session_ended');
    await closed;
    assert.ok(finals.some((f) => f.text.length > 0), 'the session transcribed after all the bad input');

    // A bad rate in the URL cannot be decoded at all: a fatal error, then close 1008.
    const bad = await streamAudio({ url: url('?sample_rate=4'), audio: new Uint8Array(0) });
    const error = bad.messages.find((m) => m.message.type === 'error')?.message;
    assert.equal(error?.type === 'error' && error.code, 'unsupported_sample_rate');
    assert.equal(bad.closeCode, 1008);
    const health = await fetch(`${server.url.replace('ws', 'http')}/healthz`);
    assert.equal(health.status, 200, 'the server is healthy');
  });

  test('a wscat-style session of JSON text frames gets the same finals as a binary one', async (t) => {
    const clip = heClips.find((c) => c.name === 'Hashlama112_0024');
    if (!haveAssets(t, REAL_MODEL, clip?.wav ?? 'Hashlama112_0024.wav')) return;
    const audio = await clipBytes(clip!);
    const [binary, text] = await Promise.all([
      streamAudio({ url: url(), audio, speed: 2 }),
      streamAudio({ url: url(), audio, speed: 2, asText: true, config: { language: 'he', partials: false } }),
    ]);
    assert.equal(text.closeCode, 1000);
    assert.ok(!text.messages.some((m) => m.message.type === 'partial'), 'partials: false was applied');
    assert.deepEqual(
      text.finals.map((f) => [f.start, f.end]),
      binary.finals.map((f) => [f.start, f.end]),
      'the same segments',
    );
    const difference = wordErrorRate(finalText(binary), finalText(text)).wer;
    t.diagnostic(`binary "${finalText(binary)}" | text "${finalText(text)}"`);
    // The same segments go to whisper; whisper.cpp on CPU is not bit-reproducible across a worker's
    // history, so an occasional word may differ (measured: at most 2 of 15 under heavy load).
    assert.ok(difference <= 0.2, `the same text (difference ${difference.toFixed(2)})`);
  });
});
