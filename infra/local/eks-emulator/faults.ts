import type { EksApiError } from './errors.js';
import { faultError } from './errors.js';
import type { EksOperation, FaultConfig } from './types.js';

/** Decides, per call, whether an injected fault replaces the real answer, and how late it comes. */
export class FaultInjector {
  private config: FaultConfig = {};
  private sequence: Array<{ operation: EksOperation | '*'; status: 429 | 500 | 503; count: number }> = [];
  private tokens = 0;
  private refilledAt = 0;

  set(config: FaultConfig): void {
    this.config = { ...config };
    // Copied so counting down never mutates the caller's object.
    this.sequence = (config.errorSequence ?? []).map((s) => ({ ...s }));
    this.tokens = config.throttle?.burst ?? 0;
    this.refilledAt = performance.now();
  }

  clear(): void {
    this.set({});
  }

  get postCreateNotFoundMs(): number {
    return this.config.postCreateNotFoundMs ?? 0;
  }

  get postDeleteConflictMs(): number {
    return this.config.postDeleteConflictMs ?? 0;
  }

  get iamPropagationMs(): number {
    return this.config.iamPropagationMs ?? 0;
  }

  latency(): number {
    const l = this.config.latencyMs;
    if (l === undefined) return 0;
    if (typeof l === 'number') return Math.max(0, l);
    return Math.max(0, l.min + this.random() * (l.max - l.min));
  }

  /**
   * The throttle sees every call first (a real rate limiter counts requests that later fail), then the
   * deterministic sequence, then the random error rate.
   */
  decide(operation: EksOperation): EksApiError | undefined {
    if (this.config.throttle && !this.takeToken(this.config.throttle)) {
      return faultError(429);
    }
    const next = this.sequence.find((s) => s.count > 0 && (s.operation === '*' || s.operation === operation));
    if (next) {
      next.count -= 1;
      return faultError(next.status);
    }
    const rates = this.config.errorRate;
    const rate = rates?.[operation] ?? rates?.['*'] ?? 0;
    if (rate > 0 && this.random() < rate) {
      return faultError(500);
    }
    return undefined;
  }

  private takeToken(bucket: { ratePerSecond: number; burst: number }): boolean {
    const now = performance.now();
    this.tokens = Math.min(
      bucket.burst,
      this.tokens + ((now - this.refilledAt) / 1000) * bucket.ratePerSecond,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private random(): number {
    return (this.config.random ?? Math.random)();
  }
}
