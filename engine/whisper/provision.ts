/**
 * What a host needs before a whisper worker can start: the whisper-server build (compiled when it is
 * not cached) and the model file (downloaded when a known model is not cached). Both can take
 * minutes, so both report through an injected `onProgress`: the CLI draws progress bars with it
 * (cli/progress.ts), the server logs it (`logProgress`). Nothing here writes to the terminal.
 */
import type { Logger } from '../log.js';
import { buildEngine, type BuildOptions, type BuildProgress, type EngineBuild } from './build.js';
import type { DownloadProgress } from './download.js';
import { defaultModelName, resolveModel } from './models.js';

/** A build's progress, or a model download's: `model` is the name or path being fetched. */
export type ProvisionEvent =
  | BuildProgress
  | { stage: 'download'; model: string; receivedBytes: number; totalBytes: number | undefined }
  | { stage: 'downloaded'; model: string; file: string }
  | { stage: 'download-failed'; model: string };

export type ProvisionProgress = (event: ProvisionEvent) => void;

/** The cached whisper-server build for these options, compiled first when there is none. */
export function provisionEngine(options: Omit<BuildOptions, 'onProgress'> = {}, onProgress?: ProvisionProgress): Promise<EngineBuild> {
  return buildEngine({ ...options, onProgress });
}

/**
 * The model file to run: `configured` (a name or path; empty: the host default, the Hebrew turbo with
 * a GPU and base-q8_0 without), downloaded into the cache first when it is a known model not there yet.
 */
export function provisionModel(configured: string, host: { gpu: boolean }, onProgress?: ProvisionProgress): Promise<string> {
  const nameOrPath = configured || defaultModelName(host);
  return trackDownload(nameOrPath, onProgress, (progress) => resolveModel(nameOrPath, { allowDownload: true, onProgress: progress }));
}

/**
 * Runs `download`, turning its byte counts into `download` events and its end into `downloaded` or
 * `download-failed`; those two only when bytes were fetched, so a cached model reports nothing.
 */
export async function trackDownload(model: string, onProgress: ProvisionProgress | undefined, download: (progress: DownloadProgress) => Promise<string>): Promise<string> {
  let started = false;
  const progress: DownloadProgress = (receivedBytes, totalBytes) => {
    started = true;
    onProgress?.({ stage: 'download', model, receivedBytes, totalBytes });
  };
  try {
    const file = await download(progress);
    if (started) onProgress?.({ stage: 'downloaded', model, file });
    return file;
  } catch (err) {
    if (started) onProgress?.({ stage: 'download-failed', model });
    throw err;
  }
}

/** Provisioning's progress as log lines: the build's stages, and every 10 % of a build or a download. */
export function logProgress(logger: Logger): ProvisionProgress {
  let buildDecile = -1;
  const downloadDeciles = new Map<string, number>();
  return (event) => {
    switch (event.stage) {
      case 'configure':
        logger.info({ buildDir: event.buildDir, cuda: event.flags.includes('-DGGML_CUDA=1') }, 'building whisper.cpp');
        return;
      case 'compile': {
        const decile = Math.floor(event.percent / 10);
        if (decile > buildDecile) {
          buildDecile = decile;
          logger.info({ percent: event.percent }, 'building whisper.cpp');
        }
        return;
      }
      case 'done':
        logger.info({ binary: event.binary, seconds: Math.round(event.seconds) }, 'whisper.cpp built');
        return;
      case 'download': {
        const percent = event.totalBytes ? Math.floor((event.receivedBytes / event.totalBytes) * 100) : 0;
        const decile = Math.floor(percent / 10);
        if (decile > (downloadDeciles.get(event.model) ?? -1)) {
          downloadDeciles.set(event.model, decile);
          logger.info({ model: event.model, percent, receivedBytes: event.receivedBytes, totalBytes: event.totalBytes }, 'downloading model');
        }
        return;
      }
      case 'downloaded':
        logger.info({ model: event.model, file: event.file }, 'model downloaded');
        return;
      case 'download-failed':
      case 'cached':
        // A failure is thrown to the caller, which reports it; a cached build needs no word.
        return;
    }
  };
}
