import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessTranscript, isRepetitive } from './transcript-guard.js';
import type { Transcript, TranscriptWord } from './whisper/types.js';

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
  // Seen on music-like tones: one letter held, too short for the compression test.
  assert.ok(isRepetitive('אהההההההההההההההההההההההההה'));
});

test('real sentences, even with a repeated word, are not loops', () => {
  assert.ok(!isRepetitive('והוא אומר בעצם דבר אחד ואחד בלבד, מה היכולת, מה הסיכון'));
  assert.ok(!isRepetitive('לא, לא, לא. זה לא מה שאמרתי'));
  assert.ok(!isRepetitive('אההה, זה כבר משהו אחר. Mississippi, 1000000'));
  assert.ok(!isRepetitive('And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.'));
});

test('assessTranscript withholds empty, punctuation-only, no-speech and looping text', () => {
  assert.deepEqual(assessTranscript(transcript('  ')), { text: '', words: [], discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('...')), { text: '', words: [], discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('שלום', 0.9, -1.5)), { text: '', words: [], discarded: 'no_speech' });
  assert.deepEqual(assessTranscript(transcript('בואו, בואו, בואו, בואו.')), { text: '', words: [], discarded: 'repetition' });
  assert.deepEqual(assessTranscript(transcript(' שלום לכולם ')), { text: 'שלום לכולם', words: [], discarded: false });
  // Confident text is kept even when whisper's no-speech probability is high.
  assert.deepEqual(assessTranscript(transcript('שלום לכולם', 0.9, -0.2)), { text: 'שלום לכולם', words: [], discarded: false });
});

const word = (w: string, start: number): TranscriptWord => ({ word: w, start, end: start + 0.4, probability: 0.8 });

test('non-speech markers and format characters never pass: a segment of nothing else is no speech', () => {
  // What 20 s of music-like tones gave before: markers only.
  const music: Transcript = {
    ...transcript('*תקרקו* *תוקרקו* *תקרקו*'),
    segments: [{ text: '*תקרקו* *תוקרקו* *תקרקו*', start: 0, end: 3, noSpeechProb: 0.1, avgLogprob: -0.5, words: [word('*תקרקו*', 0), word('*תוקרקו*', 1), word('*תקרקו*', 2)] }],
  };
  assert.deepEqual(assessTranscript(music), { text: '', words: [], discarded: 'no_speech' });
  for (const marker of ['[MUSIC]', '(מוזיקה)', '♪♪', '♪', '‫']) assert.equal(assessTranscript(transcript(marker)).discarded, 'no_speech', marker);

  // Speech beside a marker: the text and its words both lose the marker and the stray embedding.
  const mixed: Transcript = {
    ...transcript('‫אז באמת (מוזיקה) חלים'),
    segments: [
      { text: '‫אז באמת', start: 0, end: 1.5, noSpeechProb: 0.1, avgLogprob: -0.4, words: [word('‫אז', 0), word('באמת', 0.5)] },
      // A marker-only segment whisper doubts does not make the speech beside it doubtful.
      { text: '(מוזיקה)', start: 1.5, end: 2.5, noSpeechProb: 0.9, avgLogprob: -1.5, words: [word('(מוזיקה)', 1.5)] },
      { text: 'חלים', start: 2.5, end: 3, noSpeechProb: 0.1, avgLogprob: -0.4, words: [word('חלים', 2.5)] },
    ],
  };
  const verdict = assessTranscript(mixed);
  assert.equal(verdict.text, 'אז באמת חלים');
  assert.deepEqual(
    verdict.words.map((w) => [w.word, w.start]),
    [
      ['אז', 0],
      ['באמת', 0.5],
      ['חלים', 2.5],
    ],
  );
});
