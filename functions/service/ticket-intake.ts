/**
 * The HTTP intake's wiring and use case: API Gateway HTTP API (payload v2) → signed, validated,
 * policy-checked AccessRequest on the right queue. Two routes on one API:
 *
 *   POST /tickets      source `ticket`; payload adapter by `x-payload-format`: `v1` (default) or `jira`
 *   POST /break-glass  source `break-glass`; own secret, own queue; `v1` only
 *
 * Deployed, each route is its own function (functions/ticket-intake.ts, functions/break-glass-intake.ts)
 * built from this one use case with a route subset (`config.routes`): each function reads only its own
 * route's secret and queue, has its own role, and break-glass has reserved concurrency, so a flood of
 * tickets cannot starve it and a leaked ticket role cannot reach the break-glass key or queue.
 *
 * Order of checks, cheapest and least revealing first: route → size (413) → signature (401, generic body,
 * detail only in the log) → adapter (400 UNKNOWN_ADAPTER) → JSON → payload → contract → policy (400 with
 * the reason code) → replay (409 REPLAYED; 200 for Jira, which retries a 409) → enqueue (202 {requestId}). Nothing is enqueued on any
 * rejection, and every outcome is logged as one audit-style line (`intake decision`).
 *
 * Kept apart from the Lambda entry (functions/ticket-intake.ts) so tests and local mode build it with
 * loopback clients and an explicit config.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { QueueAdapter } from '../adapters/queue.js';
import { MIN_REPLAY_WINDOW_SECONDS, ReplayGuardAdapter } from '../adapters/replay-guard.js';
import {
  DEFAULT_SECRET_MAX_AGE_SECONDS,
  type ParameterSource,
  SigningSecrets,
  ssmParameterSource,
} from '../adapters/secrets.js';
import { type Env, integer, required } from '../config.js';
import { groupKeys } from '../core/cluster-target.js';
import { AppError, ConfigError, isRetryable } from '../core/errors.js';
import { canonicalIdentities, canonicalIdentity } from '../core/identity.js';
import { decide, type GuardrailPolicy } from '../core/policy.js';
import { MAX_BODY_BYTES, validateAccessRequest } from '../core/request.js';
import { isPlainObject, own, truncate } from '../core/schema.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../core/signature.js';
import type { AccessRequest, Reason, Source } from '../core/types.js';
import type { ServiceLogger, ServiceMetrics } from './grant-service.js';

export const PAYLOAD_FORMAT_HEADER = 'x-payload-format';
/**
 * Jira sends the whole issue (every field, rendered or not), which is often far beyond the 16 KiB an
 * AccessRequest may take; the request built from it is still held to MAX_BODY_BYTES by the worker.
 */
export const JIRA_MAX_BODY_BYTES = 262_144;

export type PayloadFormat = 'v1' | 'jira';

/**
 * A payload format other than v1, injected rather than imported: the `jira` one is
 * service/jira-payload.ts, which only functions/ticket-intake.ts passes in, so the break-glass intake
 * bundles no Jira code.
 */
export interface PayloadAdapter {
  /** The sender's parsed body → a candidate for validateAccessRequest, or a coded refusal. */
  toCandidate(
    value: unknown,
  ): { ok: true; candidate: Record<string, unknown> } | { ok: false; reason: Reason };
  /** A contract violation reworded in the sender's terms (e.g. the Jira field behind the bad value). */
  explain(reason: Reason): Reason;
}

/** The routes the intake can serve. */
export const INTAKE_ROUTES = ['/tickets', '/break-glass'] as const;
export type IntakeRoute = (typeof INTAKE_ROUTES)[number];

export interface TicketIntakeConfig {
  region: string;
  /**
   * The routes this instance serves (default: both); any other path is a 404. Only the settings of
   * these routes are read and required: the break-glass intake never learns the ticket key's name.
   */
  routes?: readonly IntakeRoute[];
  /** The requests FIFO queue: ticket grants and revokes. Required when serving /tickets. */
  requestQueueUrl?: string;
  /** The break-glass FIFO queue, drained by its own worker. Required when serving /break-glass. */
  breakGlassQueueUrl?: string;
  /** SSM parameter names (SecureString) of the signing secrets, one secret per line; per route. */
  ticketSecretParam?: string;
  breakGlassSecretParam?: string;
  /** Holds the replay claims (pk REPLAY#<requestId>). */
  ledgerTable: string;
  policyPath: string;
  secretMaxAgeSeconds: number;
  replayWindowSeconds: number;
}

/**
 * Reads the settings of `routes` only: REQUEST_QUEUE_URL and TICKET_SECRET_PARAM for /tickets;
 * BREAK_GLASS_QUEUE_URL and BREAK_GLASS_SECRET_PARAM for /break-glass. JIRA_FIELD_MAPPING is read by
 * loadJiraPayload (service/jira-payload.ts), which only the ticket intake imports.
 */
