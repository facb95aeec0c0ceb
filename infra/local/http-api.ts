// Plays API Gateway HTTP API ($default stage and route, payload format 2.0) in front of a Lambda handler on
// loopback: each node:http request becomes an APIGatewayProxyEventV2 (header names lower-cased, repeated
// headers joined with commas, cookies split out, non-text bodies base64-encoded with isBase64Encoded), and
// the handler's result becomes the HTTP response, as API Gateway would map it.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { signRequest } from '../../functions/core/signature.js';
import { closeServer, listenLoopback } from './http.js';
import { lambdaContext } from './lambda-context.js';

export type HttpApiHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyResultV2 | undefined | null> | APIGatewayProxyResultV2;

export interface HttpApiServer {
  /** `http://127.0.0.1:<port>`; routes are the handler's own (`POST /tickets`, `POST /break-glass`). */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * A copy of an HTTP API event (such as a sample from events/ticket/) signed afresh with `secret` at
 * `timestampSeconds` (default now): the samples' own signatures are long stale by the time anyone replays them.
 */
export function signHttpApiEvent(
  event: APIGatewayProxyEventV2,
  secret: string,
  timestampSeconds = Math.floor(Date.now() / 1000),
): APIGatewayProxyEventV2 {
  const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  return {
    ...event,
    headers: { ...event.headers, ...signRequest(secret, body, timestampSeconds) },
    requestContext: { ...event.requestContext, timeEpoch: timestampSeconds * 1000 },
  };
}

/** API Gateway's payload limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
const API_ID = 'local';
const ACCOUNT = '123456789012';

export async function serveHttpApi(handler: HttpApiHandler, port = 0): Promise<HttpApiServer> {
  const server = createServer((req, res) => {
    void serve(handler, req, res);
  });
  const endpoint = await listenLoopback(server, port);
  return { endpoint, close: () => closeServer(server) };
}

async function serve(handler: HttpApiHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: Buffer;
  try {
    body = await readBody(req, MAX_PAYLOAD_BYTES);
  } catch {
    return reply(res, 413, { 'content-type': 'application/json' }, '{"message":"Request Entity Too Large"}');
  }
  const event = toEvent(req, body);
  let result: APIGatewayProxyResultV2 | undefined | null;
  try {
    result = await handler(
      event,
      lambdaContext({ functionName: 'ticket-intake', memoryLimitInMB: 256, account: ACCOUNT }),
    );
  } catch (err) {
    // API Gateway hides a failed invocation behind a generic 500; the error is the function's log's business.
    console.error('[http-api] handler failed:', err);
    return reply(res, 500, { 'content-type': 'application/json' }, '{"message":"Internal Server Error"}');
  }
  // Payload 2.0: anything without a statusCode is a 200 whose body is the JSON of the result.
  if (result === undefined || result === null || typeof result !== 'object' || !('statusCode' in result)) {
    const text = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return reply(res, 200, { 'content-type': 'application/json' }, text);
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const payload =
    result.body === undefined
      ? ''
      : result.isBase64Encoded
        ? Buffer.from(result.body, 'base64')
        : Buffer.from(result.body, 'utf8');
  return reply(res, result.statusCode ?? 200, headers, payload);
}

function toEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    const value = req.rawHeaders[i + 1] ?? '';
    if (name === 'cookie') continue;
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  const cookies = (req.headers.cookie ?? '')
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const text = isText(headers['content-type']);
  const now = new Date();
  const method = (req.method ?? 'GET').toUpperCase();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length > 0 && { cookies }),
    headers,
    ...(Object.keys(query).length > 0 && { queryStringParameters: query }),
    requestContext: {
      accountId: ACCOUNT,
      apiId: API_ID,
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: (headers.host ?? '127').split('.')[0] ?? API_ID,
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomBytes(8).toString('base64url'),
      routeKey: '$default',
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 && {
      body: text ? body.toString('utf8') : body.toString('base64'),
    }),
    isBase64Encoded: body.length > 0 && !text,
  };
}

/** Content API Gateway passes as text; everything else (including no content-type) arrives base64-encoded. */
function isText(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return (
    type.startsWith('text/') ||
    /[/+]json$/.test(type) ||
    /[/+]xml$/.test(type) ||
    type === 'application/javascript' ||
    type === 'application/x-www-form-urlencoded'
  );
}

/** `12/Mar/2020:19:03:58 +0000`, the format of requestContext.time. */
function clfTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Keep reading (and dropping) the rest, so the client gets the 413 rather than a reset connection.
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () =>
      size > limit ? reject(new Error('payload too large')) : resolve(Buffer.concat(chunks)),
    );
    req.on('error', reject);
  });
}

function reply(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: string | Buffer,
): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(body);
}
