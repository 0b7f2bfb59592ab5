import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CATALOG, KolError, quoted, toKolError } from './errors.js';

test('every code in the catalog has an HTTP status and a sentence', () => {
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
    assert.match(code, /^[a-z][a-z0-9_]*$/, code);
    assert.ok(entry.status >= 400 && entry.status < 600, code);
    assert.match(entry.message, /^[A-Z].*\.$/, `${code}: a sentence`);
  }
});

test('a KolError carries its code, and anything else becomes internal_error', () => {
  const known = new KolError('invalid_json');
  assert.equal(known.code, 'invalid_json');
  assert.equal(known.message, ERROR_CATALOG.invalid_json.message);
  assert.equal(toKolError(known), known);
  assert.equal(toKolError(new Error('boom')).code, 'internal_error');
});

test('quoted: a client value shown in an error is JSON, and a long one is cut', () => {
  assert.equal(quoted('transcribe_please'), '"transcribe_please"');
  assert.equal(quoted(undefined), 'null');
  assert.equal(quoted({ a: 1 }), '{"a":1}');
  const long = quoted('x'.repeat(100_000));
  assert.equal(long.length, 61);
  assert.ok(long.endsWith('…'));
});
