/**
 * Which part of a partial is stable: the words that two consecutive hypotheses of the same segment
 * agree on (local agreement, as in whisper_streaming). The tail after them may still change.
 */
export function splitStable(previousWords: readonly string[], currentWords: readonly string[]): { stable: string; unstable: string } {
  let agreed = 0;
  while (agreed < previousWords.length && agreed < currentWords.length && sameWord(previousWords[agreed], currentWords[agreed])) agreed++;
  return { stable: currentWords.slice(0, agreed).join(' '), unstable: currentWords.slice(agreed).join(' ') };
}

/** Punctuation that whisper adds or drops between hypotheses does not make a word unstable. */
function sameWord(a: string, b: string): boolean {
  const bare = (w: string) => w.replace(/[\p{P}]/gu, '');
  return bare(a) === bare(b);
}
