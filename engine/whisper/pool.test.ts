/**
 * The worker pool against real whisper-server processes and the real Whisper base model:
 * real Hebrew and English text, crash and hang recovery, and clear errors for bad input.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { decodeAudioFile } from '../audio/wav.js';
import { isKolError } from '../errors.js';
import { corpusWer } from '../wer.js';
import { clips, REAL_MODEL, assetPath } from '../../corpus/assets.js';
import { haveAssets } from '../../test/helpers/assets.js';
import { recordBaseline } from '../../test/helpers/baselines.js';
import { engine } from '../../test/helpers/engine.js';
import { testWorkerSetup } from '../../test/helpers/server.js';
import { createLocalWorkers, defaultThreads } from './local-workers.js';
import { audioCtxFor } from './client.js';
import { WorkerPool } from './pool.js';
import { LocalWorker } from './worker.js';
import { partialOptions } from '../stream.js';

const HEBREW_LETTER = /[\u05D0-\u05EA]/g;

/** A pool of one fresh worker, so that every request lands on it (for tests of what a worker remembers). */
async function singleWorkerPool(t: TestContext, idPrefix: string): Promise<WorkerPool> {
  // Every core for the lone worker, as `threads: 0` gives it: these tests decode one request at a time.
  const pool = new WorkerPool(createLocalWorkers({ binary: (await engine()).binary, model: REAL_MODEL, count: 1, threads: defaultThreads(), idPrefix }), { requestTimeoutMs: 30_000 });
  t.after(() => pool.close());
  await pool.start();
  return pool;
}

