import type { Command } from 'commander';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { toKolError, type KolError } from '../engine/errors.js';
import { createLogger } from '../engine/log.js';
import { transcribeOffline, type OfflineTranscript } from '../engine/offline.js';
import { SileroVad } from '../engine/vad/silero.js';
import { createLocalWorkers } from '../engine/whisper/local-workers.js';
import { WorkerPool } from '../engine/whisper/pool.js';
import { provisionEngine, provisionModel } from '../engine/whisper/provision.js';
import type { TranscribeOptions } from '../engine/whisper/types.js';
import { configuredModel } from '../server/config.js';
import { provisionBars } from './progress.js';

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
    .description('transcribe audio files offline (WAV of any rate and channels; other formats through ffmpeg); a file without speech gives no words')
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
      const log = createLogger();
      const progress = provisionBars();
      const engine = await provisionEngine({ logger: log }, progress);
      const model = await provisionModel(configuredModel(flags.model), { gpu: engine.cuda }, progress);
      const pool = new WorkerPool(createLocalWorkers({ binary: engine.binary, model, count: flags.workers, threads: flags.threads, useGpu: engine.cuda, logger: log }), { logger: log });
      let vad: SileroVad | null = null;
      let failed = 0;
      try {
        [vad] = await Promise.all([SileroVad.load(), pool.start()]);
        const deps = { vad, transcriber: pool };
        const audioCtx = flags.audioCtx === undefined ? undefined : flags.audioCtx === 'auto' ? 'auto' : Number.parseInt(flags.audioCtx, 10);
        const options: TranscribeOptions = { language: flags.language, beamSize: flags.beamSize, audioCtx, prompt: flags.prompt };
        // Every file starts at once (the pool queues the work); each settles to its transcript or its
        // error, so one bad file never stops the others.
        const outcomes = files.map((file) =>
          decodeAudioFile(file)
            .then((audio) => {
              if (audio.nonFiniteSamples > 0) process.stderr.write(`kol: ${file}: ${audio.nonFiniteSamples} samples were NaN or infinite; they were read as silence.\n`);
              return transcribeOffline(audio.pcm, deps, options);
            })
            .catch((err: unknown) => toKolError(err)),
        );
        // Printed in the order given, as each becomes available.
        for (const [i, file] of files.entries()) {
          const outcome = await outcomes[i];
          if (outcome instanceof Error) {
            failed++;
            printError(file, outcome, flags.json === true);
          } else {
            printTranscript(file, outcome, files.length > 1, flags.json === true);
          }
        }
      } finally {
        await Promise.all([pool.close(), vad?.close()]);
      }
      if (failed > 0) process.exitCode = 1;
    });
}

function printTranscript(file: string, transcript: OfflineTranscript, withName: boolean, json: boolean): void {
  if (json) {
    const { text, language, duration, speechSeconds, segments, inferenceMs } = transcript;
    process.stdout.write(`${JSON.stringify({ file, text, language, duration, speechSeconds, inferenceMs: Math.round(inferenceMs), segments })}\n`);
    return;
  }
  process.stdout.write(withName ? `${file}\t${transcript.text}\n` : `${transcript.text}\n`);
}

function printError(file: string, err: KolError, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ file, error: { code: err.code, message: err.message } })}\n`);
  process.stderr.write(`kol: ${file}: error [${err.code}]: ${err.message}\n`);
}
