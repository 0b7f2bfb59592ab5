import type { Command } from 'commander';
import type { DownloadProgress } from '../../engine/whisper/download.js';
import { hasNvcc } from '../../engine/whisper/build.js';
import { cacheState, defaultModelName, MODELS, modelsDir, pullModel, requireModel, resolveModel, type CacheState } from '../../engine/whisper/models.js';
import { progressBar } from './progress.js';

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
      const file = await withDownloadProgress(entry.name, (onProgress) => pullModel(entry, { mirrorBaseUrl: flags.mirror, onProgress }));
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

/**
 * The model file to run: `requested` (a --model flag), else KOL_MODEL, else the host default — the
 * Hebrew turbo with a GPU, base-q8_0 without. A known model that is not cached yet is downloaded with
 * progress on stderr. `gpu` defaults to what `kol build-engine` defaults to: CUDA when nvcc is present.
 */
export async function ensureModel(requested?: string, host: { gpu: boolean } = { gpu: hasNvcc() }): Promise<string> {
  // `||`: an empty KOL_MODEL (compose's `${KOL_MODEL:-}`) means the default, not a model named "".
  const nameOrPath = requested || process.env.KOL_MODEL || defaultModelName(host);
  return withDownloadProgress(nameOrPath, (onProgress) => resolveModel(nameOrPath, { allowDownload: true, onProgress }));
}

/**
 * Runs `download` with its progress on stderr: a bar on a terminal, a line every 10 % otherwise,
 * redrawn at most once per 0.1 %. Nothing is shown when nothing is downloaded.
 */
async function withDownloadProgress(label: string, download: (onProgress: DownloadProgress) => Promise<string>): Promise<string> {
  const bar = progressBar(label);
  let shownPermille = -1; // -1: no download has started
  const onProgress: DownloadProgress = (received, total) => {
    const permille = total ? Math.floor((received / total) * 1000) : 0;
    if (permille === shownPermille && received !== total) return;
    shownPermille = permille;
    bar.update(total ? received / total : 0, total ? `${formatBytes(received)} / ${formatBytes(total)}` : formatBytes(received));
  };
  try {
    const file = await download(onProgress);
    if (shownPermille >= 0) bar.done(`saved ${file}`);
    return file;
  } catch (err) {
    if (shownPermille >= 0) bar.done('failed'); // ends the bar's line before the error is printed
    throw err;
  }
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

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${bytes} B`;
}
