// Loopback SSM Parameter Store: GetParameter, GetParameters and PutParameter over the JSON 1.1 protocol
// (`X-Amz-Target: AmazonSSM.<Operation>`, what @aws-sdk/client-ssm and Powertools Parameters speak). Values
// live in memory. SecureString values come back in clear text only with WithDecryption, as in AWS; without
// it the emulator returns an opaque stand-in for the KMS ciphertext.
import { randomUUID } from 'node:crypto';
import { AwsServiceError, serveAwsJson, targetOperation } from './http.js';

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
      throw new AwsServiceError(
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
      if (!p) throw new AwsServiceError('ParameterNotFound', 400, `Parameter ${name} not found.`);
      return { Parameter: render(p, body.WithDecryption === true) };
    },
    GetParameters: (body) => {
      const names = Array.isArray(body.Names) ? body.Names.map(String) : [];
      if (names.length < 1 || names.length > 10) {
        throw new AwsServiceError('ValidationException', 400, 'Names must hold 1 to 10 parameter names.');
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
        throw new AwsServiceError('ValidationException', 400, 'Value must be a non-empty string.');
      }
      const existing = store.get(name);
      if (existing && body.Overwrite !== true) {
        throw new AwsServiceError('ParameterAlreadyExists', 400, `The parameter ${name} already exists.`);
      }
      const type = (body.Type as ParameterType | undefined) ?? existing?.type ?? 'String';
      if (!['String', 'StringList', 'SecureString'].includes(type)) {
        throw new AwsServiceError('UnsupportedParameterType', 400, `Type ${String(type)} is not supported.`);
      }
      const stored = put(name, body.Value, type);
      return { Version: stored.version, Tier: 'Standard' };
    },
  };

  const { endpoint, close } = await serveAwsJson({
    ...(opts.port !== undefined && { port: opts.port }),
    contentType: 'application/x-amz-json-1.1',
    internalErrorType: 'InternalServerError',
    invalidBody: (message) => new AwsServiceError('SerializationException', 400, message),
    handle: (req, body) => targetOperation(req, 'AmazonSSM', operations)(body),
  });
  return {
    endpoint,
    close,
    put: (name, value, type) => {
      put(name, value, type);
    },
    calls: () => calls.map((c) => ({ operation: c.operation, names: [...c.names] })),
  };
}
