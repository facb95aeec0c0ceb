// The inside of a local function's thread (infra/local/function-host.ts): imports the entry point once (the
// cold start, with this thread's own process.env), then runs one invocation per message.
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import type { SerializedError } from './function-host.js';
import { lambdaContext } from './lambda-context.js';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

interface Invocation {
  id: number;
  event: unknown;
  context: { functionName: string; memoryLimitInMB: number; remainingMs: number; logStreamName: string };
}

const { entry } = workerData as { entry: string; name: string };
const port = parentPort;
if (!port) throw new Error('function-thread.ts runs only as a worker thread');

function serialize(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, ...(e.stack && { stack: e.stack }) };
}

let handler: Handler;
try {
  const mod = (await import(pathToFileURL(entry).href)) as { handler?: Handler };
  if (typeof mod.handler !== 'function') throw new Error(`${entry} exports no handler`);
  handler = mod.handler;
  port.postMessage({ type: 'ready' });
} catch (err) {
  port.postMessage({ type: 'init-error', error: serialize(err) });
  process.exit(1);
}

port.on('message', (m: Invocation) => {
  const context = lambdaContext({
    functionName: m.context.functionName,
    timeoutMs: m.context.remainingMs,
    memoryLimitInMB: m.context.memoryLimitInMB,
    logStreamName: m.context.logStreamName,
  });
  handler(m.event, context).then(
    (value) => port.postMessage({ type: 'result', id: m.id, ok: true, value }),
    (err: unknown) => port.postMessage({ type: 'result', id: m.id, ok: false, error: serialize(err) }),
  );
});