export function loadTicketIntakeConfig(
  env: Env = process.env,
  routes: readonly IntakeRoute[] = INTAKE_ROUTES,
): TicketIntakeConfig {
  const served = checkRoutes(routes);
  const tickets = served.includes('/tickets');
  const breakGlass = served.includes('/break-glass');
  return {
    region: required(env, 'AWS_REGION'),
    routes: served,
    ...(tickets && {
      requestQueueUrl: required(env, 'REQUEST_QUEUE_URL'),
      ticketSecretParam: required(env, 'TICKET_SECRET_PARAM'),
    }),
    ...(breakGlass && {
      breakGlassQueueUrl: required(env, 'BREAK_GLASS_QUEUE_URL'),
      breakGlassSecretParam: required(env, 'BREAK_GLASS_SECRET_PARAM'),
    }),
    ledgerTable: required(env, 'LEDGER_TABLE'),
    policyPath: required(env, 'POLICY_PATH'),
    secretMaxAgeSeconds: integer(env, 'SECRET_MAX_AGE_SECONDS', DEFAULT_SECRET_MAX_AGE_SECONDS, 0, 3600),
    replayWindowSeconds: integer(
      env,
      'REPLAY_WINDOW_SECONDS',
      MIN_REPLAY_WINDOW_SECONDS,
      MIN_REPLAY_WINDOW_SECONDS,
      30 * 86_400,
    ),
  };
}

export interface TicketIntakeClients {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  ssm: SSMClient;
}

/** Standard SDK clients; endpoints come from AWS_ENDPOINT_URL_<SERVICE> when set (local mode). */
export function defaultTicketIntakeClients(config: Pick<TicketIntakeConfig, 'region'>): TicketIntakeClients {
  return {
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    ssm: new SSMClient({ region: config.region }),
  };
}

export interface TicketIntakeOptions {
  config: Omit<TicketIntakeConfig, 'region' | 'policyPath'>;
  policy: GuardrailPolicy;
  /** The `jira` payload format on /tickets (service/jira-payload.ts); absent: `jira` is an unknown adapter. */
  jira?: PayloadAdapter;
  /** The deployment's region: with the queue's account, which clusters are home (group ids). */
  region?: string;
  clients: Pick<TicketIntakeClients, 'sqs' | 'dynamodb'> & Partial<Pick<TicketIntakeClients, 'ssm'>>;
  /** Where secrets come from; default: Powertools' SSM provider over `clients.ssm`. */
  parameters?: ParameterSource;
  logger: ServiceLogger;
  metrics?: ServiceMetrics;
  now?: () => Date;
}

