import type { Command } from 'commander';

/** `kol bench`: the benchmark suite in bench/ (a development tool; nothing in the server needs it). */
export function register(program: Command): void {
  program
    .command('bench')
    .description('benchmark latency, throughput and accuracy against baselines and peers (see bench/README.md)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[options...]', '--quick, --gpu, --streams 1,2,4, --workers N, --threads N, --model PATH, --clips N, --skip kol,continuous,asimov,sweeps,offline,naive,peers,capacity, --out DIR, --render RAW.json')
    .action(async (args: string[]) => {
      const { main } = await import('../bench/run.js');
      await main(args);
      process.exit(process.exitCode ?? 0);
    });
}
