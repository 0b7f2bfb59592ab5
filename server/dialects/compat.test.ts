/**
 * The compatibility dialects' pure parts, without a server: audio re-framing and G.711, container
 * sniffing, and how vendor parameters map to the session configuration.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKolError } from '../../engine/errors.js';
import type { SessionConfig } from '../session-config.js';
import { alawToLinear, sniffContainer, ulawToLinear, WireAudio } from './audio.js';
import { parseDeepgramQuery } from './deepgram.js';
import { applyRealtimeUpdate, defaultRealtimeState, realtimeSessionConfig } from './openai.js';

const BASE: SessionConfig = { sample_rate: 16000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: true, endpoint_ms: 500, prompt: '', room: null };

function wavHeader(format: number, bits: number, rate: number, channels: number, extra = 0): Buffer {
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(format, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(rate, 4);
  fmt.writeUInt32LE((rate * channels * bits) / 8, 8);
  fmt.writeUInt16LE((channels * bits) / 8, 12);
  fmt.writeUInt16LE(bits, 14);
  const list = extra > 0 ? Buffer.concat([Buffer.from('LIST'), Buffer.from([extra, 0, 0, 0]), Buffer.alloc(extra)]) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVE'), Buffer.from('fmt '), Buffer.from([16, 0, 0, 0]), fmt, list, Buffer.from('data'), Buffer.alloc(4)]);
}

describe('compat audio', () => {
  test('G.711 μ-law and A-law decode to the ITU-T values', () => {
    assert.equal(ulawToLinear(0xff), 0);
    assert.equal(ulawToLinear(0x7f), 0);
    assert.equal(ulawToLinear(0x00), -32124);
    assert.equal(ulawToLinear(0x80), 32124);
    assert.equal(alawToLinear(0xd5), 8);
    assert.equal(alawToLinear(0x55), -8);
    assert.equal(alawToLinear(0x2a), -32256);
    assert.equal(alawToLinear(0xaa), 32256);
  });

  test('a sample split across frames is carried over, so any cut of the byte stream gives the same samples', () => {
    const stream = Buffer.alloc(4000);
    for (let i = 0; i < 2000; i++) stream.writeInt16LE((i * 37) % 30000 - 15000, i * 2);
    const wire = new WireAudio('linear16', 2);
    const out: Buffer[] = [];
    for (let offset = 0; offset < stream.length; offset += 333) out.push(Buffer.from(wire.push(stream.subarray(offset, offset + 333))));
    const joined = Buffer.concat(out);
    assert.equal(joined.length % 4, 0, 'whole stereo frames only');
    assert.ok(joined.equals(stream.subarray(0, joined.length)));
    assert.equal(joined.length + wire.pending, stream.length);
  });

  test('μ-law becomes s16 (twice the bytes); 32-bit integer PCM becomes float', () => {
    const mulaw = new WireAudio('mulaw');
    assert.equal(mulaw.sessionEncoding, 'pcm_s16le');
    const s16 = Buffer.from(mulaw.push(new Uint8Array([0xff, 0x00, 0x80])));
    assert.deepEqual([s16.readInt16LE(0), s16.readInt16LE(2), s16.readInt16LE(4)], [0, -32124, 32124]);
    const linear32 = new WireAudio('linear32');
    assert.equal(linear32.sessionEncoding, 'pcm_f32le');
    const input = Buffer.alloc(8);
    input.writeInt32LE(-2147483648, 0);
    input.writeInt32LE(1073741824, 4);
    const f32 = Buffer.from(linear32.push(input));
    assert.deepEqual([f32.readFloatLE(0), f32.readFloatLE(4)], [-1, 0.5]);
  });

  test('sniffing: WAV headers (with extra chunks, arriving in pieces), raw PCM, containers it cannot decode', () => {
    const header = wavHeader(1, 16, 44100, 2, 26);
    assert.deepEqual(sniffContainer(header.subarray(0, 20)), { kind: 'need_more' });
    assert.deepEqual(sniffContainer(header), { kind: 'wav', encoding: 'linear16', sampleRate: 44100, channels: 2, dataOffset: header.length });
    assert.equal((sniffContainer(wavHeader(7, 8, 8000, 1)) as { encoding: string }).encoding, 'mulaw');
    assert.equal((sniffContainer(wavHeader(3, 32, 48000, 1)) as { encoding: string }).encoding, 'float32');
    assert.throws(() => sniffContainer(wavHeader(1, 24, 48000, 1)), (err) => isKolError(err, 'unsupported_encoding'));
    assert.deepEqual(sniffContainer(Buffer.from([0xff, 0xff, 0x00, 0x00, 0x10, 0x00])), { kind: 'raw' }, 'quiet s16 samples are not an MP3 frame');
    assert.throws(() => sniffContainer(Buffer.from('ID3\x04\x00\x00\x00\x00')), (err) => isKolError(err, 'unsupported_encoding'));
    assert.throws(() => sniffContainer(Buffer.from('OggS\x00\x02\x00\x00')), (err) => isKolError(err, 'unsupported_encoding'));
  });
});

describe('Deepgram query parameters', () => {
  const parse = (query: string) => parseDeepgramQuery(new URLSearchParams(query), BASE);

  test("Deepgram's defaults: no interim results, our endpoint, our language; linear16 at 16 kHz when no encoding is named", () => {
    const { config, options } = parse('model=nova-3');
    assert.equal(options.interimResults, false);
    assert.equal(config.partials, false);
    assert.equal(options.endpointing, true);
    assert.equal(config.endpoint_ms, 500);
    assert.equal(config.language, 'he');
    assert.equal(options.encoding, null, 'no encoding: a WAV header is looked for');
    assert.equal(options.vadEvents, false);
    assert.equal(options.utteranceEndMs, null);
    assert.equal(options.punctuate, false);
  });

  test('the parameters map onto the session', () => {
    const { config, options } = parse('encoding=mulaw&channels=2&language=en-US&interim_results=true&endpointing=10&utterance_end_ms=1000&vad_events=true&smart_format=true&keyterm=Kol&keywords=Tel%20Aviv:2');
    assert.deepEqual(
      { ...config },
      { ...BASE, sample_rate: 8000, channels: 2, language: 'en', partials: true, endpoint_ms: 100, prompt: 'Kol, Tel Aviv' },
    );
    assert.equal(options.encoding, 'mulaw');
    assert.equal(options.punctuate, true);
    assert.equal(parse('endpointing=false').options.endpointing, false);
    assert.equal(parse('endpointing=9000').config.endpoint_ms, 5000);
    assert.equal(parse('encoding=linear32&sample_rate=48000').config.encoding, 'pcm_f32le');
    assert.equal(parse('language=multi').config.language, 'auto');
  });

  test('bad values are KolErrors with our codes', () => {
    assert.throws(() => parse('encoding=opus'), (err) => isKolError(err, 'unsupported_encoding'));
    assert.throws(() => parse('encoding=linear16&sample_rate=4000'), (err) => isKolError(err, 'unsupported_sample_rate'));
    assert.throws(() => parse('interim_results=yes'), (err) => isKolError(err, 'invalid_config'));
    assert.throws(() => parse('language=hebrew'), (err) => isKolError(err, 'invalid_config'));
  });
});

describe('OpenAI Realtime session updates', () => {
  const initial = defaultRealtimeState('kol', 500);

  test('defaults: pcm16 at 24 kHz, server VAD, our language, no partials', () => {
    assert.deepEqual(realtimeSessionConfig(initial, BASE), { ...BASE, sample_rate: 24000, partials: false });
  });

  test('the GA shape: audio.input.format / transcription / turn_detection', () => {
    const next = applyRealtimeUpdate(
      initial,
      {
        type: 'transcription',
        audio: { input: { format: { type: 'audio/pcm', rate: 16000 }, transcription: { model: 'gpt-4o-transcribe', language: 'en', prompt: 'Kol' }, turn_detection: { type: 'server_vad', silence_duration_ms: 800 } } },
      },
      500,
    );
    assert.deepEqual(realtimeSessionConfig(next, BASE), { ...BASE, sample_rate: 16000, language: 'en', prompt: 'Kol', endpoint_ms: 800, partials: false });
    assert.equal(next.transcription.model, 'gpt-4o-transcribe');
    const g711 = applyRealtimeUpdate(next, { type: 'transcription', audio: { input: { format: { type: 'audio/pcmu' } } } }, 500);
    assert.equal(realtimeSessionConfig(g711, BASE).sample_rate, 8000);
  });

  test('the beta flat shape, and turn_detection null (manual commits)', () => {
    const next = applyRealtimeUpdate(initial, { input_audio_format: 'g711_alaw', input_audio_transcription: { language: 'he' }, turn_detection: null }, 500);
    assert.deepEqual(next.format, { type: 'audio/pcma' });
    assert.equal(next.turnDetection, null);
    assert.equal(realtimeSessionConfig(next, BASE).endpoint_ms, 500);
    const untouched = applyRealtimeUpdate(next, { input_audio_transcription: { prompt: 'x' } }, 500);
    assert.equal(untouched.turnDetection, null, 'fields not present are not changed');
  });

  test('bad fields name the parameter', () => {
    const check = (session: unknown, code: string, param: string) =>
      assert.throws(
        () => realtimeSessionConfig(applyRealtimeUpdate(initial, session, 500), BASE),
        (err) => isKolError(err) && err.code === code && (err as { param?: string }).param === param,
      );
    check({ type: 'transcription', audio: { input: { format: { type: 'audio/pcm', rate: 4000 } } } }, 'unsupported_sample_rate', 'session.audio.input.format.rate');
    check({ type: 'transcription', audio: { input: { format: { type: 'audio/mp3' } } } }, 'unsupported_encoding', 'session.audio.input.format.type');
    check({ input_audio_format: 'opus' }, 'unsupported_encoding', 'session.input_audio_format');
    check({ type: 'transcription', audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: -1 } } } }, 'invalid_config', 'session.audio.input.turn_detection.silence_duration_ms');
    check({ type: 'conversation' }, 'invalid_config', 'session.type');
  });
});
