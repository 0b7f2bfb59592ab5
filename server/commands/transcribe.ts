import type { Command } from 'commander';
import { decodeAudioFile } from '../../engine/audio/wav.js';
import { toKolError } from '../../engine/errors.js';
import { createLocalWorkers } from '../../engine/whisper/local-workers.js';
import { WorkerPool } from '../../engine/whisper/pool.js';
import type { Transcript } from '../../engine/whisper/types.js';
import { ensureEngine } from './build-engine.js';
import { ensureModel } from './models.js';

interface TranscribeFlags {
  model?: string;
  language: string;
  json?: boolean;
  beamSize: number;
  audioCtx?: string;
  prompt?: string;
  workers: number;
  threads?: number;
}

export function register(program: Command): void {
  program
    .command('transcribe')
    .description('transcribe audio files offline (WAV of any rate and channels; other formats through ffmpeg)')
    .argument('<files...>', 'audio files')
    .option('-m, --model <name|path>', 'model name (see `kol models list`) or file path; default KOL_MODEL or the host default')
    .option('-l, --language <code>', 'spoken language, or "auto"', 'he')
    .option('--json', 'print the transcript with segments and word times as JSON, one object per line')
    .option('--beam-size <n>', 'beam search width (1 = greedy)', (v) => Number.parseInt(v, 10), 5)
    .option('--audio-ctx <n|auto>', 'encoder context frames (default: the full 30 s window)')
    .option('--prompt <text>', 'initial prompt')
    .option('--workers <n>', 'whisper-server processes', (v) => Number.parseInt(v, 10), 1)
    .option('-t, --threads <n>', 'threads per worker', (v) => Number.parseInt(v, 10))
    .action(async (files: string[], flags: TranscribeFlags) => {
      const engine = await ensureEngine();
      const model = await ensureModel(flags.model);
      const pool = new WorkerPool(createLocalWorkers({ binary: engine.binary, model, count: flags.workers, threads: flags.threads, useGpu: engine.cuda }));
      let failed = 0;
      try {
        await pool.start();
        const audioCtx = flags.audioCtx === undefined ? undefined : flags.audioCtx === 'auto' ? 'auto' : Number.parseInt(flags.audioCtx, 10);
        const results = files.map(async (file) => {
          const audio = await decodeAudioFile(file);
          return pool.transcribe(audio.pcm, { language: flags.language, beamSize: flags.beamSize, audioCtx, prompt: flags.prompt });
        });
        // Print in the order given, as each becomes available.
        for (const [i, file] of files.entries()) {
          try {
            printTranscript(file, await results[i], files.length > 1, flags.json === true);
          } catch (raw) {
            const err = toKolError(raw);
            failed++;
            if (flags.json) process.stdout.write(`${JSON.stringify({ file, error: { code: err.code, message: err.message } })}\n`);
            process.stderr.write(`kol: ${file}: error [${err.code}]: ${err.message}\n`);
          }
        }
      } finally {
        await pool.close();
      }
      if (failed > 0) process.exitCode = 1;
    });
}

function printTranscript(file: string, transcript: Transcript, withName: boolean, json: boolean): void {
  if (json) {
    const { text, language, duration, segments, inferenceMs } = transcript;
    process.stdout.write(`${JSON.stringify({ file, text, language, duration, inferenceMs: Math.round(inferenceMs), segments })}\n`);
    return;
  }
  process.stdout.write(withName ? `${file}\t${transcript.text}\n` : `${transcript.text}\n`);
}
