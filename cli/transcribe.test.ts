/**
 * `kol transcribe` as a user runs it: the real command in a child process, the real base model, files
 * good, bad and odd together.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import wavefile from 'wavefile';
import { encodeWav16k } from '../engine/audio/wav.js';
import { wordErrorRate } from '../engine/wer.js';
import { assetPath, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { gatedTones, silence, whiteNoise } from '../test/helpers/signals.js';
import { runKolTranscribe, type TranscribeRun as Run } from '../test/helpers/transcribe.js';
import { wavBytes } from '../test/helpers/wav-bytes.js';

const CLIP = assetPath('audio', 'he', 'Hashlama117_0009.wav');
const REFERENCE = assetPath('audio', 'he', 'Hashlama117_0009.txt');

function kolTranscribe(args: string[]): Promise<Run> {
  return runKolTranscribe(['--threads', '2', ...args]);
}

type Line = { file: string; text: string; segments: { words: unknown[] }[]; duration: number } | { file: string; error: { code: string; message: string } };

describe('kol transcribe', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-transcribe-'));
  const file = (name: string, bytes: Buffer | string) => {
    const at = path.join(dir, name);
    fs.writeFileSync(at, bytes);
    return at;
  };
  let files: Record<string, string>;
  let run: Run;
  let lines: Line[];

  before(async () => {
    if (!fs.existsSync(CLIP)) return;
    const speech = new wavefile.WaveFile(fs.readFileSync(CLIP)).getSamples(false, Int16Array) as unknown as Int16Array;
    // The clip at 44.1 kHz stereo 24-bit, 3 frames short of its length: odd at every rate.
    const frames = Math.round((speech.length * 44_100) / 16_000) - 3;
    const odd = Buffer.alloc(frames * 2 * 3);
    for (let i = 0; i < frames; i++) {
      const v = speech[Math.min(speech.length - 1, Math.round((i * 16_000) / 44_100))] * 256;
      odd.writeIntLE(v, i * 6, 3);
      odd.writeIntLE(v, i * 6 + 3, 3);
    }
    const alaw = new wavefile.WaveFile();
    alaw.fromScratch(1, 8000, '16', new Int16Array(3 * 8000));
    alaw.toALaw();
    files = {
      good: CLIP,
      missing: path.join(dir, 'absent.wav'),
      odd: file('odd-44k-stereo-24bit.wav', wavBytes({ format: 1, channels: 2, rate: 44_100, bits: 24, data: odd })),
      text: file('notes.wav', 'this is a text file, not audio\n'.repeat(20)),
      bits0: file('bits0.wav', wavBytes({ format: 1, channels: 1, rate: 16_000, bits: 0, data: Buffer.alloc(3200) })),
      silence: file('silence.wav', encodeWav16k(silence(3))),
      quiet: file('quiet-noise.wav', encodeWav16k(whiteNoise(3, 0.003, 3))),
      noise: file('white-noise.wav', encodeWav16k(whiteNoise(3, 0.3, 4))),
      tones: file('gated-tones.wav', encodeWav16k(gatedTones(8, 5))),
      alaw: file('alaw-silence.wav', Buffer.from(alaw.toBuffer())),
    };
    run = await kolTranscribe(['--json', ...Object.values(files)]);
    lines = run.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('good and bad files together: each its transcript or its error, in the order given; exit code 1', (t) => {
    if (!haveAssets(t, CLIP, REFERENCE)) return;
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(
      lines.map((l) => l.file),
      Object.values(files),
      'one line per file, in order',
    );
    const byName = Object.fromEntries(Object.keys(files).map((name, i) => [name, lines[i]]));
    for (const name of ['missing', 'text', 'bits0']) {
      const line = byName[name];
      assert.ok('error' in line && line.error.code === 'audio_unreadable', `${name}: ${JSON.stringify(line)}`);
      assert.match(line.error.message, new RegExp(path.basename(files[name]).replace('.', '\\.')));
      assert.ok(run.stderr.includes(`kol: ${files[name]}: error [audio_unreadable]: ${line.error.message}\n`), `${name} on stderr`);
    }
    assert.doesNotMatch(run.stderr, /internal_error|KolError|\n\s+at /, 'no stack trace');
    const reference = fs.readFileSync(REFERENCE, 'utf8');
    for (const name of ['good', 'odd']) {
      const line = byName[name];
      assert.ok('text' in line, `${name}: ${JSON.stringify(line)}`);
      const wer = wordErrorRate(reference, line.text).wer;
      t.diagnostic(`${name}: WER ${wer.toFixed(3)}: ${line.text}`);
      assert.ok(wer <= 0.4, `${name}: WER ${wer}`);
    }
  });

  function assertNoWords(name: string): void {
    const line = lines[Object.keys(files).indexOf(name)];
    assert.ok('text' in line, `${name}: ${JSON.stringify(line)}`);
    assert.equal(line.text, '', `${name}: "${line.text}"`);
    assert.deepEqual(line.segments, [], `${name}: no segments`);
  }

  test('silence, quiet and loud noise, and A-law silence give no words', (t) => {
    if (!haveAssets(t, CLIP)) return;
    for (const name of ['silence', 'quiet', 'noise', 'alaw']) assertNoWords(name);
  });

  // The VAD hears these tones as speech, and whisper answers with a non-speech marker ("*תאגר*").
  test('music-like gated tones give no words', (t) => {
    if (!haveAssets(t, CLIP)) return;
    assertNoWords('tones');
  });

  test('without --json: "file<TAB>text" per good file, the error on stderr, whichever comes first', async (t) => {
    if (!haveAssets(t, CLIP)) return;
    const text = await kolTranscribe([files.text, CLIP]);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, new RegExp(`^${CLIP.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\t\\S`));
    assert.equal(text.stdout.trim().split('\n').length, 1);
    assert.match(text.stderr, /^kol: .*notes\.wav: error \[audio_unreadable\]: notes\.wav: /m);
  });
});