describe('worker pool on the real base model', { skip: !fs.existsSync(REAL_MODEL) && `MISSING ${REAL_MODEL}` }, () => {
  let pool: WorkerPool;
  let workers: LocalWorker[];

  before(async () => {
    // Started as a test server's workers are (test/helpers/server.ts), so the transcripts recorded here
    // serve as the offline baselines of the streaming tests.
    const setup = await testWorkerSetup();
    workers = createLocalWorkers({ binary: setup.binary, model: setup.model, count: 2, threads: setup.threads, flashAttention: setup.flashAttention });
    pool = new WorkerPool(workers, { requestTimeoutMs: 30_000 });
    await pool.start();
  });
  after(() => pool?.close());

  test('English: jfk.wav WER <= 0.10 and the English set <= 0.12', async (t) => {
    const set = clips('en');
    if (!haveAssets(t, ...set.map((c) => c.wav))) return;
    const rows = await Promise.all(
      set.map(async (clip) => {
        const audio = await decodeAudioFile(clip.wav);
        const options = { language: 'en', beamSize: 5 };
        const transcript = await pool.transcribe(audio.pcm, options);
        recordBaseline(await testWorkerSetup(), audio.pcm, options, transcript.text);
        return { name: clip.name, reference: clip.reference ?? '', hypothesis: transcript.text };
      }),
    );
    const jfk = rows.find((r) => r.name === 'jfk');
    assert.ok(jfk, 'jfk.wav is part of the shared English set');
    const jfkWer = corpusWer([jfk]).wer;
    const all = corpusWer(rows).wer;
    for (const r of rows) t.diagnostic(`${r.name}: WER ${corpusWer([r]).wer.toFixed(3)} — ${r.hypothesis}`);
    t.diagnostic(`English overall WER ${all.toFixed(3)}`);
    assert.ok(jfkWer <= 0.1, `jfk WER ${jfkWer}`);
    assert.ok(all <= 0.12, `English WER ${all}`);
  });

  test('Hebrew: every clip in Hebrew script, overall WER <= 0.36', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, ...set.map((c) => c.wav))) return;
    assert.ok(set.length >= 10, 'the shared Hebrew set has its clips');
    const rows = await Promise.all(
      set.map(async (clip) => {
        const audio = await decodeAudioFile(clip.wav);
        const options = { language: 'he', beamSize: 5 };
        const transcript = await pool.transcribe(audio.pcm, options);
        recordBaseline(await testWorkerSetup(), audio.pcm, options, transcript.text);
        return { name: clip.name, reference: clip.reference ?? '', hypothesis: transcript.text, transcript };
      }),
    );
    let letters = 0;
    let hebrew = 0;
    for (const r of rows) {
      t.diagnostic(`${r.name}: WER ${corpusWer([r]).wer.toFixed(3)} — ${r.hypothesis}`);
      const clipLetters = r.hypothesis.replace(/[\s\p{P}\d]/gu, '').length;
      const clipHebrew = (r.hypothesis.match(HEBREW_LETTER) ?? []).length;
      // Mostly Hebrew letters (a loanword may come out in Latin script): not a transliteration or translation.
      assert.ok(clipLetters > 0 && clipHebrew / clipLetters > 0.6, `${r.name} is Hebrew script: ${r.hypothesis}`);
      letters += clipLetters;
      hebrew += clipHebrew;
      assert.ok(r.transcript.segments.length > 0 && r.transcript.segments[0].words.length > 0, 'segments carry words');
      const last = r.transcript.segments.at(-1)!;
      assert.ok(last.end > 0 && last.end <= r.transcript.duration + 0.5, 'segment times lie within the audio');
    }
    assert.ok(hebrew / letters > 0.95, `the set is Hebrew script (${hebrew} of ${letters} letters)`);
    const overall = corpusWer(rows).wer;
    t.diagnostic(`Hebrew overall WER ${overall.toFixed(3)} over ${rows.length} clips`);
    assert.ok(overall <= 0.36, `Hebrew WER ${overall}`);
  });

  test('beam search is reproducible: the same audio gives the same text whatever came before', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, ...set.map((c) => c.wav))) return;
    const [a, b] = await Promise.all(set.slice(0, 2).map(async (c) => (await decodeAudioFile(c.wav)).pcm));
    const once = await pool.transcribe(a, { language: 'he', beamSize: 5 });
    await pool.transcribe(b, { language: 'he', beamSize: 5 });
    await pool.transcribe(b, { language: 'he', beamSize: 5 });
    const again = await pool.transcribe(a, { language: 'he', beamSize: 5 });
    assert.equal(again.text, once.text);
  });

  test('a final does not depend on the partials its worker served before it', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, ...set.map((c) => c.wav))) return;
    // One worker, so that every request lands on it. A full-window final (the case with padding
    // cells, as `kol transcribe` decodes) after partials with a reduced audio_ctx: without the
    // mask-cross-attention-padding patch the final of the first clip came out two words different.
    const single = await singleWorkerPool(t, 's');
    const [a, b] = await Promise.all(set.slice(0, 2).map(async (c) => (await decodeAudioFile(c.wav)).pcm));
    const final = { language: 'he', beamSize: 5 };
    const before = await single.transcribe(a, final);
    // Partials as a stream sends them: growing prefixes of another clip, prompted with a final,
    // then of the clip itself.
    for (const pcm of [b, a]) {
      for (let end = 16000; end < pcm.length; end += 8000) await single.transcribe(pcm.subarray(0, end), partialOptions('he', before.text));
    }
    const after = await single.transcribe(a, final);
    assert.equal(after.text, before.text);
  });

  test('a window sized to the audio does not depend on the longer requests its worker served before it', async (t) => {
    const set = clips('he');
    if (!haveAssets(t, ...set.map((c) => c.wav))) return;
    // A window that is not a multiple of 256 frames has padding cells in the encoder's attention;
    // without the mask-encoder-padding patch they held the keys of the longer request before it.
    const pcms = await Promise.all(set.map(async (c) => (await decodeAudioFile(c.wav)).pcm));
    const short = pcms.find((pcm) => audioCtxFor(pcm.length) % 256 !== 0);
    assert.ok(short, 'a clip whose sized window has padding');
    const long = pcms.reduce((a, b) => (b.length > a.length ? b : a));
    const single = await singleWorkerPool(t, 'e');
    const sized = { language: 'he', beamSize: 5, audioCtx: 'auto' } as const;
    const fresh = await single.transcribe(short, sized);
    await single.transcribe(long, { language: 'he', beamSize: 5 });
    const afterLong = await single.transcribe(short, sized);
    assert.equal(afterLong.text, fresh.text);
  });

  test('kill -9 of a worker during a request: the request completes and the worker comes back', async (t) => {
    if (!haveAssets(t, assetPath('audio', 'en', 'jfk.wav'))) return;
    const audio = await decodeAudioFile(assetPath('audio', 'en', 'jfk.wav'));
    const restartsBefore = pool.stats().workers.reduce((n, w) => n + w.restarts, 0);
    const pending = pool.transcribe(audio.pcm, { language: 'en' });
    // Wait until a worker has the request, then kill exactly that process.
    let victim: LocalWorker | undefined;
    for (let i = 0; i < 100 && !victim; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const busy = pool.stats().workers.find((w) => w.state === 'busy');
      victim = workers.find((w) => w.id === busy?.id);
    }
    assert.ok(victim?.pid, 'a worker took the request');
    const killedPid = victim.pid;
    process.kill(killedPid, 'SIGKILL');

    const transcript = await pending;
    assert.match(transcript.text.toLowerCase(), /ask not what your country can do for you/);

    // The killed worker is restarted with a new process.
    for (let i = 0; i < 200 && pool.stats().workers.find((w) => w.id === victim.id)?.state !== 'ready'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pool.stats().workers.find((w) => w.id === victim.id)?.state, 'ready');
    assert.notEqual(victim.pid, killedPid);
    assert.equal(pool.stats().workers.reduce((n, w) => n + w.restarts, 0), restartsBefore + 1);
  });

  test('a hung worker (SIGSTOP) times out, is restarted, and the request is retried', async (t) => {
    if (!haveAssets(t, assetPath('audio', 'en', 'jfk.wav'))) return;
    const audio = await decodeAudioFile(assetPath('audio', 'en', 'jfk.wav'));
    const frozen = workers[0];
    const frozenPid = frozen.pid!;
    process.kill(frozenPid, 'SIGSTOP');
    try {
      // Two requests at once: one lands on the frozen worker, times out there, and is retried.
      const started = Date.now();
      const results = await Promise.all([0, 1].map(() => pool.transcribe(audio.pcm, { language: 'en', timeoutMs: 4000 })));
      for (const r of results) assert.match(r.text.toLowerCase(), /ask not what your country/);
      t.diagnostic(`both requests done in ${Date.now() - started} ms`);
    } finally {
      try {
        process.kill(frozenPid, 'SIGCONT');
      } catch {
        // already killed by the pool, as expected
      }
    }
    assert.notEqual(frozen.pid, frozenPid, 'the hung process was replaced');
  });

  test('audio of any length is transcribed, not only whole multiples of 8 samples (the request time limit grows with it)', async (t) => {
    if (!haveAssets(t, assetPath('audio', 'en', 'jfk.wav'))) return;
    const audio = await decodeAudioFile(assetPath('audio', 'en', 'jfk.wav'));
    // 4 s + 3 samples: the limit, 30 s + 2 s per second of audio, is not a whole number of ms.
    const transcript = await pool.transcribe(audio.pcm.subarray(0, 4 * 16_000 + 3), { language: 'en' });
    assert.match(transcript.text.toLowerCase(), /fellow americans/);
  });

  test('bad input gets specific errors and the pool keeps serving', async (t) => {
    if (!haveAssets(t, assetPath('audio', 'en', 'jfk.wav'))) return;
    await assert.rejects(pool.transcribe(new Float32Array(0)), (e) => isKolError(e, 'audio_empty'));
    await assert.rejects(pool.transcribe(new Float32Array(800)), (e) => isKolError(e, 'audio_too_short') && /0\.050 s/.test(e.message));

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-bad-audio-'));
    const notAudio = path.join(dir, 'notes.wav');
    fs.writeFileSync(notAudio, 'this is a text file, not audio\n'.repeat(20));
    await assert.rejects(decodeAudioFile(notAudio), (e) => isKolError(e, 'audio_unreadable') && e.message.includes('notes.wav'));
    const empty = path.join(dir, 'empty.wav');
    fs.writeFileSync(empty, '');
    await assert.rejects(decodeAudioFile(empty), (e) => isKolError(e) && ['audio_empty', 'audio_unreadable'].includes(e.code));

    // Still serving.
    const audio = await decodeAudioFile(assetPath('audio', 'en', 'jfk.wav'));
    const transcript = await pool.transcribe(audio.pcm, { language: 'en' });
    assert.match(transcript.text.toLowerCase(), /my fellow americans/);
  });

  test('abort: a cancelled request rejects with transcription_aborted and frees its worker', async (t) => {
    if (!haveAssets(t, assetPath('audio', 'he', 'Credit_Rating_0006.wav'))) return;
    const audio = await decodeAudioFile(assetPath('audio', 'he', 'Credit_Rating_0006.wav'));
    const controller = new AbortController();
    const pending = pool.transcribe(audio.pcm, { language: 'he', beamSize: 5 }, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(pending, (e) => isKolError(e, 'transcription_aborted'));
    const ok = await pool.transcribe(audio.pcm.subarray(0, 16000 * 3), { language: 'he' });
    assert.ok(ok.text.length > 0);
  });
});

describe('model errors', () => {
  test('a missing model file is model_not_found', async () => {
    const { binary } = await engine();
    const pool = new WorkerPool(createLocalWorkers({ binary, model: '/nonexistent/ggml-nothing.bin', count: 1 }));
    await assert.rejects(pool.start(), (e) => isKolError(e, 'model_not_found') && e.message.includes('/nonexistent/ggml-nothing.bin'));
  });

  test('a corrupt model file is model_invalid', async () => {
    const { binary } = await engine();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-bad-model-'));
    const corrupt = path.join(dir, 'ggml-corrupt.bin');
    fs.writeFileSync(corrupt, Buffer.alloc(4096, 7));
    const pool = new WorkerPool(createLocalWorkers({ binary, model: corrupt, count: 1 }));
    await assert.rejects(pool.start(), (e) => isKolError(e, 'model_invalid') && e.message.includes(corrupt));
  });
});