export type HttpResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };
export type TicketIntakeHandler = (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;

interface Route {
  path: string;
  source: Extract<Source, 'ticket' | 'break-glass'>;
  secretParam: string;
  queueUrl: string;
  formats: readonly PayloadFormat[];
}

/** Thrown inside the use case to end it with a response; never escapes the handler. */
class Reply extends Error {
  constructor(
    readonly status: number,
    readonly outcome: 'rejected' | 'ignored',
    readonly code: string,
    readonly body: unknown,
    readonly detail?: string,
  ) {
    super(code);
  }
}

export function createTicketIntake(options: TicketIntakeOptions): TicketIntakeHandler {
  const { config, policy, jira, logger, metrics } = options;
  const now = options.now ?? (() => new Date());
  const queue = new QueueAdapter(
    options.clients.sqs,
    // Both queues are the stack's, in one account: either URL tells which clusters are home.
    groupKeys(policy, options.region, config.requestQueueUrl ?? config.breakGlassQueueUrl ?? ''),
  );
  const replay = new ReplayGuardAdapter(
    options.clients.dynamodb,
    config.ledgerTable,
    config.replayWindowSeconds,
    now,
  );
  if (!options.parameters && !options.clients.ssm) {
    throw new ConfigError(
      'the ticket intake needs clients.ssm or a parameters source for its signing secrets',
    );
  }
  const parameters = options.parameters ?? ssmParameterSource(options.clients.ssm as SSMClient);
  const secrets = new SigningSecrets(parameters, config.secretMaxAgeSeconds);
  const routes = buildRoutes(config);

  return async function handler(event: APIGatewayProxyEventV2): Promise<HttpResponse> {
    const method = event.requestContext?.http?.method?.toUpperCase() ?? 'GET';
    const path = routePath(event);
    const headers = lowerCaseHeaders(event.headers);
    const format = (headers[PAYLOAD_FORMAT_HEADER] ?? 'v1').trim().toLowerCase();
    const line: Record<string, unknown> = { method, path, format };
    let request: AccessRequest | undefined;
    try {
      const route = routes.find((r) => r.path === path);
      if (!route) {
        throw new Reply(404, 'rejected', 'NOT_FOUND', error('NOT_FOUND', `No route for ${method} ${path}.`));
      }
      line.source = route.source;
      if (method !== 'POST') {
        throw new Reply(
          405,
          'rejected',
          'METHOD_NOT_ALLOWED',
          error('METHOD_NOT_ALLOWED', `${path} accepts POST only.`),
        );
      }

      const body = bodyBytes(event);
      const limit = format === 'jira' ? JIRA_MAX_BODY_BYTES : MAX_BODY_BYTES;
      if (body.length > limit) {
        throw new Reply(
          413,
          'rejected',
          'BODY_TOO_LARGE',
          error('BODY_TOO_LARGE', `The body is ${body.length} bytes; at most ${limit} bytes are accepted.`),
        );
      }

      const signature = verifySignature({
        signature: headers[SIGNATURE_HEADER],
        timestamp: headers[TIMESTAMP_HEADER],
        body,
        secrets: await secrets.get(route.secretParam),
        now: now(),
      });
      if (!signature.ok) {
        // Which check failed would help a forger; the log has it, the caller gets nothing.
        throw new Reply(401, 'rejected', signature.failure, { error: 'UNAUTHORIZED' }, signature.detail);
      }

      if (!(route.formats as readonly string[]).includes(format) || (format === 'jira' && !jira)) {
        const accepted = route.formats.filter((f) => f !== 'jira' || jira);
        throw reject(
          'UNKNOWN_ADAPTER',
          `${PAYLOAD_FORMAT_HEADER} ${JSON.stringify(truncate(format, 40))} is not a payload format ${path} ` +
            `accepts; use one of: ${accepted.join(', ')}` +
            (format === 'jira' && route.formats.includes('jira')
              ? ' (the jira adapter is not configured)'
              : ''),
        );
      }

      const candidate = toCandidate(format as PayloadFormat, parseJson(body), route, jira);
      Object.assign(line, identifiers(candidate));
      const parsed = validateAccessRequest(candidate);
      if (!parsed.ok) {
        throw reject(
          parsed.reason.code,
          format === 'jira' && jira ? jira.explain(parsed.reason).message : parsed.reason.message,
        );
      }
      request = parsed.request;
      const decision = decide(policy, request, now());
      if (!decision.allowed) throw reject(decision.reason.code, decision.reason.message);

      if (!(await replay.claim(request.requestId))) {
        // Jira Cloud retries a 409 (it retries 408, 409, 425, 429 and 5xx), and its redeliveries are exactly
        // what this catches: answer them 200, so one approval is not delivered again and again.
        throw new Reply(
          format === 'jira' ? 200 : 409,
          format === 'jira' ? 'ignored' : 'rejected',
          'REPLAYED',
          error(
            'REPLAYED',
            `Request ${request.requestId} was already received; it is being processed. ` +
              'Send a new requestId for a new request.',
          ),
        );
      }
      try {
        await queue.enqueue(route.queueUrl, request);
      } catch (err) {
        // Not enqueued: give the id back so the sender's retry is not refused as a replay.
        await replay.release(request.requestId).catch((releaseError: unknown) =>
          logger.error('could not release a replay claim; a retry will be refused as a replay', {
            requestId: request?.requestId,
            error: String(releaseError),
          }),
        );
        throw err;
      }
      logger.info('intake decision', { ...line, outcome: 'accepted', status: 202, rule: decision.rule });
      metrics?.count('IntakeAccepted');
      return respond(202, { requestId: request.requestId });
    } catch (err) {
      if (err instanceof Reply) {
        const level = err.outcome === 'ignored' ? 'info' : 'warn';
        logger[level]('intake decision', {
          ...line,
          outcome: err.outcome,
          status: err.status,
          code: err.code,
          ...(err.detail && { detail: err.detail }),
        });
        metrics?.count(err.outcome === 'ignored' ? 'IntakeIgnored' : 'IntakeRejected');
        return respond(err.status, err.body, err.status === 405 ? { allow: 'POST' } : undefined);
      }
      const retryable = isRetryable(err);
      logger.error('intake decision', {
        ...line,
        outcome: 'failed',
        status: retryable ? 503 : 500,
        code: err instanceof AppError ? err.code : 'INTERNAL',
        error: String(err),
      });
      metrics?.count('IntakeFailed');
      return retryable
        ? respond(503, error('UNAVAILABLE', 'The request was not accepted; try again shortly.'))
        : respond(500, error('INTERNAL', 'The request was not accepted because of a server problem.'));
    }
  };
}

function checkRoutes(routes: readonly IntakeRoute[]): IntakeRoute[] {
  const unknown = routes.filter((r) => !(INTAKE_ROUTES as readonly string[]).includes(r));
  if (routes.length === 0 || unknown.length > 0) {
    throw new ConfigError(
      `intake routes ${JSON.stringify(routes)}: name at least one route, from ${INTAKE_ROUTES.join(', ')}`,
    );
  }
  return [...new Set(routes)];
}

/** The served routes with their settings; a served route without its queue or secret fails fast. */
function buildRoutes(config: TicketIntakeOptions['config']): Route[] {
  const need = (value: string | undefined, field: string, path: IntakeRoute): string => {
    if (value) return value;
    throw new ConfigError(`the intake serves ${path} but config.${field} is not set`);
  };
  return checkRoutes(config.routes ?? INTAKE_ROUTES).map((path): Route => {
    if (path === '/tickets') {
      return {
        path,
        source: 'ticket',
        secretParam: need(config.ticketSecretParam, 'ticketSecretParam', path),
        queueUrl: need(config.requestQueueUrl, 'requestQueueUrl', path),
        formats: ['v1', 'jira'],
      };
    }
    return {
      path,
      source: 'break-glass',
      secretParam: need(config.breakGlassSecretParam, 'breakGlassSecretParam', path),
      queueUrl: need(config.breakGlassQueueUrl, 'breakGlassQueueUrl', path),
      formats: ['v1'],
    };
  });
}

function toCandidate(
  format: PayloadFormat,
  value: unknown,
  route: Route,
  jira: PayloadAdapter | undefined,
): unknown {
  if (format === 'jira' && jira) {
    const result = jira.toCandidate(value);
    if (result.ok) return checkSource(result.candidate, route);
    // A delivery that is not an approval (JIRA_NOT_APPROVED included) is a coded 400: Jira Cloud retries
    // only 408, 409, 425, 429, 5xx and failed connections, so a 400 is answered once and not repeated.
    throw reject(result.reason.code, result.reason.message);
  }
  if (!isPlainObject(value)) return value;
  const canonical = canonicalPeople(value);
  // The route says what the source is; a body may repeat it, but not contradict it.
  if (!Object.hasOwn(canonical, 'source')) return { ...canonical, source: route.source };
  return checkSource(canonical, route);
}

/**
 * requestedBy and approvedBy in canonical form (core/identity.ts): case and surrounding space fixed, and
 * approvers that are the same person once canonical collapse into one. What cannot be made canonical (a
 * bare name, a +tag alias) is left for the validator to refuse with INVALID_IDENTITY.
 */
function canonicalPeople(value: Record<string, unknown>): Record<string, unknown> {
  const out = { ...value };
  const requestedBy = own(value, 'requestedBy');
  if (typeof requestedBy === 'string') out.requestedBy = canonicalIdentity(requestedBy);
  const approvedBy = own(value, 'approvedBy');
  if (Array.isArray(approvedBy) && approvedBy.every((a) => typeof a === 'string')) {
    out.approvedBy = canonicalIdentities(approvedBy as string[]);
  }
  return out;
}

function checkSource(candidate: Record<string, unknown>, route: Route): Record<string, unknown> {
  const source = own(candidate, 'source');
  if (source === route.source) return candidate;
  throw reject(
    'SOURCE_MISMATCH',
    `"source" is ${JSON.stringify(truncate(String(source), 40))} but ${route.path} takes source ` +
      `"${route.source}" only; omit "source" or set it to "${route.source}".`,
  );
}

function parseJson(body: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw reject('MALFORMED_JSON', 'The body is not UTF-8 text. Send one JSON object.');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw reject(
      'MALFORMED_JSON',
      `The body is not valid JSON (${truncate((err as Error).message, 120)}). Send one JSON object.`,
    );
  }
}

function bodyBytes(event: APIGatewayProxyEventV2): Buffer {
  const body = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
}

/** rawPath carries the stage name for named stages (`/prod/tickets`); routes are matched without it. */
function routePath(event: APIGatewayProxyEventV2): string {
  let path = event.rawPath ?? event.requestContext?.http?.path ?? '/';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** HTTP API v2 lower-cases header names already; this keeps a hand-made event honest too. */
function lowerCaseHeaders(headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

function identifiers(candidate: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isPlainObject(candidate)) return out;
  for (const key of ['requestId', 'action', 'clusterName', 'principalArn', 'ticket', 'incidentId']) {
    const v = own(candidate, key);
    if (typeof v === 'string') out[key] = truncate(v, 256);
  }
  return out;
}

function reject(code: string, message: string): Reply {
  return new Reply(400, 'rejected', code, error(code, message));
}

function error(code: string, message: string): { error: Reason } {
  return { error: { code, message } };
}

function respond(statusCode: number, body: unknown, headers?: Record<string, string>): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}
