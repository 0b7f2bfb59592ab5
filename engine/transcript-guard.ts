/**
 * Decides whether a transcript is fit to show: whisper invents text for silence and noise, and can
 * fall into a loop repeating a phrase. Such text is withheld rather than sent. What is shown is
 * cleaned first (caption-text.ts): no non-speech markers, no invisible format characters.
 */
import { deflateSync } from 'node:zlib';
import { cleanCaptionText, cleanCaptionWords } from './caption-text.js';
import type { Transcript, TranscriptWord } from './whisper/types.js';

/** whisper's own thresholds (openai/whisper transcribe.py): no_speech_prob > 0.6 with avg_logprob < -1. */
const NO_SPEECH_PROB = 0.6;
const LOW_LOGPROB = -1;
/** Text that compresses better than this is repetitive (whisper uses 2.4 for its fallback). */
const MAX_COMPRESSION_RATIO = 2.4;
/**
 * A word repeated 4 times in a row, or a phrase of 2–6 words 3 times, is a loop ("תודה רבה, תודה רבה,
 * תודה רבה"); people do say "no, no, no", so single words get one repeat more. A segment that is one
 * phrase said twice and nothing else is whisper echoing itself over noise.
 */
const WORD_REPEATS = 4;
const PHRASE_REPEATS = 3;

/** What may be shown: the cleaned text and its timed words (times as in the transcript), or why nothing. */
export type Verdict =
  | { text: string; words: TranscriptWord[]; discarded: false }
  | { text: ''; words: []; discarded: 'no_speech' | 'repetition' };

export function assessTranscript(transcript: Transcript): Verdict {
  const text = cleanCaptionText(transcript.text);
  // A segment that was nothing but a marker ("[MUSIC]") says nothing about the speech beside it.
  const segments = transcript.segments.filter((s) => cleanCaptionText(s.text).length > 0);
  if (segments.length > 0 && segments.every((s) => s.noSpeechProb > NO_SPEECH_PROB && s.avgLogprob < LOW_LOGPROB)) {
    return withheld('no_speech');
  }
  if (/^[\s\p{P}\p{S}]*$/u.test(text)) return withheld('no_speech');
  if (isRepetitive(text)) return withheld('repetition');
  return { text, words: cleanCaptionWords(transcript.segments.flatMap((s) => s.words)), discarded: false };
}

function withheld(discarded: 'no_speech' | 'repetition'): Verdict {
  return { text: '', words: [], discarded };
}

/** A letter said over and over inside one "word" ("אהההההה…"): no word of any language has 6 in a row. */
const LETTER_RUN = /(\p{L})\1{5,}/u;

export function isRepetitive(text: string): boolean {
  if (LETTER_RUN.test(text)) return true;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 60 && bytes.length / deflateSync(bytes).length > MAX_COMPRESSION_RATIO) return true;
  // Compared without punctuation and direction marks: "בואו, בואו, בואו." repeats one word.
  const words = text
    .split(/\s+/)
    .map((w) => w.replace(/[\p{P}\p{Cf}]/gu, ''))
    .filter(Boolean);
  for (let n = 1; n <= 6; n++) {
    const needed = n === 1 ? WORD_REPEATS : PHRASE_REPEATS;
    for (let i = 0; i + n * needed <= words.length; i++) {
      let repeats = 1;
      while (i + (repeats + 1) * n <= words.length && sameNgram(words, i, i + repeats * n, n)) repeats++;
      if (repeats >= needed) return true;
    }
  }
  const half = words.length / 2;
  return words.length >= 4 && Number.isInteger(half) && sameNgram(words, 0, half, half);
}

function sameNgram(words: string[], a: number, b: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (words[a + k] !== words[b + k]) return false;
  return true;
}
