import type { ProvisionProgress } from '../engine/whisper/provision.js';

/**
 * Progress for long work (engine build, model download): an in-place bar on a terminal, and plain
 * lines at every 10 % otherwise, so CI logs show progress without thousands of carriage returns.
 */
export interface ProgressBar {
  update(fraction: number, detail?: string): void;
  done(message: string): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const tty = stream.isTTY === true;
  let lastDecile = -1;
  return {
    update(fraction, detail = '') {
      const clamped = Math.max(0, Math.min(1, fraction));
      const percent = Math.floor(clamped * 100);
      if (tty) {
        const width = 30;
        const filled = Math.round(clamped * width);
        const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${detail}`;
        stream.write(`\r${line.slice(0, (stream.columns ?? 100) - 1)}\x1b[K`);
        return;
      }
      const decile = Math.floor(percent / 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        stream.write(`${label}: ${percent}% ${detail}\n`);
      }
    },
    done(message) {
      stream.write(tty ? `\r${label}: ${message}\x1b[K\n` : `${label}: ${message}\n`);
    },
  };
}

/**
 * Provisioning's progress (engine/whisper/provision.ts) on stderr: a line when the build is
 * configured, then a bar for the compile and one for each model download (redrawn at most once per
 * 0.1 %). A cached build or model shows nothing.
 */
export function provisionBars(stream: NodeJS.WriteStream = process.stderr): ProvisionProgress {
  let build: ProgressBar | null = null;
  const downloads = new Map<string, { bar: ProgressBar; shownPermille: number }>();
  return (event) => {
    switch (event.stage) {
      case 'configure':
        stream.write(`whisper.cpp build: configuring (${event.flags.includes('-DGGML_CUDA=1') ? 'CUDA' : 'CPU'}) in ${event.buildDir}\n`);
        return;
      case 'compile':
        build ??= progressBar('whisper.cpp build', stream);
        build.update(event.percent / 100, event.line.replace(/^\[\s*\d+%\]\s*/, '').slice(0, 60));
        return;
      case 'done':
        build ??= progressBar('whisper.cpp build', stream);
        build.done(`built ${event.binary} in ${event.seconds.toFixed(0)} s`);
        return;
      case 'download': {
        const { receivedBytes: received, totalBytes: total } = event;
        let shown = downloads.get(event.model);
        if (!shown) downloads.set(event.model, (shown = { bar: progressBar(event.model, stream), shownPermille: -1 }));
        const permille = total ? Math.floor((received / total) * 1000) : 0;
        if (permille === shown.shownPermille && received !== total) return;
        shown.shownPermille = permille;
        shown.bar.update(total ? received / total : 0, total ? `${formatBytes(received)} / ${formatBytes(total)}` : formatBytes(received));
        return;
      }
      case 'downloaded':
        downloads.get(event.model)?.bar.done(`saved ${event.file}`);
        return;
      case 'download-failed':
        downloads.get(event.model)?.bar.done('failed'); // ends the bar's line before the error is printed
        return;
      case 'cached':
        return;
    }
  };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${bytes} B`;
}
