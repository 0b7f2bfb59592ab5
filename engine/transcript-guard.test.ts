import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessTranscript, isRepetitive } from './transcript-guard.js';
import type { Transcript } from './whisper/types.js';

const transcript = (text: string, noSpeechProb = 0, avgLogprob = -0.3): Transcript => ({
  text,
  language: 'he',
  duration: 3,
  worker: 'w0',
  inferenceMs: 1,
  segments: [{ text, start: 0, end: 3, noSpeechProb, avgLogprob, words: [] }],
});

test('loops that whisper falls into over noise are caught, whatever the punctuation', () => {
  assert.ok(isRepetitive('בואו, בואו, בואו, בואו.'));
  assert.ok(isRepetitive('תודה רוב, תודה רוב, תודה רוב, תודה רוב.'));
  assert.ok(isRepetitive('\u202bהארה, ארה, ארה. \u202bארה, ארה, ארה.'));
  assert.ok(isRepetitive('נמצא למה, נמצא למה, נמצא למה.'));
  assert.ok(isRepetitive('הוא עושה את זה. \u202b-הוא עושה את זה.'));
  assert.ok(isRepetitive('ask not ask not ask not ask not ask not ask not ask not ask not ask not ask not'));
});

test('real sentences, even with a repeated word, are not loops', () => {
  assert.ok(!isRepetitive('והוא אומר בעצם דבר אחד ואחד בלבד, מה היכולת, מה הסיכון'));
  assert.ok(!isRepetitive('לא, לא, לא. זה לא מה שאמרתי'));
  assert.ok(!isRepetitive('And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.'));
});

test('assessTranscript withholds empty, punctuation-only, no-speech and looping text', () => {
  assert.deepEqual(assessTranscript(transcript('  ')), { text: '', discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('...')), { text: '', discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('שלום', 0.9, -1.5)), { text: '', discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('בואו, בואו, בואו, בואו.')), { text: '', discarded: 'repetition' });
  assert.deepEqual(assessTranscript(transcript(' שלום לכולם ')), { text: 'שלום לכולם', discarded: false });
  // Confident text is kept even when whisper's no-speech probability is high.
  assert.deepEqual(assessTranscript(transcript('שלום לכולם', 0.9, -0.2)), { text: 'שלום לכולם', discarded: false });
});
