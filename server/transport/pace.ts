/**
 * Small pieces of the gateway's limits, kept out of gateway.ts so they can be tested on their own:
 * the real-time pace limiter, the heartbeat period, and reading the error code out of a message in
 * any dialect (native, Deepgram, OpenAI Realtime, Vosk) for the errors-by-code metric.
 */
import { ERROR_CATALOG, type ErrorCode } from '../../engine/errors.js';

/**
 * A token bucket of audio seconds: credit accrues at `factor` × real time up to `burstSeconds` and
 * every frame spends its length. A client that keeps sending faster than that is paused (its socket
 * is not read) for as long as it takes the credit to come back. Unlike a budget counted from the start
 * of the session, a client cannot save up credit by sending slowly for an hour and then blast.
 */
export class PaceLimiter {
  private credit: number;
  private at: number;

  constructor(
    private readonly factor: number,
    private readonly burstSeconds: number,
    now = Date.now(),
  ) {
    this.credit = burstSeconds;
    this.at = now;
  }

  /** Spends `seconds` of audio; returns how long (ms) reading must pause, 0 when within the limit. */
  spend(seconds: number, now = Date.now()): number {
    this.credit = Math.min(this.burstSeconds, this.credit + ((now - this.at) / 1000) * this.factor);
    this.at = now;
    this.credit -= seconds;
    return this.credit >= 0 ? 0 : (-this.credit / this.factor) * 1000;
  }
}

/** How often the gateway pings clients and checks idle and session-length limits. */
export function heartbeatIntervalMs(idleTimeoutSeconds: number, maxSessionSeconds: number, defaultMs = 15_000): number {
  // A short idle timeout (tests, kiosks) must not wait for a 15 s beat to be noticed.
  return Math.max(250, Math.min(defaultMs, (idleTimeoutSeconds * 1000) / 3, (maxSessionSeconds * 1000) / 3));
}

/**
 * The error code carried by an outgoing message, whatever its dialect: native `{type:"error",code}`,
 * Deepgram `{type:"Error",code}`, Vosk `{error,code}`, OpenAI `{type:"error",error:{code}}` and
 * `…transcription.failed` events. Null for anything that is not an error with a catalog code.
 */
export function errorCodeOf(message: unknown): ErrorCode | null {
  if (typeof message !== 'object' || message === null) return null;
  const m = message as Record<string, unknown>;
  const isError = m.type === 'error' || m.type === 'Error' || 'error' in m;
  const nested = typeof m.error === 'object' && m.error !== null ? (m.error as Record<string, unknown>).code : undefined;
  const code = isError && typeof m.code === 'string' ? m.code : nested;
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOG, code) ? (code as ErrorCode) : null;
}
