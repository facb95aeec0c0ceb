// Runs a real Lambda entry point (functions/*.ts) in its own worker thread with its own environment, as Lambda
// gives every function its own execution environment and its own credentials in AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY. In one process the SDK's default credential chain would read one shared process.env
// (and cache what it read), so every local function would send as the same principal; a thread gets a private
// copy of process.env (worker_threads `env` option), and local SQS then stamps each function's own SenderId.
import { Worker } from 'node:worker_threads';
import type { Context } from 'aws-lambda';

export interface LocalFunction {
  name: string;
  /** Invokes the handler in its thread; the context's remaining time goes along. */
  invoke(event: unknown, context: Context): Promise<unknown>;
  close(): Promise<void>;
}

export interface StartFunctionOptions {
  name: string;
  /** Absolute path of the entry point module (exports `handler`). */
  entry: string;
  /** The function's whole environment: configuration, endpoints and its own credentials. */
  env: Record<string, string>;
}

type Reply =
  | { type: 'ready' }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

const THREAD = new URL('./function-thread.ts', import.meta.url);

/** Starts the thread and waits for the cold start (module load, config validation) to finish. */
export async function startFunction(opts: StartFunctionOptions): Promise<LocalFunction> {
  // execArgv is inherited, so a parent started with `--import tsx` loads the TypeScript entry the same way.
  const worker = new Worker(THREAD, { env: opts.env, workerData: { entry: opts.entry, name: opts.name } });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 0;
  let exited = false;
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: Reply) => {
      if (m.type === 'ready') resolve();
      else if (m.type === 'init-error') reject(revive(m.error, `cold start of ${opts.name} failed`));
      else {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(revive(m.error));
      }
    });
    worker.once('error', (err) => {
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    worker.once('exit', (code) => {
      exited = true;
      const err = new Error(`function ${opts.name} exited (code ${code})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
  });
  await ready;
  return {
    name: opts.name,
    invoke(event, context) {
      if (exited) return Promise.reject(new Error(`function ${opts.name} is not running`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({
          id,
          event,
          context: {
            functionName: context.functionName,
            memoryLimitInMB: Number(context.memoryLimitInMB),
            remainingMs: context.getRemainingTimeInMillis(),
            logStreamName: context.logStreamName,
          },
        });
      });
    },
    async close() {
      if (!exited) await worker.terminate();
    },
  };
}

function revive(e: SerializedError, prefix?: string): Error {
  const err = new Error(prefix ? `${prefix}: ${e.message}` : e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}
