import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isKolError } from '../../engine/errors.js';
import { parseClientMessage } from './protocol.js';
import { applyConfig, type SessionConfig } from '../session-config.js';

const BASE: SessionConfig = { sample_rate: 16000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: true, endpoint_ms: 500, prompt: '', room: null };
const FIELDS = new Set(Object.keys(BASE));

/** A `config` text frame as a client writes it: the keys exactly as given, duplicates and all. */
function configFrame(entries: Array<[string, unknown]>): string {
  return `{"type":"config",${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

test('property: a config with any unknown field, __proto__ and its kin included, is refused with invalid_config', () => {
  const unknownKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'), fc.string()).filter((k) => !FIELDS.has(k) && k !== 'type');
  const value = fc.oneof(fc.constant({ sample_rate: 8000 }), fc.constant(null), fc.integer(), fc.string(), fc.constant([1, 2]));
  const knownEntry = fc.constantFrom<[string, unknown]>(['language', 'en'], ['sample_rate', 8000], ['partials', false]);
  fc.assert(
    fc.property(fc.array(knownEntry, { maxLength: 3 }), fc.tuple(unknownKey, value), fc.array(knownEntry, { maxLength: 3 }), (before, unknown, after) => {
      const frame = configFrame([...before, unknown, ...after]);
      const message = parseClientMessage(frame);
      assert.equal(message.type, 'config');
      assert.throws(
        () => applyConfig(BASE, message.type === 'config' ? message.update : {}),
        (err: unknown) => isKolError(err, 'invalid_config') && err.message.includes(`"${unknown[0]}"`),
        frame,
      );
    }),
    { numRuns: 500 },
  );
});

test('a config of known fields only is applied as sent', () => {
  const message = parseClientMessage(configFrame([['sample_rate', 8000], ['language', 'en']]));
  assert.deepEqual(message.type === 'config' && applyConfig(BASE, message.update), { ...BASE, sample_rate: 8000, language: 'en' });
});
