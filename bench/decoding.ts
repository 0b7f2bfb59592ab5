/**
 * What each decoding choice for finals costs and buys: beam width, encoder window (audio_ctx),
 * temperature fallback. Transcribes every shared clip with each variant; prints WER and time.
 *   node --import tsx bench/decoding.ts [--threads N] [--binary PATH]
 * --binary compares another whisper-server build (say, one without a source patch) on the same clips.
 */
import os from 'node:os';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { corpusWer } from '../engine/wer.js';
import { createLocalWorkers } from '../engine/whisper/local-workers.js';
import { WorkerPool } from '../engine/whisper/pool.js';
import type { TranscribeOptions } from '../engine/whisper/types.js';
import { createLogger } from '../engine/log.js';
import { benchEngine } from './lib/engine.js';
import { clips, REAL_MODEL } from '../corpus/assets.js';

const threads = Number(process.argv[process.argv.indexOf('--threads') + 1]) || os.availableParallelism();
const binaryArg = process.argv.indexOf('--binary');
const log = createLogger();
const binary = binaryArg > 0 ? process.argv[binaryArg + 1] : (await benchEngine(false, log)).binary;
const pool = new WorkerPool(createLocalWorkers({ binary, model: REAL_MODEL, count: 1, threads, logger: log }), { logger: log });
await pool.start();

const rows: string[] = [];
for (const language of ['he', 'en']) {
  const set = await Promise.all(clips(language).map(async (c) => ({ ...c, pcm: (await decodeAudioFile(c.wav)).pcm })));
  const variants: Array<[string, TranscribeOptions]> = [
    ['full window, beam 5', { beamSize: 5 }],
    ['full window, beam 5, no temperature fallback', { beamSize: 5, temperatureFallback: false }],
    ['full window, beam 3', { beamSize: 3 }],
    ['audio_ctx 1024, beam 5', { beamSize: 5, audioCtx: 1024 }],
    ['audio_ctx 768, beam 5', { beamSize: 5, audioCtx: 768 }],
    ['audio_ctx auto, beam 5', { beamSize: 5, audioCtx: 'auto' }],
    ['full window, greedy', { beamSize: 1 }],
    ['audio_ctx auto, greedy', { beamSize: 1, audioCtx: 'auto' }],
  ];
  for (const [name, options] of variants) {
    let ms = 0;
    const pairs = [];
    for (const clip of set) {
      const t = await pool.transcribe(clip.pcm, { ...options, language });
      ms += t.inferenceMs;
      pairs.push({ reference: clip.reference ?? '', hypothesis: t.text });
    }
    rows.push(`| ${language} | ${name} | ${corpusWer(pairs).wer.toFixed(3)} | ${(ms / 1000).toFixed(1)} s |`);
  }
}
await pool.close();
console.log(`\n1 worker, ${threads} threads, ${REAL_MODEL.split('/').pop()}, ${os.cpus()[0].model}, ${binary}\n`);
console.log('| set | decoding | WER | inference time, whole set |\n| --- | --- | --- | --- |');
console.log(rows.join('\n'));
