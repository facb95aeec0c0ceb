/**
 * One error hierarchy. `retryable` tells the worker whether to return the
 * message to the queue (true) or to fail it for good (false). Adapters translate
 * SDK errors into these; nothing is swallowed, the original is kept as `cause`.
 */
export abstract class AppError extends Error {
  abstract readonly retryable: boolean;
  /** Stable machine-readable code, carried into audit records. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A request that breaks the contract or the policy. Final: never retried. */
export class RejectionError extends AppError {
  readonly retryable = false;
}

/** Throttling, 5xx, timeouts, post-create eventual consistency: worth another try. */
export class TransientError extends AppError {
  readonly retryable = true;
}

/** EKS said no in a way another try will not change (cluster not found, invalid parameter). */
export class PermanentError extends AppError {
  readonly retryable = false;
}

/** Configuration that cannot work; raised at cold start so the function fails fast. */
export class ConfigError extends AppError {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

export function isRetryable(err: unknown): boolean {
  return err instanceof AppError ? err.retryable : true;
}
