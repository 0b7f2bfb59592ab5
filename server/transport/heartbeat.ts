/**
 * One heartbeat for every connection, sessions and caption viewers alike: it pings, cuts off a
 * client that vanished without a close (a laptop lid, a dropped mobile link), and gives each
 * connection's owner a turn to check its own timers (a session's idle and length limits).
 */
import type { Connection } from './connection.js';

/** How often to beat: at most every 15 s, and often enough that a short idle or session limit is noticed in time. */
export function heartbeatIntervalMs(idleTimeoutSeconds: number, maxSessionSeconds: number, defaultMs = 15_000): number {
  return Math.max(250, Math.min(defaultMs, (idleTimeoutSeconds * 1000) / 3, (maxSessionSeconds * 1000) / 3));
}

export class Heartbeat {
  private readonly members = new Map<Connection, ((now: number) => void) | null>();
  private readonly timer: NodeJS.Timeout;
  private lastBeatAt = Date.now();

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.beat(), intervalMs);
    this.timer.unref();
  }

  /** Watches a connection until it closes; `onBeat` (set again by a later call) runs at each beat it survives. */
  watch(connection: Connection, onBeat: ((now: number) => void) | null = null): void {
    if (!this.members.has(connection)) connection.onClose(() => this.members.delete(connection));
    this.members.set(connection, onBeat);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private beat(): void {
    const now = Date.now();
    const since = this.lastBeatAt;
    this.lastBeatAt = now;
    for (const [connection, onBeat] of this.members) if (connection.beat(since)) onBeat?.(now);
  }
}
