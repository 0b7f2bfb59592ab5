import type { Command } from 'commander';
import { createLogger } from '../engine/log.js';
import { defaultCudaArchitectures } from '../engine/whisper/build.js';
import { provisionEngine } from '../engine/whisper/provision.js';
import { provisionBars } from './progress.js';

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
      const build = await provisionEngine({ cuda: opts.cuda, cudaArchitectures: opts.cudaArch.split(','), force: opts.force, jobs: opts.jobs, logger: createLogger() }, provisionBars());
      process.stdout.write(`${build.binary}\n`);
    });
}
