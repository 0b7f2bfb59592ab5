import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitStable } from './partial-agreement.js';

test('the words two consecutive hypotheses agree on are stable; the rest may change', () => {
  assert.deepEqual(splitStable([], ['שרי', 'ועומר']), { stable: '', unstable: 'שרי ועומר' });
  assert.deepEqual(splitStable(['שרי', 'ועומר', 'ב...'], ['שרי', 'ועומר', 'בעצם']), { stable: 'שרי ועומר', unstable: 'בעצם' });
  assert.deepEqual(splitStable(['והוא', 'אומר'], ['והוא', 'אומר', 'בעצם', 'דבר']), { stable: 'והוא אומר', unstable: 'בעצם דבר' });
  assert.deepEqual(splitStable(['שרי', 'ועומר'], ['והוא', 'אומר']), { stable: '', unstable: 'והוא אומר' });
});

test('punctuation whisper adds or drops does not make a word unstable', () => {
  assert.deepEqual(splitStable(['מה', 'היכולת,'], ['מה', 'היכולת', 'מה']), { stable: 'מה היכולת', unstable: 'מה' });
});
