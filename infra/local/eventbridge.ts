// Loopback EventBridge: PutEvents over the JSON 1.1 protocol (what @aws-sdk/client-eventbridge speaks), routed by
// rule as the deployed stack routes it. Each accepted entry becomes an event on its bus (default: `default`); every
// route of that bus whose pattern matches gets it (infra/local/event-pattern.ts); an event no route matches is
// dropped, as EventBridge drops it. The routes and the bus resource policies come from the template fragments
// (infra/local/event-routes.ts); the stack (infra/local/stack.ts) gives them local targets.
//
// PutEvents answers as the API reference says (PutEvents, PutEventsResultEntry): the call succeeds and each entry
// gets an EventId or an ErrorCode + ErrorMessage, in request order, with FailedEntryCount counting the failures;
// only a malformed request as a whole (not 1-10 entries, not JSON, wrong types) fails the call.
// Per-entry refusals modelled:
// - InvalidArgument / MalformedDetail: a missing Source, DetailType or Detail, or a Detail that is not a JSON object;
// - NotAuthorizedForSourceException: a source starting with `aws.` from anyone but an AWS service (sources under
//   `aws.` are AWS's own: the Scheduler API reference's EventBridgePutEventsParameters, "The source can't start with
//   the aws. prefix"; aws/aws-cdk#30191; PutEventsResultEntry lists NotAuthorizedForSourceException, "You do not have
//   permissions to publish events with this source onto this event bus");
// - AccessDeniedException: an explicit Deny in the bus's resource policy (PutEventsResultEntry: "You do not have
//   sufficient access to perform this action"), with IAM's explicit-deny message wording.
// The caller is who the SigV4 access key says (Authorization: AWS4-HMAC-SHA256 Credential=<key>/...); the signature
// itself is not checked, as the other local emulators do not check it either.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type CompiledPattern, compilePattern, type EventPattern } from './event-pattern.js';
import { AwsServiceError, serveAwsJson, targetOperation } from './http.js';
import {
  type CompiledStatement,
  compileStatement,
  explicitDeny,
  type PolicyStatement,
} from './resource-policy.js';

/** An event as EventBridge hands it to a target (the "EventBridge event" envelope of the user guide). */
export interface BusEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export interface StoredEvent {
  id: string;
  /** ISO-8601; the entry's Time if given, else when it arrived. */
  time: string;
  source: string;
  detailType: string;
  eventBusName: string;
  detail: unknown;
  resources: string[];
  /** The principal that put it (from its access key). */
  principalArn: string;
  /** Ids of the routes it matched; empty: dropped. */
  routes: string[];
}

/** Who is calling, from the request's access key. */
export interface BusCaller {
  principalArn: string;
  /** Set for an AWS service delivering its own events (CloudTrail), which alone may use `aws.` sources. */
  service?: string;
}
export type IdentifyCaller = (accessKeyId: string | undefined) => BusCaller;

export interface BusRoute {
  id: string;
  eventBusName: string;
  /** Undefined: every event of the bus (an archive without a pattern). */
  pattern: EventPattern | undefined;
  /**
   * Awaited before PutEvents answers, so it must only hand the event over (append to a log, queue a Lambda
   * asynchronous invocation: infra/local/lambda-async.ts), never run a function to completion.
   */
  deliver(event: BusEvent): Promise<void> | void;
}

export interface BusPolicy {
  eventBusName: string;
  statement: PolicyStatement;
}

export interface EventBridgeEmulator {
  endpoint: string;
  close(): Promise<void>;
  /** Every accepted entry, oldest first, with the routes it matched. */
  events(): StoredEvent[];
  /** The next n PutEvents calls fail with 500 InternalException. The SDK retries 500s (3 attempts by default). */
  failNext(n: number): void;
}

export interface StartEventBridgeOptions {
  port?: number;
  region?: string;
  accountId?: string;
  routes?: BusRoute[];
  /** Resource policies of buses; only their explicit Deny statements can refuse a caller (resource-policy.ts). */
  policies?: BusPolicy[];
  /** Default: every key is an ordinary principal of the account, `arn:aws:iam::<account>:user/<key>`. */
  identify?: IdentifyCaller;
  /** Route delivery failures (a target that threw); default console.error. */
  onError?: (err: unknown, route: string) => void;
}

