/**
 * Plays Lambda's asynchronous invocation, the way EventBridge invokes a function target: the event is queued and
 * the caller does not wait for the function. A function error is retried twice ("How Lambda handles errors and
 * retries with asynchronous invocation", Lambda developer guide: two more attempts, one and two minutes apart;
 * here the waits are scaled down to `retryDelaysMs`), then the event is given up and kept in invocations().
 * idle() lets a test or `npm start` wait until every queued event has run, instead of sleeping.
 */
import type { Context } from 'aws-lambda';
import { lambdaContext } from './lambda-context.js';

export type AsyncHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface AsyncInvocation {
  /** The event's id (`id` of an EventBridge event), or a sequence number. */
  eventId: string;
  status: 'queued' | 'succeeded' | 'failed';
  attempts: number;
  result?: unknown;
  error?: string;
}

export interface AsyncInvoker {
  functionName: string;
  /** Queues the event and returns at once. */
  invoke(event: unknown): void;
  /** Resolves when nothing is queued or running. */
  idle(): Promise<void>;
  invocations(): AsyncInvocation[];
}

export interface AsyncInvokerOptions {
  functionName: string;
  handler: AsyncHandler;
  timeoutMs?: number;
  /** Waits before the two retries (default 100 and 200 ms: Lambda's 1 and 2 minutes, scaled down). */
  retryDelaysMs?: readonly number[];
  onError?: (err: unknown, invocation: AsyncInvocation) => void;
}

export function createAsyncInvoker(opts: AsyncInvokerOptions): AsyncInvoker {
  const retryDelaysMs = opts.retryDelaysMs ?? [100, 200];
  const invocations: AsyncInvocation[] = [];
  const running = new Set<Promise<void>>();
  let seq = 0;

  const run = async (event: unknown, record: AsyncInvocation): Promise<void> => {
    for (;;) {
      record.attempts += 1;
      try {
        record.result = await opts.handler(
          structuredClone(event),
          lambdaContext({ functionName: opts.functionName, timeoutMs: opts.timeoutMs ?? 30_000 }),
        );
        record.status = 'succeeded';
        delete record.error;
        return;
      } catch (err) {
        record.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        const delay = retryDelaysMs[record.attempts - 1];
        if (delay === undefined) {
          record.status = 'failed';
          opts.onError?.(err, record);
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };

  return {
    functionName: opts.functionName,
    invoke(event) {
      seq += 1;
      const id = (event as { id?: unknown } | null)?.id;
      const record: AsyncInvocation = {
        eventId: typeof id === 'string' ? id : String(seq),
        status: 'queued',
        attempts: 0,
      };
      invocations.push(record);
      const p = run(event, record).finally(() => running.delete(p));
      running.add(p);
    },
    async idle() {
      while (running.size > 0) await Promise.all([...running]);
    },
    invocations: () => invocations.map((i) => ({ ...i })),
  };
}
