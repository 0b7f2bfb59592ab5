/** The real-time pace limit of a connection's incoming audio. */

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
