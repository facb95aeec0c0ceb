/** Loopback HTTP plumbing shared by the local AWS emulators. */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1 (port 0: the OS picks one) and returns `http://127.0.0.1:<port>`. */
export async function listenLoopback(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // SDK clients keep sockets alive; without this close() waits for them to time out.
    server.closeAllConnections();
  });
}

/** The request body as UTF-8 text; rejects (and stops reading) past `limit` bytes. */
export function readBody(req: IncomingMessage, limit = Number.POSITIVE_INFINITY): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** An AWS error answer: its type (`__type` / `x-amzn-errortype`), HTTP status and message. */
export class AwsServiceError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface JsonServiceOptions {
  port?: number;
  /** `application/x-amz-json-1.1` for the JSON protocol (SSM, EventBridge), `application/json` for REST-JSON. */
  contentType: string;
  /** The service's own name for an unexpected fault (InternalException, InternalServerError, …). */
  internalErrorType: string;
  /** The error for a body that is not a JSON object. */
  invalidBody: (message: string) => AwsServiceError;
  /** Error body; default `{__type, message}`, what the JSON protocol's parsers read. */
  errorBody?: (e: AwsServiceError) => unknown;
  /** Refuse bodies over this many bytes with `tooLarge()` (the service's request size limit). */
  maxBodyBytes?: number;
  tooLarge?: () => AwsServiceError;
  /** The answer to one request whose body parsed as a JSON object (an empty body is `{}`). */
  handle(req: IncomingMessage, body: Record<string, unknown>): unknown;
}

/**
 * A loopback JSON service as the AWS SDK expects it: every answer JSON with `x-amzn-requestid`, errors
 * with `x-amzn-errortype` and the type in the body, anything unexpected a 500 of the service's own
 * internal error type (which the SDK retries).
 */
export async function serveAwsJson(
  opts: JsonServiceOptions,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, payload: unknown, errorType?: string): void => {
      res.statusCode = status;
      res.setHeader('content-type', opts.contentType);
      res.setHeader('x-amzn-requestid', randomUUID());
      if (errorType) res.setHeader('x-amzn-errortype', errorType);
      res.end(JSON.stringify(payload));
    };
    try {
      const raw = await readBody(req, opts.maxBodyBytes).catch(() => {
        throw (
          opts.tooLarge?.() ?? new AwsServiceError(opts.internalErrorType, 500, 'could not read the body')
        );
      });
      let body: unknown = {};
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw opts.invalidBody('Request body is not valid JSON.');
        }
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw opts.invalidBody('Request body is not a JSON object.');
      }
      send(200, await opts.handle(req, body as Record<string, unknown>));
    } catch (err) {
      const e =
        err instanceof AwsServiceError
          ? err
          : new AwsServiceError(opts.internalErrorType, 500, String((err as Error).message));
      send(e.status, opts.errorBody?.(e) ?? { __type: e.type, message: e.message }, e.type);
    }
  };
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  const endpoint = await listenLoopback(server, opts.port);
  return { endpoint, close: () => closeServer(server) };
}

/**
 * The operation a JSON-protocol request names in `X-Amz-Target: <prefix>.<Operation>` (POST only);
 * anything else is UnknownOperationException, as the services answer it.
 */
export function targetOperation<T>(
  req: IncomingMessage,
  prefix: string,
  operations: Readonly<Record<string, T>>,
): T {
  const target = String(req.headers['x-amz-target'] ?? '');
  const [named, operation = ''] = target.split('.');
  const op = Object.hasOwn(operations, operation) ? operations[operation] : undefined;
  if (req.method !== 'POST' || named !== prefix || op === undefined) {
    throw new AwsServiceError(
      'UnknownOperationException',
      400,
      `Unsupported operation: ${target || req.method}`,
    );
  }
  return op;
}
