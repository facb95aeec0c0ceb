/**
 * A token bucket: the reconciler's EKS call budget per account-region (issue 13). EKS rate limits are
 * per account and region and shared with everything else calling EKS there, so the reconciler spends at
 * most `ratePerSecond` of them, whatever the size of the fleet. Pure: the clock and the sleep are
 * injected, so the fleet benchmark drives the same bucket on a virtual clock.
 *
 * Callers reserve a token and then wait for it: the bucket may go into debt, and the n-th caller beyond
 * the available tokens waits n ÷ rate. So in any window of T seconds at most `burst + rate × T` calls
 * start, however many callers there are, and callers are served in arrival order.
 */
export interface TokenBucketOptions {
  ratePerSecond: number;
  /**
   * Tokens that can accumulate while nobody calls (default 1). Kept small on purpose: a new Lambda
   * invocation starts a new bucket (empty, see `initialTokens`), so a larger burst is the only way the
   * per-second rate could be exceeded, right after a hand-over between invocations.
   */
  burst?: number;
  /** Tokens at start (default 0: a bucket never assumes the previous invocation left budget unused). */
  initialTokens?: number;
  /** Milliseconds, monotonic; default performance.now. */
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class TokenBucket {
  readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private tokens: number;
  private refilledAt: number;
  private taken = 0;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    this.ratePerSecond = opts.ratePerSecond;
    this.burst = Math.max(1, opts.burst ?? 1);
    this.clock = opts.clock ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.tokens = Math.min(this.burst, opts.initialTokens ?? 0);
    this.refilledAt = this.clock();
  }

  /** Resolves when the caller may make one call. */
  take(): Promise<void> {
    const now = this.clock();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond);
    this.refilledAt = now;
    this.tokens -= 1;
    this.taken += 1;
    if (this.tokens >= 0) return Promise.resolve();
    return this.sleep((-this.tokens * 1000) / this.ratePerSecond);
  }

  /** Milliseconds until a call reserved now could start (0 when a token is free). */
  waitMs(): number {
    const now = this.clock();
    const tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond);
    return tokens >= 1 ? 0 : ((1 - tokens) * 1000) / this.ratePerSecond;
  }

  /** Tokens handed out so far (calls made under this budget). */
  get calls(): number {
    return this.taken;
  }
}

/**
 * The reconcile tasks' EKS budget of one account-region: `ratePerSecond` with a burst of a tenth of a
 * second's worth (at least 1). Calls need not be spaced exactly 1/R apart (a timer per call), and any
 * one-second window still holds at most 1.1 R calls. Starts empty (see TokenBucketOptions).
 */
export function eksCallBudget(
  ratePerSecond: number,
  opts: Pick<TokenBucketOptions, 'clock' | 'sleep'> = {},
): TokenBucket {
  return new TokenBucket({ ratePerSecond, burst: Math.max(1, Math.floor(ratePerSecond / 10)), ...opts });
}
