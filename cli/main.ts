import { Command } from 'commander';
import { isKolError } from '../engine/errors.js';
import { register as bench } from './bench.js';
import { register as buildEngine } from './build-engine.js';
import { register as models } from './models.js';
import { register as serve } from './serve.js';
import { register as stream } from './stream.js';
import { register as transcribe } from './transcribe.js';
import { register as worker } from './worker.js';

/** The `kol` command line: each subcommand lives in cli/<name>.ts. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('kol')
    .description('Real-time Hebrew speech-to-text: a WebSocket streaming server over whisper.cpp')
    .showHelpAfterError();
  for (const register of [serve, stream, transcribe, buildEngine, models, bench, worker]) register(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (isKolError(err)) {
      process.stderr.write(`kol: error [${err.code}]: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
