/** A Lambda `Context` as the Node.js runtime builds it, with a deadline that counts down. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

export interface LambdaContextOptions {
  functionName: string;
  timeoutMs?: number;
  region?: string;
  account?: string;
  memoryLimitInMB?: number;
  logStreamName?: string;
}

export function lambdaContext(opts: LambdaContextOptions): Context {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const region = opts.region ?? 'us-east-1';
  const account = opts.account ?? '123456789012';
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: opts.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${opts.functionName}`,
    memoryLimitInMB: String(opts.memoryLimitInMB ?? 1024),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${opts.functionName}`,
    logStreamName:
      opts.logStreamName ??
      `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // Callback-style handlers are gone from the nodejs24.x runtime; async handlers never call these.
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
