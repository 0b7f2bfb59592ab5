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
