import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import wavefile from 'wavefile';
import { assetPath, clips } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { chunk, listChunk, u32, wavBytes } from '../../test/helpers/wav-bytes.js';
import { isKolError } from '../errors.js';
import { decodeAudioFile, encodeWav16k } from './wav.js';
import { floatToS16 } from './format.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-wav-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Buffer | string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function samplesOf(writeOne: (b: Buffer, value: number, offset: number) => void, size: number, values: number[]): Buffer {
  const b = Buffer.alloc(values.length * size);
  values.forEach((v, i) => writeOne(b, v, i * size));
  return b;
}

function sine(hz: number, rate: number, seconds: number): number[] {
  return Array.from({ length: Math.round(rate * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate));
}

function closeTo(actual: ArrayLike<number>, expected: number[], tolerance: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `sample ${i}: ${actual[i]} vs ${expected[i]}`);
}

describe('decodeAudioFile: WAV', () => {
  test('the shared Hebrew clips decode sample for sample (16 kHz mono 16-bit)', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, assetPath('audio', 'he'), ...set.map((c) => c.wav), assetPath('audio', 'he', 'long', 'asimov.wav'))) return;
    assert.ok(set.length > 0, 'no Hebrew clips in the shared assets');
    for (const clip of set) {
      const audio = await decodeAudioFile(clip.wav);
      const reference = new wavefile.WaveFile(fs.readFileSync(clip.wav)).getSamples(false, Int16Array) as unknown as Int16Array;
      assert.equal(audio.sourceRate, 16_000);
      assert.equal(audio.sourceChannels, 1);
      assert.equal(audio.sampleRate, 16_000);
      assert.equal(audio.pcm.length, reference.length, clip.name);
      assert.equal(audio.durationS, reference.length / 16_000);
      for (let i = 0; i < reference.length; i += 97) assert.equal(audio.pcm[i], reference[i] / 32768, `${clip.name} sample ${i}`);
    }
    const long = await decodeAudioFile(assetPath('audio', 'he', 'long', 'asimov.wav'));
    assert.ok(Math.abs(long.durationS - 125.3) < 0.1, `asimov.wav lasts ${long.durationS} s`);
  });

  test('stereo 44.1 kHz is averaged to mono and resampled to 16 kHz', async () => {
    const rate = 44_100;
    const tone = sine(1000, rate, 1);
    const same = samplesOf((b, v, o) => b.writeInt16LE(floatToS16(v), o), 2, tone.flatMap((v) => [v, v]));
    const audio = await decodeAudioFile(write('stereo44.wav', wavBytes({ format: 1, channels: 2, rate, bits: 16, data: same })));
    assert.equal(audio.sourceRate, rate);
    assert.equal(audio.sourceChannels, 2);
    assert.ok(Math.abs(audio.pcm.length - 16_000) <= 1, `${audio.pcm.length} samples`);
    assert.ok(Math.abs(audio.durationS - 1) < 1e-3);
    const peak = Math.max(...audio.pcm.subarray(100, -100));
    assert.ok(Math.abs(peak - 0.5) < 0.01, `peak ${peak}`);

    // Opposite channels cancel: proves averaging rather than taking one channel.
    const opposite = samplesOf((b, v, o) => b.writeInt16LE(floatToS16(v), o), 2, tone.flatMap((v) => [v, -v]));
    const silent = await decodeAudioFile(write('opposite44.wav', wavBytes({ format: 1, channels: 2, rate, bits: 16, data: opposite })));
    assert.ok(Math.max(...silent.pcm.map(Math.abs)) < 1e-4);
  });

  test('8, 16, 24 and 32-bit integer and 32/64-bit float WAVs scale to [-1, 1]', async () => {
    const cases: [string, number, number, Buffer, number[]][] = [
      ['u8', 1, 8, Buffer.from([128, 255, 0, 192]), [0, 127 / 128, -1, 0.5]],
      ['s16', 1, 16, samplesOf((b, v, o) => b.writeInt16LE(v, o), 2, [0, -32768, 16384, 32767]), [0, -1, 0.5, 32767 / 32768]],
      ['s24', 1, 24, samplesOf((b, v, o) => b.writeIntLE(v, o, 3), 3, [0, -8388608, 4194304, -1]), [0, -1, 0.5, -1 / 8388608]],
      ['s32', 1, 32, samplesOf((b, v, o) => b.writeInt32LE(v, o), 4, [0, -2147483648, 1073741824, 2147483647]), [0, -1, 0.5, 2147483647 / 2147483648]],
      ['f32', 3, 32, samplesOf((b, v, o) => b.writeFloatLE(v, o), 4, [0.25, -0.5, 1, -1]), [0.25, -0.5, 1, -1]],
      ['f64', 3, 64, samplesOf((b, v, o) => b.writeDoubleLE(v, o), 8, [0.125, -0.75, 0, 0.5]), [0.125, -0.75, 0, 0.5]],
    ];
    for (const [name, format, bits, data, expected] of cases) {
      const audio = await decodeAudioFile(write(`${name}.wav`, wavBytes({ format, channels: 1, rate: 16_000, bits, data })));
      closeTo(audio.pcm, expected, 1e-7);
    }
  });

  test('WAVE_FORMAT_EXTENSIBLE float with 3 channels reads as float, not integer', async () => {
    const data = samplesOf((b, v, o) => b.writeFloatLE(v, o), 4, [0.3, 0.6, 0.9, -0.3, -0.6, -0.9]);
    const audio = await decodeAudioFile(write('ext.wav', wavBytes({ format: 3, channels: 3, rate: 16_000, bits: 32, data, extensible: true })));
    assert.equal(audio.sourceChannels, 3);
    closeTo(audio.pcm, [0.6, -0.6], 1e-6);
  });

  test('µ-law (8 kHz telephone audio) decodes and is upsampled', async () => {
    const tone = sine(440, 8000, 0.5);
    const wav = new wavefile.WaveFile();
    wav.fromScratch(1, 8000, '16', tone.map(floatToS16));
    wav.toMuLaw();
    const audio = await decodeAudioFile(write('mulaw.wav', Buffer.from(wav.toBuffer())));
    assert.equal(audio.sourceRate, 8000);
    assert.equal(audio.pcm.length, 8000);
    const peak = Math.max(...audio.pcm.subarray(100, -100));
    assert.ok(Math.abs(peak - 0.5) < 0.02, `peak ${peak}`);
  });

  test('A-law silence decodes to silence (G.711 code 0xD5 is the smallest positive step)', async () => {
    const audio = await decodeAudioFile(write('alaw.wav', wavBytes({ format: 6, channels: 1, rate: 8000, bits: 8, data: Buffer.alloc(4000, 0xd5) })));
    assert.equal(audio.pcm.length, 8000);
    assert.ok(Math.max(...audio.pcm.subarray(100, -100).map(Math.abs)) <= 8 / 32768 + 1e-6);
  });

  test('8-bit audio of an odd length: the pad byte after the data chunk is not read as a sample', async () => {
    // 3 samples then RIFF's pad byte (0): read as a fourth sample it would be a full-scale click (-1).
    const audio = await decodeAudioFile(write('odd8.wav', wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 8, data: Buffer.from([128, 192, 64]), after: [listChunk('tag')] })));
    closeTo(audio.pcm, [0, 0.5, -0.5], 1e-7);
  });

  test('a PCM depth that is not a whole number of bytes is read from its container; impossible depths are audio_unreadable', async () => {
    // 12-bit samples sit in the high bits of 16-bit words (as ffmpeg reads them).
    const twelve = samplesOf((b, v, o) => b.writeInt16LE(v, o), 2, [0, -2048 << 4, 1024 << 4]);
    closeTo((await decodeAudioFile(write('s12.wav', wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 12, data: twelve })))).pcm, [0, -1, 0.5], 1e-7);
    const noFfmpeg = { ffmpeg: path.join(dir, 'no-such-ffmpeg') };
    for (const [name, format, bits] of [['pcm0', 1, 0], ['pcm40', 1, 40], ['float16', 3, 16], ['alaw16', 6, 16]] as const) {
      const file = write(`${name}.wav`, wavBytes({ format, channels: 1, rate: 16_000, bits, data: Buffer.alloc(64) }));
      await assert.rejects(decodeAudioFile(file, noFfmpeg), (e) => isKolError(e, 'audio_unreadable') && e.message.includes(`${name}.wav`) && e.message.includes(`${bits} bits`), name);
    }
  });

  test('NaN and ±Infinity float samples are read as silence, and counted', async () => {
    const values = [0.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5, Number.NEGATIVE_INFINITY, 0.25];
    const f32 = await decodeAudioFile(write('nan32.wav', wavBytes({ format: 3, channels: 1, rate: 16_000, bits: 32, data: samplesOf((b, v, o) => b.writeFloatLE(v, o), 4, values) })));
    closeTo(f32.pcm, [0.5, 0, 0, -0.5, 0, 0.25], 1e-7);
    assert.equal(f32.nonFiniteSamples, 3);
    // In stereo the bad channel is silence and the other is averaged with it.
    const f64 = await decodeAudioFile(write('nan64.wav', wavBytes({ format: 3, channels: 2, rate: 16_000, bits: 64, data: samplesOf((b, v, o) => b.writeDoubleLE(v, o), 8, values) })));
    closeTo(f64.pcm, [0.25, -0.25, 0.125], 1e-7);
    assert.equal(f64.nonFiniteSamples, 3);
    const clean = await decodeAudioFile(write('clean.wav', wavBytes({ format: 3, channels: 1, rate: 16_000, bits: 32, data: samplesOf((b, v, o) => b.writeFloatLE(v, o), 4, [0.1, 0.2]) })));
    assert.equal(clean.nonFiniteSamples, 0);
  });

  test('chunks around the data (two LIST chunks, JUNK) are skipped, and the RIFF size is not trusted', async () => {
    const data = samplesOf((b, v, o) => b.writeInt16LE(v, o), 2, [0, 16384, -16384]);
    const around = { before: [listChunk('title'), chunk('JUNK', Buffer.alloc(5))], after: [listChunk('artist'), listChunk('album')] };
    for (const riffSize of [undefined, 4, 0xffffffff]) {
      const audio = await decodeAudioFile(write('tagged.wav', wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 16, data, ...around, riffSize })));
      closeTo(audio.pcm, [0, 0.5, -0.5], 1e-7);
    }
  });

  test('big-endian RIFX, and RF64 with its 64-bit data size, are read', async () => {
    const values = [0, 16384, -16384, 8192];
    const be = Buffer.alloc(8);
    values.forEach((v, i) => be.writeInt16BE(v, i * 2));
    const fmt = Buffer.alloc(16);
    [[1, 0], [1, 2]].forEach(([v, at]) => fmt.writeUInt16BE(v, at));
    fmt.writeUInt32BE(16_000, 4);
    fmt.writeUInt32BE(32_000, 8);
    fmt.writeUInt16BE(2, 12);
    fmt.writeUInt16BE(16, 14);
    const beChunk = (id: string, body: Buffer) => Buffer.concat([Buffer.from(id), Buffer.from([0, 0, 0, body.length]), body]);
    const rifx = Buffer.concat([Buffer.from('RIFX'), Buffer.from([0, 0, 0, 44]), Buffer.from('WAVE'), beChunk('fmt ', fmt), beChunk('data', be)]);
    closeTo((await decodeAudioFile(write('rifx.wav', rifx))).pcm, [0, 0.5, -0.5, 0.25], 1e-7);

    // RF64: the data chunk says 0xFFFFFFFF and ds64 holds the real size (6 of the 8 bytes that follow).
    const riff = wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 16, data: samplesOf((b, v, o) => b.writeInt16LE(v, o), 2, values), dataSize: 0xffffffff });
    const ds64 = Buffer.alloc(28);
    ds64.writeUInt32LE(6, 8);
    const rf64 = Buffer.concat([Buffer.from('RF64'), u32(0xffffffff), Buffer.from('WAVE'), chunk('ds64', ds64), riff.subarray(12)]);
    closeTo((await decodeAudioFile(write('rf64.wav', rf64))).pcm, [0, 0.5, -0.5], 1e-7);
  });

  test('a text file named .wav is audio_unreadable, naming the file', async () => {
    const file = write('notes.wav', 'this is a text file, not audio\n'.repeat(20));
    await assert.rejects(decodeAudioFile(file), (e) => isKolError(e, 'audio_unreadable') && e.message.includes('notes.wav'));
  });

  test('a WAV header with a broken body is audio_unreadable', async () => {
    const file = write('broken.wav', Buffer.concat([Buffer.from('RIFF'), u32(100), Buffer.from('WAVE'), Buffer.from('junk junk junk')]));
    await assert.rejects(decodeAudioFile(file), (e) => isKolError(e, 'audio_unreadable') && e.message.includes('broken.wav'));
  });

  test('an empty file, and a WAV with no samples, are audio_empty', async () => {
    await assert.rejects(decodeAudioFile(write('empty.wav', '')), (e) => isKolError(e, 'audio_empty') && e.message.includes('empty.wav'));
    const noSamples = write('nosamples.wav', wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 16, data: Buffer.alloc(0) }));
    await assert.rejects(decodeAudioFile(noSamples), (e) => isKolError(e, 'audio_empty') && e.message.includes('nosamples.wav'));
  });

  test('a WAV below 8 kHz is unsupported_sample_rate, naming the file', async () => {
    const file = write('slow.wav', wavBytes({ format: 1, channels: 1, rate: 4000, bits: 16, data: Buffer.alloc(800) }));
    await assert.rejects(decodeAudioFile(file), (e) => isKolError(e, 'unsupported_sample_rate') && e.message.includes('slow.wav') && e.message.includes('4000 Hz'));
  });

  test('a missing file is audio_unreadable, naming it', async () => {
    await assert.rejects(decodeAudioFile(path.join(dir, 'absent.wav')), (e) => isKolError(e, 'audio_unreadable') && /absent\.wav.*ENOENT/.test(e.message));
  });
});

