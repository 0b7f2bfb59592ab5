import type { Command } from 'commander';
import { buildEngine, defaultCudaArchitectures, type BuildProgress } from '../../engine/whisper/build.js';
import { progressBar } from './progress.js';

export function register(program: Command): void {
  program
    .command('build-engine')
    .description('compile whisper-server from the pinned whisper.cpp source (cached: instant the second time)')
    .option('--cuda', 'build with CUDA (default: when nvcc is on the PATH)')
    .option('--no-cuda', 'build for CPU even when nvcc is present')
    .option('--cuda-arch <list>', 'CUDA architectures, comma-separated (default: KOL_CUDA_ARCHS or 86,89,90)', defaultCudaArchitectures().join(','))
    .option('--force', 'rebuild even when a cached build exists')
    .option('-j, --jobs <n>', 'parallel compile jobs', (v) => Number.parseInt(v, 10))
    .action(async (opts: { cuda?: boolean; cudaArch: string; force?: boolean; jobs?: number }) => {
      const build = await ensureEngine({ cuda: opts.cuda, cudaArchitectures: opts.cudaArch.split(','), force: opts.force, jobs: opts.jobs });
      process.stdout.write(`${build.binary}\n`);
    });
}

/** Builds (or finds) the engine, showing progress on stderr. Shared by `serve`, `transcribe`, `worker`. */
export async function ensureEngine(options: Parameters<typeof buildEngine>[0] = {}) {
  const bar = progressBar('whisper.cpp build');
  return buildEngine({
    ...options,
    onProgress(event: BuildProgress) {
      if (event.stage === 'configure') process.stderr.write(`whisper.cpp build: configuring (${event.flags.includes('-DGGML_CUDA=1') ? 'CUDA' : 'CPU'}) in ${event.buildDir}\n`);
      if (event.stage === 'compile') bar.update(event.percent / 100, event.line.replace(/^\[\s*\d+%\]\s*/, '').slice(0, 60));
      if (event.stage === 'done') bar.done(`built ${event.binary} in ${event.seconds.toFixed(0)} s`);
    },
  });
}
