import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corpusWer, formatWerTable, normalizeText, wordErrorRate } from './wer.js';

describe('normalizeText', () => {
  it('strips niqqud and punctuation from Hebrew, keeping the letters', () => {
    assert.equal(normalizeText('שָׁלוֹם, עוֹלָם!'), 'שלום עולם');
  });

  it('strips cantillation and sof pasuq (Genesis 1:1)', () => {
    assert.equal(
      normalizeText('בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת הַשָּׁמַ֖יִם וְאֵ֥ת הָאָֽרֶץ׃'),
      'בראשית ברא אלהים את השמים ואת הארץ',
    );
  });

  it('splits words joined by maqaf or a hyphen', () => {
    assert.equal(normalizeText('בֵּית־הַסֵּפֶר'), 'בית הספר');
    assert.equal(normalizeText('בית-הספר'), 'בית הספר');
    assert.equal(normalizeText('well-known'), 'well known');
  });

  it('joins acronyms and loan sounds across geresh, gershayim and the quotes typed for them', () => {
    assert.equal(normalizeText('צה״ל'), 'צהל');
    assert.equal(normalizeText('צה"ל'), 'צהל');
    assert.equal(normalizeText('ג׳ירפה'), normalizeText("ג'ירפה"));
    assert.equal(normalizeText("Don't STOP."), 'dont stop');
  });

  it('removes invisible direction marks and decomposes presentation forms', () => {
    assert.equal(normalizeText('\u200Fשלום\u200F \u202Bעולם\u202C'), 'שלום עולם');
    assert.equal(normalizeText('\uFB2Aלום'), 'שלום'); // U+FB2A is shin with shin dot
  });

  it('keeps final letters as written', () => {
    assert.notEqual(normalizeText('שלומ'), normalizeText('שלום'));
  });

  it('lower-cases, collapses whitespace and drops symbols', () => {
    assert.equal(normalizeText('  Hello,\tWORLD!!  \n (it costs $5 — or 20%)  '), 'hello world it costs 5 or 20');
    assert.equal(normalizeText(' ... '), '');
  });
});

describe('wordErrorRate', () => {
  it('is 0 for texts that differ only in niqqud, punctuation and case', () => {
    const r = wordErrorRate('שָׁלוֹם, עוֹלָם!', 'שלום עולם');
    assert.deepEqual(r, { wer: 0, substitutions: 0, deletions: 0, insertions: 0, referenceWords: 2, hypothesisWords: 2 });
    assert.equal(wordErrorRate('And so, my fellow Americans!', 'and so my fellow americans').wer, 0);
  });

  it('counts one substitution, one deletion and one insertion', () => {
    const r = wordErrorRate('the cat sat on the mat', 'cat sit on the mat today');
    assert.deepEqual(r, { wer: 0.5, substitutions: 1, deletions: 1, insertions: 1, referenceWords: 6, hypothesisWords: 6 });
  });

  it('counts pure deletions and pure insertions', () => {
    assert.deepEqual(wordErrorRate('a b c d', 'a d'), { wer: 0.5, substitutions: 0, deletions: 2, insertions: 0, referenceWords: 4, hypothesisWords: 2 });
    assert.deepEqual(wordErrorRate('a b', 'x a b y'), { wer: 1, substitutions: 0, deletions: 0, insertions: 2, referenceWords: 2, hypothesisWords: 4 });
  });

  it('scores a real Hebrew transcript of base q8_0 (Lod_0053)', () => {
    const reference = 'המטרה של המבצע הייתה לכבוש ארבע ערים ערביות, לוד, רמלה, לטרון ורמאללה';
    const hypothesis = 'המטרה של המיבצע הייתה לכבוש ארמה הרביות, לא דרמנה לטרון ורמלה';
    const r = wordErrorRate(reference, hypothesis);
    assert.deepEqual(r, { wer: 7 / 12, substitutions: 6, deletions: 1, insertions: 0, referenceWords: 12, hypothesisWords: 11 });
  });

  it('counts a final letter in the wrong place as an error', () => {
    assert.equal(wordErrorRate('שלום עולם', 'שלומ עולם').substitutions, 1);
  });

  it('defines the empty cases without dividing by zero', () => {
    assert.deepEqual(wordErrorRate('', ''), { wer: 0, substitutions: 0, deletions: 0, insertions: 0, referenceWords: 0, hypothesisWords: 0 });
    assert.deepEqual(wordErrorRate(' ,. ', 'שלום עולם'), { wer: 1, substitutions: 0, deletions: 0, insertions: 2, referenceWords: 0, hypothesisWords: 2 });
    assert.deepEqual(wordErrorRate('שלום עולם', ''), { wer: 1, substitutions: 0, deletions: 2, insertions: 0, referenceWords: 2, hypothesisWords: 0 });
  });

  it('matches a plain edit distance, and its counts add up, on random word strings', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const vocabulary = ['א', 'ב', 'ג', 'ד'];
    const sentence = () => Array.from({ length: Math.floor(random() * 9) }, () => vocabulary[Math.floor(random() * 4)]);
    for (let n = 0; n < 300; n++) {
      const ref = sentence();
      const hyp = sentence();
      const r = wordErrorRate(ref.join(' '), hyp.join(' '));
      assert.equal(r.substitutions + r.deletions + r.insertions, editDistance(ref, hyp), `${ref} / ${hyp}`);
      assert.equal(r.hypothesisWords, r.referenceWords - r.deletions + r.insertions);
    }
  });
});

describe('corpusWer', () => {
  it('divides total errors by total reference words, not the mean of per-clip rates', () => {
    const r = corpusWer([
      { reference: 'אחת שתיים שלוש ארבע', hypothesis: 'אחת שתיים שלוש ארבע' },
      { reference: 'חמש', hypothesis: 'שש' },
    ]);
    assert.deepEqual(r, { wer: 0.2, substitutions: 1, deletions: 0, insertions: 0, referenceWords: 5, hypothesisWords: 5 });
  });

  it('adds the insertions of a clip with an empty reference', () => {
    const r = corpusWer([
      { reference: 'a b', hypothesis: 'a b' },
      { reference: '', hypothesis: 'noise words' },
    ]);
    assert.equal(r.wer, 1);
    assert.equal(r.insertions, 2);
    assert.equal(corpusWer([]).wer, 0);
  });
});

describe('formatWerTable', () => {
  it('prints one row per clip and a corpus total', () => {
    const table = formatWerTable([
      { name: 'jfk', result: wordErrorRate('ask not', 'ask not') },
      { name: 'Lod_0053', result: wordErrorRate('לוד רמלה', 'לא דרמנה') },
    ]);
    const lines = table.split('\n');
    assert.equal(lines.length, 5);
    assert.equal(lines[0], '| clip | words | S | D | I | WER |');
    assert.equal(lines[2], '| jfk | 2 | 0 | 0 | 0 | 0.000 |');
    assert.equal(lines[3], '| Lod_0053 | 2 | 2 | 0 | 0 | 1.000 |');
    assert.equal(lines[4], '| **total** | 4 | 2 | 0 | 0 | 0.500 |');
  });
});

function editDistance(a: string[], b: string[]): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}