describe('decodeAudioFile: other formats through ffmpeg', () => {
  const mp3 = () => write('song.mp3', Buffer.concat([Buffer.from('ID3'), Buffer.alloc(200, 1)]));

  test('without ffmpeg, a recognisable audio file is ffmpeg_missing; a non-audio file is audio_unreadable', async () => {
    const missing = { ffmpeg: path.join(dir, 'no-such-ffmpeg') };
    await assert.rejects(
      decodeAudioFile(mp3(), missing),
      (e) => isKolError(e, 'ffmpeg_missing') && e.message.includes('song.mp3') && /install ffmpeg/.test(e.message) && /convert .* to WAV/.test(e.message),
    );
    const ogg = write('voice.ogg', Buffer.concat([Buffer.from('OggS'), Buffer.alloc(100)]));
    await assert.rejects(decodeAudioFile(ogg, missing), (e) => isKolError(e, 'ffmpeg_missing') && e.message.includes('voice.ogg'));
    const text = write('readme.mp3', 'not audio at all\n');
    await assert.rejects(decodeAudioFile(text, missing), (e) => isKolError(e, 'audio_unreadable') && e.message.includes('readme.mp3'));
  });

  test('ffmpeg is asked for f32le 16 kHz mono; its output and reported source format are used', async () => {
    // A stand-in ffmpeg: checks its arguments, prints a banner like ffmpeg's, writes 0.5, -0.25, 1.0.
    const fake = write(
      'fake-ffmpeg',
      [
        '#!/bin/sh',
        'case "$*" in *"-f f32le -ac 1 -ar 16000 -rematrix_maxval 1 -"*) ;; *) echo "bad args: $*" >&2; exit 2;; esac',
        'echo "Input #0, mp3, from \'x\':" >&2',
        'echo "  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 128 kb/s" >&2',
        "printf '\\000\\000\\000\\077\\000\\000\\200\\276\\000\\000\\200\\077'",
      ].join('\n'),
    );
    fs.chmodSync(fake, 0o755);
    const audio = await decodeAudioFile(mp3(), { ffmpeg: fake });
    assert.deepEqual([...audio.pcm], [0.5, -0.25, 1]);
    assert.equal(audio.sourceRate, 44_100);
    assert.equal(audio.sourceChannels, 2);
    assert.equal(audio.durationS, 3 / 16_000);
  });

  test('when ffmpeg fails, the file is audio_unreadable with ffmpeg\'s reason', async () => {
    const failing = write('failing-ffmpeg', '#!/bin/sh\necho "song.mp3: Invalid data found when processing input" >&2\nexit 1\n');
    fs.chmodSync(failing, 0o755);
    await assert.rejects(decodeAudioFile(mp3(), { ffmpeg: failing }), (e) => isKolError(e, 'audio_unreadable') && e.message.includes('song.mp3') && e.message.includes('Invalid data found'));
  });

  test('real ffmpeg, when installed: a stereo 44.1 kHz FLAC decodes, averaged to mono', async (t) => {
    if (spawnSync('ffmpeg', ['-version']).error) {
      t.skip('ffmpeg is not on the PATH');
      return;
    }
    const tone = sine(1000, 44_100, 1).flatMap((v) => [v, v]);
    const wav = write('for-flac.wav', wavBytes({ format: 1, channels: 2, rate: 44_100, bits: 16, data: samplesOf((b, v, o) => b.writeInt16LE(floatToS16(v), o), 2, tone) }));
    const flac = path.join(dir, 'tone.flac');
    assert.equal(spawnSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-i', wav, flac]).status, 0);
    const audio = await decodeAudioFile(flac);
    assert.ok(Math.abs(audio.pcm.length - 16_000) <= 2, `${audio.pcm.length} samples`);
    assert.equal(audio.sourceRate, 44_100);
    assert.equal(audio.sourceChannels, 2);
    const peak = Math.max(...audio.pcm.subarray(100, -100));
    assert.ok(Math.abs(peak - 0.5) < 0.01, `peak ${peak}`);
  });
});

describe('encodeWav16k', () => {
  test('writes 16 kHz mono 16-bit that decodes back to the same samples', async () => {
    const pcm = Float32Array.from(sine(300, 16_000, 0.5));
    const bytes = encodeWav16k(pcm);
    const parsed = new wavefile.WaveFile(bytes);
    const fmt = parsed.fmt as { sampleRate: number; numChannels: number; bitsPerSample: number; audioFormat: number };
    assert.deepEqual([fmt.sampleRate, fmt.numChannels, fmt.bitsPerSample, fmt.audioFormat], [16_000, 1, 16, 1]);
    assert.equal(bytes.length, 44 + pcm.length * 2);
    const back = await decodeAudioFile(write('roundtrip.wav', bytes));
    closeTo(back.pcm, [...pcm], 1 / 32768);
  });

  test('clips values outside [-1, 1]', () => {
    const samples = new wavefile.WaveFile(encodeWav16k(Float32Array.from([1.5, -2, 1, -1, 0]))).getSamples(false, Int16Array);
    assert.deepEqual([...samples], [32767, -32768, 32767, -32768, 0]);
  });
});
