/** Spawning the bench's helper processes (servers, client swarms) with an IPC channel, and talking to them. */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../engine/paths.js';

export interface Helper<M> {
  child: ChildProcess;
  pid: number;
  /** The next message that `match` accepts. */
  next<T extends M>(match: (m: M) => m is T, timeoutMs?: number): Promise<T>;
  send(message: unknown): void;
  /** Asks it to close, then kills it if it has not gone within `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** Runs `bench/<script>` under tsx with an IPC channel; stderr passes through (the helpers log only warnings). */
export function spawnHelper<M>(script: string, args: string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Helper<M> {
  const child = fork(path.join(REPO_ROOT, 'bench', script), args, {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
    env: { ...process.env, KOL_LOG_LEVEL: process.env.KOL_LOG_LEVEL ?? 'error', ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: M[] = [];
  const waiters: Array<(m: M) => boolean> = [];
  child.on('message', (m) => {
    const message = m as M;
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i](message)) {
        waiters.splice(i, 1);
        return;
      }
    }
    inbox.push(message);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    pid: child.pid ?? 0,
    next<T extends M>(match: (m: M) => m is T, timeoutMs = 180_000): Promise<T> {
      const at = inbox.findIndex(match);
      if (at >= 0) return Promise.resolve(inbox.splice(at, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script}: no expected message within ${timeoutMs} ms`)), timeoutMs);
        const onExit = () => reject(new Error(`${script} exited (code ${child.exitCode}) before the expected message`));
        child.once('exit', onExit);
        waiters.push((m) => {
          if (!match(m)) return false;
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(m);
          return true;
        });
      });
    },
    send(message) {
      if (child.connected) child.send(message as object);
    },
    async close(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
