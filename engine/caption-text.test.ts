import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { cleanCaptionText, cleanCaptionWords } from './caption-text.js';
import { normalizeText } from './wer.js';
import type { TranscriptWord } from './whisper/types.js';

const word = (w: string, start = 0): TranscriptWord => ({ word: w, start, end: start + 0.5, probability: 0.9 });
/** Characters that must never reach a caption (joiners are checked apart: they may stay inside a word). */
const FORBIDDEN = /[[\]()【】（）\u2669-\u266F\u{1F3B5}\u{1F3B6}\u{1F3BC}]|(?![\u200C\u200D])[\p{Cf}\p{Cc}]/u;
const STRAY_JOINER = /(?<![\p{L}\p{M}\p{N}\p{Extended_Pictographic}])[\u200C\u200D]|[\u200C\u200D](?![\p{L}\p{M}\p{N}\p{Extended_Pictographic}])/u;

test('whisper\'s non-speech markers are removed, and a text of nothing else becomes empty', () => {
  for (const marker of ['[MUSIC]', '[Music playing]', '(מוזיקה)', '(music)', '*תקרקו*', '*תקרקו* *תוקרקו* *תקרקו*', '♪', '♪♪', '♪ ♫ ♪', '[BLANK_AUDIO]', '【音楽】', '[[MUSIC]]', '((מוזיקה))']) {
    assert.equal(cleanCaptionText(marker), '', marker);
  }
  assert.equal(cleanCaptionText('שלום [מוזיקה] לכולם'), 'שלום לכולם');
  assert.equal(cleanCaptionText('(צחוק) זה היה מצחיק. *מחיאות כפיים*'), 'זה היה מצחיק.');
  assert.equal(cleanCaptionText('♪ la la ♪ and then'), 'la la and then');
  // An opener whisper never closed runs to the end; a closer without its opener goes alone.
  assert.equal(cleanCaptionText('שלום לכולם (מוזיקה'), 'שלום לכולם');
  assert.equal(cleanCaptionText('שלום] לכולם'), 'שלום לכולם');
  // Asterisks that open nothing: inside a word, or before a space.
  assert.equal(cleanCaptionText('what the f*** is that'), 'what the f*** is that');
  assert.equal(cleanCaptionText('5 * 3 is 15'), '5 * 3 is 15');
});

test('format and control characters are removed; joiners stay only inside a word', () => {
  assert.equal(cleanCaptionText('\u202bאז באמת'), 'אז באמת');
  assert.equal(cleanCaptionText('\u202bחלים\u202c \u200fשלום\u200e'), 'חלים שלום');
  assert.equal(cleanCaptionText('\ufeffשלום\u2066 עולם\u2069\u0007'), 'שלום עולם');
  assert.equal(cleanCaptionText('שלום\nעולם\tטוב'), 'שלום עולם טוב');
  // Persian needs its zero-width non-joiner inside a word; at a word's edge it does nothing.
  assert.equal(cleanCaptionText('می\u200cخواهم'), 'می\u200cخواهم');
  assert.equal(cleanCaptionText('\u200cשלום\u200d עולם'), 'שלום עולם');
});

test('words are cleaned as their text is: markers across words, format characters, words left empty dropped', () => {
  const words = [word('*תקרקו*', 0), word('שלום', 1), word('\u202bלכולם.', 2), word('(מוזיקה', 3), word('ברקע)', 4), word('♪', 5), word('ביי', 6)];
  assert.deepEqual(
    cleanCaptionWords(words).map((w) => [w.word, w.start]),
    [
      ['שלום', 1],
      ['לכולם.', 2],
      ['ביי', 6],
    ],
  );
  assert.deepEqual(cleanCaptionWords([word('[MUSIC]'), word('♪♪')]), []);
});

const captionChars = fc.constantFrom(...'שלום עולם abc 123 .,?!-*[]()【】♪♫\u202b\u202c\u200e\u200f\u200c\u200d\ufeff\u2066\u0007\n\t'.split(''), 'מוזיקה', 'MUSIC', '😀');
const captionString = fc.array(captionChars, { maxLength: 40 }).map((parts) => parts.join(''));

test('property: cleaned text never holds a marker character or a stray invisible one, and cleaning twice changes nothing', () => {
  fc.assert(
    fc.property(fc.oneof(captionString, fc.string({ unit: 'grapheme', maxLength: 40 })), (text) => {
      const clean = cleanCaptionText(text);
      assert.ok(!FORBIDDEN.test(clean), JSON.stringify(clean));
      assert.ok(!STRAY_JOINER.test(clean), JSON.stringify(clean));
      assert.equal(clean, clean.trim());
      assert.equal(cleanCaptionText(clean), clean);
    }),
    { numRuns: 2000 },
  );
});

test('property: words and text agree once cleaned, and every kept word has a letter or digit', () => {
  const wordText = captionString.map((s) => s.replace(/\s+/g, '')).filter((s) => s.length > 0);
  fc.assert(
    fc.property(fc.array(wordText, { maxLength: 12 }), (texts) => {
      const words = cleanCaptionWords(texts.map((t, i) => word(t, i)));
      for (const w of words) {
        assert.ok(!FORBIDDEN.test(w.word) && !STRAY_JOINER.test(w.word), JSON.stringify(w.word));
        assert.match(w.word, /[\p{L}\p{N}]/u);
      }
      assert.equal(normalizeText(words.map((w) => w.word).join(' ')), normalizeText(cleanCaptionText(texts.join(' '))));
    }),
    { numRuns: 2000 },
  );
});

test('property: speech without markers passes unchanged but for its spacing', () => {
  const speech = fc.array(fc.constantFrom(...'אבגדהוזחטיכלמנסעפצקרשתםןץףך abcxyz0123456789.,?!-"\'׳״'.split('')), { maxLength: 60 }).map((c) => c.join(''));
  fc.assert(fc.property(speech, (text) => assert.equal(cleanCaptionText(text), text.replace(/\s+/g, ' ').trim())));
});