interface PutEventsEntry {
  Time?: unknown;
  Source?: unknown;
  Resources?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  EventBusName?: unknown;
  TraceHeader?: unknown;
}

type ResultEntry = { EventId: string } | { ErrorCode: string; ErrorMessage: string };

/** The access key of a SigV4-signed request, if it is signed. */
export function accessKeyOf(req: IncomingMessage): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  return /Credential=([^/,\s]+)\//.exec(auth)?.[1];
}

export async function startEventBridge(opts: StartEventBridgeOptions = {}): Promise<EventBridgeEmulator> {
  const region = opts.region ?? 'us-east-1';
  const account = opts.accountId ?? '123456789012';
  const identify: IdentifyCaller =
    opts.identify ?? ((key) => ({ principalArn: `arn:aws:iam::${account}:user/${key ?? 'anonymous'}` }));
  const onError =
    opts.onError ?? ((err, route) => console.error(`local EventBridge: route ${route} failed:`, err));
  const stored: StoredEvent[] = [];
  let failures = 0;

  const busArn = (name: string): string =>
    name.startsWith('arn:') ? name : `arn:aws:events:${region}:${account}:event-bus/${name}`;
  const busName = (nameOrArn: string | undefined): string => {
    const value = nameOrArn ?? 'default';
    return value.startsWith('arn:') ? (value.split('/').pop() ?? value) : value;
  };
  const routes = (opts.routes ?? []).map((r) => ({
    ...r,
    matches: (r.pattern === undefined ? () => true : compilePattern(r.pattern)) as CompiledPattern,
  }));
  const policies = (opts.policies ?? []).map((p) => ({
    eventBusName: p.eventBusName,
    statement: compileStatement(p.statement) as CompiledStatement,
  }));

  const authorize = (caller: BusCaller, entry: { source: string; detailType: string; bus: string }) => {
    if (entry.source.startsWith('aws.') && caller.service === undefined)
      return {
        ErrorCode: 'NotAuthorizedForSourceException',
        ErrorMessage: `Not authorized for the source ${entry.source}.`,
      };
    const resource = busArn(entry.bus);
    const context = {
      'aws:PrincipalArn': [caller.principalArn],
      'events:source': [entry.source],
      'events:detail-type': [entry.detailType],
    };
    const statements = policies.filter((p) => p.eventBusName === entry.bus).map((p) => p.statement);
    if (explicitDeny(statements, 'events:PutEvents', resource, context))
      return {
        ErrorCode: 'AccessDeniedException',
        ErrorMessage: `User: ${caller.principalArn} is not authorized to perform: events:PutEvents on resource: ${resource} with an explicit deny in a resource-based policy`,
      };
    return undefined;
  };

  const putEvents = async (body: Record<string, unknown>, caller: BusCaller): Promise<unknown> => {
    if (failures > 0) {
      failures -= 1;
      throw new AwsServiceError('InternalException', 500, 'Injected failure (failNext).');
    }
    const entries = body.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
      throw new AwsServiceError(
        'ValidationException',
        400,
        "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
      );
    }
    // Wrong JSON types fail the whole call at deserialization, before any entry is looked at.
    for (const entry of entries) assertShape(entry);
    const results: ResultEntry[] = [];
    for (const entry of entries as PutEventsEntry[]) {
      const problem = validateEntry(entry);
      if (problem) {
        results.push(problem);
        continue;
      }
      const source = entry.Source as string;
      const detailType = entry.DetailType as string;
      const bus = busName(entry.EventBusName as string | undefined);
      const denied = authorize(caller, { source, detailType, bus });
      if (denied) {
        results.push(denied);
        continue;
      }
      const event: BusEvent = {
        version: '0',
        id: randomUUID(),
        'detail-type': detailType,
        source,
        account,
        time: new Date(typeof entry.Time === 'number' ? entry.Time * 1000 : Date.now())
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        region,
        resources: (entry.Resources as string[] | undefined) ?? [],
        detail: JSON.parse(entry.Detail as string) as Record<string, unknown>,
      };
      const matched = routes.filter((r) => r.eventBusName === bus && r.matches(event));
      stored.push({
        id: event.id,
        time: event.time,
        source,
        detailType,
        eventBusName: bus,
        detail: event.detail,
        resources: [...event.resources],
        principalArn: caller.principalArn,
        routes: matched.map((r) => r.id),
      });
      results.push({ EventId: event.id });
      for (const route of matched) {
        // Each target gets its own copy, as each AWS target gets its own delivery.
        try {
          await route.deliver(structuredClone(event));
        } catch (err) {
          onError(err, route.id);
        }
      }
    }
    const failed = results.filter((r) => 'ErrorCode' in r).length;
    return { FailedEntryCount: failed, Entries: results };
  };

  const operations: Record<
    string,
    (body: Record<string, unknown>, caller: BusCaller) => Promise<unknown> | unknown
  > = {
    PutEvents: putEvents,
    CreateEventBus: (b) => ({ EventBusArn: busArn(String(b.Name)) }),
    DescribeEventBus: (b) => {
      const name = busName(b.Name as string | undefined);
      return { Name: name, Arn: busArn(name) };
    },
    DeleteEventBus: () => ({}),
    // Rules come from the template (event-routes.ts); these answer for callers that manage rules but change nothing.
    PutRule: (b) => ({
      RuleArn: `arn:aws:events:${region}:${account}:rule/${
        busName(b.EventBusName as string | undefined) === 'default'
          ? ''
          : `${busName(b.EventBusName as string)}/`
      }${String(b.Name)}`,
    }),
    DeleteRule: () => ({}),
    PutTargets: () => ({ FailedEntryCount: 0, FailedEntries: [] }),
    RemoveTargets: () => ({ FailedEntryCount: 0, FailedEntries: [] }),
  };

  const { endpoint, close } = await serveAwsJson({
    ...(opts.port !== undefined && { port: opts.port }),
    contentType: 'application/x-amz-json-1.1',
    internalErrorType: 'InternalException',
    invalidBody: (message) => new AwsServiceError('SerializationException', 400, message),
    // PutEvents takes at most 256 KB of entries (API reference); a body far past that is refused whole.
    maxBodyBytes: 1024 * 1024,
    tooLarge: () =>
      new AwsServiceError('ValidationException', 400, 'Request body is over the PutEvents size limit.'),
    handle: (req, body) => targetOperation(req, 'AWSEvents', operations)(body, identify(accessKeyOf(req))),
  });
  return {
    endpoint,
    close,
    events: () => stored.map((e) => ({ ...e, resources: [...e.resources], routes: [...e.routes] })),
    failNext: (n) => {
      failures = Math.max(0, Math.trunc(n));
    },
  };
}

