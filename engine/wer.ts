/**
 * Word error rate, the one definition that tests and benchmarks share: both texts are normalised
 * (normalizeText), split on spaces, and aligned by word-level Levenshtein distance.
 */

export interface WerResult {
  /** (substitutions + deletions + insertions) / referenceWords; see wordErrorRate for an empty reference. */
  wer: number;
  substitutions: number;
  deletions: number;
  insertions: number;
  referenceWords: number;
  hypothesisWords: number;
}

export interface TranscriptPair {
  reference: string;
  hypothesis: string;
}

export interface WerRow {
  name: string;
  result: WerResult;
}

/** Hebrew points and cantillation (U+0591–U+05C7) minus the punctuation that sits among them. */
const HEBREW_MARKS = /[\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7]/gu;
/**
 * Marks that join the letters of one word, deleted rather than turned into a space: geresh and
 * gershayim (צה״ל, ג׳ירפה) and the ASCII and typographic quotes typed in their place (צה"ל), and
 * the apostrophe of English contractions (don't).
 */
const WORD_INTERNAL_QUOTES = /['"\u2018\u2019\u201C\u201D\u05F3\u05F4]/gu;
/** Invisible format characters (RLM/LRM, bidi embeddings, zero-width joiners, BOM), common in Hebrew text. */
const FORMAT_CHARACTERS = /\p{Cf}/gu;
/** Everything else that is not a word: punctuation (maqaf and hyphens included, so compounds split) and symbols. */
const PUNCTUATION_AND_SYMBOLS = /[\p{P}\p{S}]/gu;

/**
 * The text as compared: NFKC, lower case, Hebrew niqqud and cantillation removed (letters kept),
 * punctuation and symbols removed, whitespace collapsed. "שָׁלוֹם, עוֹלָם!" becomes "שלום עולם".
 *
 * Final letters (ך ם ן ף ץ) are left as they are, not folded into their medial forms: both sides
 * are ordinary Hebrew spelling, where a final form in the wrong place is a real misspelling, and
 * folding would hide exactly such errors. Numbers are not spelled out: "3" and "שלוש" differ.
 */
export function normalizeText(text: string): string {
  return text
    .normalize('NFKC') // also splits Hebrew presentation forms (e.g. U+FB2A שׁ) into letter + mark
    .toLowerCase()
    .replace(FORMAT_CHARACTERS, '')
    .replace(HEBREW_MARKS, '')
    .replace(WORD_INTERNAL_QUOTES, '')
    .replace(PUNCTUATION_AND_SYMBOLS, ' ')
    .replace(/\s+/gu, ' ')
    .trim();
}

function words(text: string): string[] {
  const normalized = normalizeText(text);
  return normalized === '' ? [] : normalized.split(' ');
}

/**
 * Word-level Levenshtein alignment of hypothesis against reference. Where steps tie, a substitution
 * is preferred to a deletion and a deletion to an insertion, as the usual tools count.
 *
 * An empty reference has no words to divide by: every hypothesis word is an insertion and the WER is
 * 1 when there are any, 0 when both are empty (never Infinity, so corpus sums stay finite).
 */
export function wordErrorRate(reference: string, hypothesis: string): WerResult {
  const ref = words(reference);
  const hyp = words(hypothesis);
  const width = hyp.length + 1;

  // Two rows of the DP table; each cell carries its cost and how that cost splits into S, D and I.
  let cost = new Uint32Array(width);
  let subs = new Uint32Array(width);
  let dels = new Uint32Array(width);
  let ins = new Uint32Array(width);
  for (let j = 0; j < width; j++) {
    cost[j] = j;
    ins[j] = j;
  }
  for (let i = 1; i <= ref.length; i++) {
    const nextCost = new Uint32Array(width);
    const nextSubs = new Uint32Array(width);
    const nextDels = new Uint32Array(width);
    const nextIns = new Uint32Array(width);
    nextCost[0] = i;
    nextDels[0] = i;
    for (let j = 1; j < width; j++) {
      const mismatch = ref[i - 1] === hyp[j - 1] ? 0 : 1;
      const diagonal = cost[j - 1] + mismatch;
      const deletion = cost[j] + 1;
      const insertion = nextCost[j - 1] + 1;
      if (diagonal <= deletion && diagonal <= insertion) {
        nextCost[j] = diagonal;
        nextSubs[j] = subs[j - 1] + mismatch;
        nextDels[j] = dels[j - 1];
        nextIns[j] = ins[j - 1];
      } else if (deletion <= insertion) {
        nextCost[j] = deletion;
        nextSubs[j] = subs[j];
        nextDels[j] = dels[j] + 1;
        nextIns[j] = ins[j];
      } else {
        nextCost[j] = insertion;
        nextSubs[j] = nextSubs[j - 1];
        nextDels[j] = nextDels[j - 1];
        nextIns[j] = nextIns[j - 1] + 1;
      }
    }
    cost = nextCost;
    subs = nextSubs;
    dels = nextDels;
    ins = nextIns;
  }

  const last = hyp.length;
  return withRate({
    substitutions: subs[last],
    deletions: dels[last],
    insertions: ins[last],
    referenceWords: ref.length,
    hypothesisWords: hyp.length,
  });
}

/**
 * WER over a whole set: total errors / total reference words, so long clips weigh more than short
 * ones (the mean of per-clip WERs would let one short clip dominate).
 */
export function corpusWer(pairs: Iterable<TranscriptPair>): WerResult {
  return sumResults(Array.from(pairs, (p) => wordErrorRate(p.reference, p.hypothesis)));
}

/** A markdown table of per-clip results with a corpus total in the last row, for test and bench logs. */
export function formatWerTable(rows: readonly WerRow[]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  const row = (name: string, r: WerResult) =>
    line([name, r.referenceWords, r.substitutions, r.deletions, r.insertions, r.wer.toFixed(3)]);
  return [
    line(['clip', 'words', 'S', 'D', 'I', 'WER']),
    line(['---', '---:', '---:', '---:', '---:', '---:']),
    ...rows.map((r) => row(r.name, r.result)),
    row('**total**', sumResults(rows.map((r) => r.result))),
  ].join('\n');
}

function sumResults(results: readonly WerResult[]): WerResult {
  const total = { substitutions: 0, deletions: 0, insertions: 0, referenceWords: 0, hypothesisWords: 0 };
  for (const r of results) {
    total.substitutions += r.substitutions;
    total.deletions += r.deletions;
    total.insertions += r.insertions;
    total.referenceWords += r.referenceWords;
    total.hypothesisWords += r.hypothesisWords;
  }
  return withRate(total);
}

function withRate(counts: Omit<WerResult, 'wer'>): WerResult {
  const errors = counts.substitutions + counts.deletions + counts.insertions;
  const wer = counts.referenceWords > 0 ? errors / counts.referenceWords : counts.hypothesisWords > 0 ? 1 : 0;
  return { wer, ...counts };
}
