// Loopback SSM Parameter Store: GetParameter, GetParameters and PutParameter over the JSON 1.1 protocol
// (`X-Amz-Target: AmazonSSM.<Operation>`, what @aws-sdk/client-ssm and Powertools Parameters speak). Values
// live in memory. SecureString values come back in clear text only with WithDecryption, as in AWS; without
// it the emulator returns an opaque stand-in for the KMS ciphertext.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './http.js';

export type ParameterType = 'String' | 'StringList' | 'SecureString';

export interface SsmEmulator {
  endpoint: string;
  close(): Promise<void>;
  /** Sets a parameter directly (a new version each time), for tests and local mode. */
  put(name: string, value: string, type?: ParameterType): void;
  /** Every operation served, oldest first: shows whether a caller's cache held. */
  calls(): Array<{ operation: string; names: string[] }>;
}

export interface StartSsmOptions {
  port?: number;
  region?: string;
  accountId?: string;
  parameters?: Record<string, string | { value: string; type?: ParameterType }>;
}

interface Stored {
  name: string;
  type: ParameterType;
  value: string;
  version: number;
  lastModified: number;
}

class ServiceError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^\/?[A-Za-z0-9_.\-/]{1,2048}$/;

export async function startSsm(opts: StartSsmOptions = {}): Promise<SsmEmulator> {
  const region = opts.region ?? 'us-east-1';
  const account = opts.accountId ?? '123456789012';
  const store = new Map<string, Stored>();
  const calls: Array<{ operation: string; names: string[] }> = [];

  const put = (name: string, value: string, type: ParameterType = 'SecureString'): Stored => {
    const prev = store.get(name);
    const stored: Stored = { name, type, value, version: (prev?.version ?? 0) + 1, lastModified: Date.now() };
    store.set(name, stored);
    return stored;
  };
  for (const [name, p] of Object.entries(opts.parameters ?? {})) {
    if (typeof p === 'string') put(name, p);
    else put(name, p.value, p.type);
  }

  const arnOf = (name: string) =>
    `arn:aws:ssm:${region}:${account}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
  const render = (p: Stored, decrypt: boolean) => ({
    Name: p.name,
    Type: p.type,
    // Not real ciphertext, but like it: useless without decryption.
    Value:
      p.type === 'SecureString' && !decrypt
        ? Buffer.from(`kms-encrypted:${randomUUID()}`).toString('base64')
        : p.value,
    Version: p.version,
    LastModifiedDate: p.lastModified / 1000,
    ARN: arnOf(p.name),
    DataType: 'text',
  });
  const nameOf = (body: Record<string, unknown>, key = 'Name'): string => {
    const name = body[key];
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new ServiceError(
        'ValidationException',
        400,
        `Parameter name ${JSON.stringify(name)} is not valid.`,
      );
    }
    return name;
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    GetParameter: (body) => {
      const name = nameOf(body);
      calls.push({ operation: 'GetParameter', names: [name] });
      const p = store.get(name);
      if (!p) throw new ServiceError('ParameterNotFound', 400, `Parameter ${name} not found.`);
      return { Parameter: render(p, body.WithDecryption === true) };
    },
    GetParameters: (body) => {
      const names = Array.isArray(body.Names) ? body.Names.map(String) : [];
      if (names.length < 1 || names.length > 10) {
        throw new ServiceError('ValidationException', 400, 'Names must hold 1 to 10 parameter names.');
      }
      calls.push({ operation: 'GetParameters', names });
      const found = names.flatMap((n) => {
        const p = store.get(n);
        return p ? [render(p, body.WithDecryption === true)] : [];
      });
      return { Parameters: found, InvalidParameters: names.filter((n) => !store.has(n)) };
    },
    PutParameter: (body) => {
      const name = nameOf(body);
      calls.push({ operation: 'PutParameter', names: [name] });
      if (typeof body.Value !== 'string' || body.Value === '') {
        throw new ServiceError('ValidationException', 400, 'Value must be a non-empty string.');
      }
      const existing = store.get(name);
      if (existing && body.Overwrite !== true) {
        throw new ServiceError('ParameterAlreadyExists', 400, `The parameter ${name} already exists.`);
      }
      const type = (body.Type as ParameterType | undefined) ?? existing?.type ?? 'String';
      if (!['String', 'StringList', 'SecureString'].includes(type)) {
        throw new ServiceError('UnsupportedParameterType', 400, `Type ${String(type)} is not supported.`);
      }
      const stored = put(name, body.Value, type);
      return { Version: stored.version, Tier: 'Standard' };
    },
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, payload: unknown, errorType?: string): void => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      res.setHeader('x-amzn-requestid', randomUUID());
      if (errorType) res.setHeader('x-amzn-errortype', errorType);
      res.end(JSON.stringify(payload));
    };
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      const [prefix, operation = ''] = target.split('.');
      const op = operations[operation];
      if (req.method !== 'POST' || prefix !== 'AmazonSSM' || !op) {
        throw new ServiceError(
          'UnknownOperationException',
          400,
          `Unsupported operation: ${target || req.method}`,
        );
      }
      const raw = await readBody(req);
      let body: Record<string, unknown>;
      try {
        body = raw.length > 0 ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        throw new ServiceError('SerializationException', 400, 'Request body is not valid JSON.');
      }
      send(200, op(body));
    } catch (err) {
      const e =
        err instanceof ServiceError
          ? err
          : new ServiceError('InternalServerError', 500, String((err as Error).message));
      send(e.status, { __type: e.type, message: e.message }, e.type);
    }
  };

  const endpoint = await listenLoopback(server, opts.port);
  return {
    endpoint,
    close: () => closeServer(server),
    put: (name, value, type) => {
      put(name, value, type);
    },
    calls: () => calls.map((c) => ({ operation: c.operation, names: [...c.names] })),
  };
}