const STRING_FIELDS = ['Source', 'DetailType', 'Detail', 'EventBusName', 'TraceHeader'] as const;

/** A PutEventsRequestEntry of the wrong JSON shape: the whole call is a SerializationException, as in AWS. */
function assertShape(entry: unknown): asserts entry is PutEventsEntry {
  const fail = (what: string) => {
    throw new AwsServiceError('SerializationException', 400, `Entries: ${what}`);
  };
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    fail('each entry is a JSON object');
  const e = entry as PutEventsEntry;
  for (const f of STRING_FIELDS)
    if (e[f] !== undefined && e[f] !== null && typeof e[f] !== 'string') fail(`${f} is a string`);
  if (e.Time !== undefined && e.Time !== null && typeof e.Time !== 'number') fail('Time is a timestamp');
  if (
    e.Resources !== undefined &&
    e.Resources !== null &&
    !(Array.isArray(e.Resources) && e.Resources.every((r) => typeof r === 'string'))
  )
    fail('Resources is a list of strings');
}

// EventBridge checks each entry on its own and reports failures per entry with FailedEntryCount > 0; the call
// itself succeeds. Callers that ignore FailedEntryCount lose events in AWS, so the emulator does the same.
function validateEntry(entry: PutEventsEntry): ResultEntry | undefined {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    if (typeof entry[field] !== 'string' || entry[field] === '') {
      return {
        ErrorCode: 'InvalidArgument',
        ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.`,
      };
    }
  }
  try {
    const detail: unknown = JSON.parse(entry.Detail as string);
    if (detail === null || typeof detail !== 'object' || Array.isArray(detail))
      throw new Error('not an object');
  } catch {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
  }
  return undefined;
}
