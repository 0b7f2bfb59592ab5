/**
 * Music between speech, as a broadcast caption overlay meets it: gated tones streamed through a real
 * WebSocket into real whisper-server workers. Whisper answers music with non-speech markers
 * ("*תאגר*", "[MUSIC]", "♪"); no marker may reach a partial or a final.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { streamAudio } from '../clients/cli/stream-client.js';
import { REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';
import { toS16 } from '../test/helpers/production.js';
import { startTestServer } from '../test/helpers/server.js';
import { evenNotes } from '../test/helpers/signals.js';
import type { RunningServer } from './app.js';

/** Brackets, asterisks, musical symbols, format (Cf) and control characters. */
const NOT_CAPTION_TEXT = /[[\]()*\u2669-\u266F\p{Cf}\p{Cc}]/u;

describe('non-speech audio over /v1/stream with the real base model', () => {
  let server: RunningServer;
  before(async () => {
    if (!fs.existsSync(REAL_MODEL)) return;
    server = await startTestServer();
  });
  after(() => server?.close());

  test('20 s of music-like gated tones at 4× real time: no marker or format character in any partial or final, and no final words', async (t) => {
    if (!haveAssets(t, REAL_MODEL)) return;
    const result = await streamAudio({ url: `${server.url}/v1/stream`, audio: toS16(evenNotes(20)), speed: 4 });
    assert.equal(result.closeCode, 1000);
    const messages = result.messages.map((m) => m.message);
    const partials = messages.filter((m) => m.type === 'partial');
    t.diagnostic(`finals ${JSON.stringify(result.finals.map((f) => f.text))}; partials ${JSON.stringify(partials.map((p) => p.text))}`);
    // Otherwise the test would pass without anything ever reaching whisper.
    assert.ok(result.finals.length >= 2, 'the VAD took the tones for speech');
    for (const text of [...partials.flatMap((p) => [p.text, p.stable, p.unstable]), ...result.finals.flatMap((f) => [f.text, ...f.words.map((w) => w.word)])]) {
      assert.doesNotMatch(text, NOT_CAPTION_TEXT, 'no marker, musical symbol, format or control character');
    }
    // Whisper's finals for this melody are markers ("*תאגר*") or loops: nothing is left of them. (Its
    // greedy partials may still invent a plain word such as "וואו": no marker gives those away.)
    for (const final of result.finals) {
      assert.equal(final.text, '', `final ${final.segment_id} has no text`);
      assert.deepEqual(final.words, [], `final ${final.segment_id} has no words`);
    }
  });
});
