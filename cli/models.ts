import type { Command } from 'commander';
import { cacheState, MODELS, modelsDir, pullModel, requireModel, resolveModel, type CacheState } from '../engine/whisper/models.js';
import { trackDownload } from '../engine/whisper/provision.js';
import { formatBytes, provisionBars } from './progress.js';

export function register(program: Command): void {
  const models = program.command('models').description(`list, download and locate whisper.cpp models (kept in ${modelsDir()})`);

  models
    .command('list')
    .description('the known models, their size, and whether each is downloaded')
    .action(() => {
      process.stdout.write(modelTable());
    });

  models
    .command('pull')
    .description('download a model into the cache (resumable; checked against its published size and checksum)')
    .argument('<name>', 'model name, see `kol models list`')
    .option('--mirror <url>', 'fetch <url>/<file name> instead of the published URL')
    .action(async (name: string, flags: { mirror?: string }) => {
      const entry = requireModel(name);
      if (cacheState(entry).state === 'cached') process.stderr.write(`${entry.name}: already downloaded\n`);
      const file = await trackDownload(entry.name, provisionBars(), (onProgress) => pullModel(entry, { mirrorBaseUrl: flags.mirror, onProgress }));
      process.stdout.write(`${file}\n`);
    });

  models
    .command('path')
    .description('print the model file a name or path stands for (downloads nothing)')
    .argument('<name-or-path>', 'model name or file path')
    .action(async (nameOrPath: string) => {
      process.stdout.write(`${await resolveModel(nameOrPath)}\n`);
    });
}

function modelTable(): string {
  const rows = MODELS.map((m) => {
    const cached = cacheState(m);
    const isDefault = m.defaultFor ? ` (default ${m.defaultFor === 'gpu' ? 'with a GPU' : 'on CPU'})` : '';
    return [m.name, m.sizeBytes === undefined ? '?' : formatBytes(m.sizeBytes), m.description + isDefault, describeCache(cached, m.sizeBytes)];
  });
  // The cached file's path goes last: it is long, and the other columns stay aligned.
  const header = ['NAME', 'SIZE', 'DESCRIPTION', 'CACHED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

function describeCache(cached: CacheState, sizeBytes: number | undefined): string {
  if (cached.state === 'cached') return `yes: ${cached.path}`;
  if (cached.state === 'wrong-size') return `wrong size (${formatBytes(cached.bytes)}): ${cached.path}`;
  if (cached.partialBytes > 0 && sizeBytes) return `partial, ${Math.floor((cached.partialBytes / sizeBytes) * 100)} %`;
  return 'no';
}
