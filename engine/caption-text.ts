/**
 * The text that may reach a caption. Whisper writes what is not speech as a marker — `[MUSIC]`,
 * `(מוזיקה)`, `*תקרקו*`, `♪` — and scatters invisible format characters (a stray U+202B
 * RIGHT-TO-LEFT EMBEDDING with no U+202C) that break how the next caption line, an SRT file or a
 * chat message renders. Both are removed here, from the text and from the timed words alike, so the
 * two always agree. The page and the overlay set the direction themselves.
 */
import type { TranscriptWord } from './whisper/types.js';

/** Each marker opener and the character that closes it. */
const CLOSER = new Map([
  ['[', ']'],
  ['(', ')'],
  ['*', '*'],
  ['【', '】'],
  ['（', '）'],
]);
const STRAY_CLOSERS = new Set([']', ')', '】', '）']);
/** Musical symbols: whisper marks music (and sung lyrics) with them. */
const MUSIC = /[\u2669-\u266F\u{1F3B5}\u{1F3B6}\u{1F3BC}]/u;
const WORD_CHAR = /[\p{L}\p{M}\p{N}]/u;

/**
 * Format characters (category Cf: bidi embeddings and marks, BOM, soft hyphen …) and control
 * characters. Zero-width (non-)joiners are kept inside a word only, where Persian, Urdu, Indic scripts
 * and emoji sequences need them; they have no bidi effect, and Hebrew, whose letters do not join,
 * has no use for them, so elsewhere they go too.
 */
const INVISIBLE = /(?![\u200C\u200D\t\n\v\f\r])[\p{Cf}\p{Cc}]/gu;
const JOINER_OUTSIDE_WORD = /(?<![\p{L}\p{M}\p{N}\p{Extended_Pictographic}])[\u200C\u200D]+|[\u200C\u200D]+(?![\p{L}\p{M}\p{N}\p{Extended_Pictographic}])/gu;

/**
 * Which UTF-16 units of `text` belong to a non-speech marker. A marker is a bracketed span (its
 * brackets included), an `*…*` span that starts a word, or a musical symbol; an opener whisper never
 * closed runs to the end of the text, and a closing bracket without its opener goes on its own.
 * An asterisk inside a word ("f***") or before a space ("5 * 3") opens nothing.
 */
function markerMask(text: string): Uint8Array {
  const removed = new Uint8Array(text.length);
  let closer: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (closer !== null) {
      removed[i] = 1;
      if (c === closer) closer = null;
      continue;
    }
    const closes = CLOSER.get(c);
    if (closes !== undefined && (c !== '*' || opensAsterisk(text, i))) {
      removed[i] = 1;
      closer = closes;
    } else if (STRAY_CLOSERS.has(c)) {
      removed[i] = 1;
    } else {
      const codePoint = text.codePointAt(i)!;
      const width = codePoint > 0xffff ? 2 : 1;
      if (MUSIC.test(String.fromCodePoint(codePoint))) removed.fill(1, i, i + width);
      i += width - 1;
    }
  }
  return removed;
}

function opensAsterisk(text: string, i: number): boolean {
  const before = i > 0 ? text[i - 1] : ' ';
  const after = text[i + 1] ?? ' ';
  return !WORD_CHAR.test(before) && !/[\s*]/u.test(after);
}

/** The units not removed; a removed marker leaves a space, since it stood between words. */
function keep(text: string, removed: Uint8Array, from = 0, to = text.length): string {
  let out = '';
  for (let i = from; i < to; i++) {
    if (!removed[i]) out += text[i];
    else if (!removed[i + 1]) out += ' ';
  }
  return out;
}

function withoutInvisibles(text: string): string {
  return text.replace(INVISIBLE, '').replace(JOINER_OUTSIDE_WORD, '');
}

/** A transcript's text fit for a caption: no markers, no format or control characters, single spaces. */
export function cleanCaptionText(text: string): string {
  const visible = withoutInvisibles(text);
  return keep(visible, markerMask(visible)).replace(/\s+/gu, ' ').trim();
}

/**
 * The timed words, cleaned as their text would be: markers are found across word boundaries
 * (`(מוזיקה` `רקע)` is one marker), and a word left with no letter or digit is dropped.
 */
export function cleanCaptionWords(words: readonly TranscriptWord[]): TranscriptWord[] {
  const visible = words.map((w) => withoutInvisibles(w.word));
  const joined = visible.join(' ');
  const removed = markerMask(joined);
  const out: TranscriptWord[] = [];
  let at = 0;
  for (const [i, w] of words.entries()) {
    // A marker inside a word splits it; the pieces keep the word's timing.
    const pieces = keep(joined, removed, at, at + visible[i].length).split(/\s+/u);
    at += visible[i].length + 1;
    for (const word of pieces) if (/[\p{L}\p{N}]/u.test(word)) out.push({ ...w, word });
  }
  return out;
}
