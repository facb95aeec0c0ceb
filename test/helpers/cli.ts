/**
 * The operator CLI against a loopback stack: a worker harness whose endpoints are written to a
 * serve.json (as `npm start -- --serve` writes .local/serve.json), with counting proxies in front of
 * SQS and DynamoDB so a test can assert that a command wrote nothing. The CLI runs as a child process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, listenLoopback } from '../../infra/local/http.js';
import { credentialsOf } from '../../infra/local/identities.js';
import { EXAMPLE_POLICY_PATH } from '../../infra/policy-file.js';
import { type Harness, type HarnessOptions, OPERATOR_TARGET_ROLE_NAME, startHarness } from './harness.js';

const ROOT = join(import.meta.dirname, '../..');

export interface CountingProxy {
  endpoint: string;
  /** Operation of every request forwarded (the X-Amz-Target suffix: PutItem, SendMessage, ...). */
  operations: string[];
  close(): Promise<void>;
}

/** Forwards every request to `upstream` unchanged and records its operation. */
export async function countingProxy(upstream: string): Promise<CountingProxy> {
  const operations: string[] = [];
  const target = new URL(upstream);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const op =
      String(req.headers['x-amz-target'] ?? `${req.method} ${req.url}`)
        .split('.')
        .pop() ?? '';
    operations.push(op);
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      res.statusCode = 502;
      res.end();
    });
    req.pipe(up);
  });
  const endpoint = await listenLoopback(server);
  return { endpoint, operations, close: () => closeServer(server) };
}

export interface CliStack {
  harness: Harness;
  serveFile: string;
  auditLog: string;
  sqsProxy: CountingProxy;
  dynamoProxy: CountingProxy;
  close(): Promise<void>;
}

export async function startCliStack(opts: HarnessOptions = {}): Promise<CliStack> {
  const dir = mkdtempSync(join(tmpdir(), 'eag-cli-'));
  const auditLog = join(dir, 'audit.jsonl');
  writeFileSync(auditLog, '');
  const harness = await startHarness({ ...opts, auditLogFile: auditLog });
  const sqsProxy = await countingProxy(harness.aws.endpoints.sqs);
  const dynamoProxy = await countingProxy(harness.aws.endpoints.dynamodb);
  const serveFile = join(dir, 'serve.json');
  writeFileSync(
    serveFile,
    JSON.stringify({
      region: 'us-east-1',
      eksEndpoint: harness.eks.endpoint,
      sqsEndpoint: sqsProxy.endpoint,
      dynamodbEndpoint: dynamoProxy.endpoint,
      schedulerEndpoint: harness.aws.endpoints.scheduler,
      eventBridgeEndpoint: harness.aws.endpoints.eventbridge,
      // Queue URLs name the emulator's own port; SQS's JSON protocol routes by QueueUrl in the body,
      // so requests through the proxy still reach the right queue.
      requestQueueUrl: harness.aws.queueUrl,
      dlqUrl: harness.aws.dlqUrl,
      auditLog,
      ledgerTable: 'grants',
      policyPath: EXAMPLE_POLICY_PATH,
      // As `npm start -- --serve` writes it: the CLI sends and redrives as the operator (C1, C3).
      operatorCredentials: credentialsOf('operator'),
      // Fleet: the CLI reads staging's account through its read-only role there (harness.ts).
      stsEndpoint: harness.sts.endpoint,
      operatorTargetRoleName: OPERATOR_TARGET_ROLE_NAME,
    }),
  );
  return {
    harness,
    serveFile,
    auditLog,
    sqsProxy,
    dynamoProxy,
    async close() {
      await sqsProxy.close();
      await dynamoProxy.close();
      await harness.close();
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `eks-access-grants <args>` as `npm run cli` does (node --import tsx infra/cli/cli.ts). */
export function runCli(
  args: string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/cli/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(opts.stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `--local --serve-file <file>`, the target flags every test run passes. */
export const local = (stack: CliStack) => ['--local', '--serve-file', stack.serveFile];
