// Loopback EventBridge: PutEvents over the JSON 1.1 protocol (what @aws-sdk/client-eventbridge speaks), kept in
// memory and appended to an audit log file, one JSON line per event. Rules and targets are accepted and ignored:
// nothing routes events anywhere, tests read them from events() or the log.
import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './http.js';

export interface StoredEvent {
  id: string;
  /** ISO-8601; the entry's Time if given, else when it arrived. */
  time: string;
  source: string;
  detailType: string;
  eventBusName: string;
  detail: unknown;
  resources: string[];
}

/** One line of the audit log file. */
export interface AuditLogLine {
  time: string;
  source: string;
  detailType: string;
  eventBusName: string;
  detail: unknown;
}

export interface EventBridgeEmulator {
  endpoint: string;
  close(): Promise<void>;
  /** Every accepted entry, oldest first. */
  events(): StoredEvent[];
  /** The next n PutEvents calls fail with 500 InternalException. The SDK retries 500s (3 attempts by default). */
  failNext(n: number): void;
}

export interface StartEventBridgeOptions {
  logFile?: string;
  port?: number;
  region?: string;
  accountId?: string;
}

interface PutEventsEntry {
  Time?: number;
  Source?: string;
  Resources?: string[];
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  TraceHeader?: string;
}

type ResultEntry = { EventId: string } | { ErrorCode: string; ErrorMessage: string };

class ServiceError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startEventBridge(opts: StartEventBridgeOptions = {}): Promise<EventBridgeEmulator> {
  const region = opts.region ?? 'us-east-1';
  const account = opts.accountId ?? '123456789012';
  const stored: StoredEvent[] = [];
  let failures = 0;
  // Appends are chained so lines land in the order the events were accepted.
  let logTail: Promise<void> = Promise.resolve();

  const busArn = (name: string): string =>
    name.startsWith('arn:') ? name : `arn:aws:events:${region}:${account}:event-bus/${name}`;
  const busName = (nameOrArn: string | undefined): string => {
    const value = nameOrArn ?? 'default';
    return value.startsWith('arn:') ? (value.split('/').pop() ?? value) : value;
  };

  const putEvents = async (body: { Entries?: PutEventsEntry[] }): Promise<unknown> => {
    if (failures > 0) {
      failures -= 1;
      throw new ServiceError('InternalException', 500, 'Injected failure (failNext).');
    }
    const entries = body.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
      throw new ServiceError(
        'ValidationException',
        400,
        "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
      );
    }
    const results: ResultEntry[] = [];
    const lines: string[] = [];
    for (const entry of entries) {
      const problem = validateEntry(entry);
      if (problem) {
        results.push(problem);
        continue;
      }
      const event: StoredEvent = {
        id: randomUUID(),
        time: new Date(typeof entry.Time === 'number' ? entry.Time * 1000 : Date.now()).toISOString(),
        source: entry.Source as string,
        detailType: entry.DetailType as string,
        eventBusName: busName(entry.EventBusName),
        detail: JSON.parse(entry.Detail as string),
        resources: entry.Resources ?? [],
      };
      stored.push(event);
      results.push({ EventId: event.id });
      const line: AuditLogLine = {
        time: event.time,
        source: event.source,
        detailType: event.detailType,
        eventBusName: event.eventBusName,
        detail: event.detail,
      };
      lines.push(`${JSON.stringify(line)}\n`);
    }
    const { logFile } = opts;
    if (logFile && lines.length > 0) {
      logTail = logTail.then(() => appendFile(logFile, lines.join('')));
      // The caller's PutEvents returns only once its lines are on disk, so a test can read the file right after.
      await logTail;
    }
    const failed = results.filter((r) => 'ErrorCode' in r).length;
    return { FailedEntryCount: failed, Entries: results };
  };

  const operations: Record<string, (body: Record<string, unknown>) => Promise<unknown> | unknown> = {
    PutEvents: putEvents,
    CreateEventBus: (b) => ({ EventBusArn: busArn(String(b.Name)) }),
    DescribeEventBus: (b) => {
      const name = busName(b.Name as string | undefined);
      return { Name: name, Arn: busArn(name) };
    },
    DeleteEventBus: () => ({}),
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

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const send = (status: number, payload: unknown, errorType?: string): void => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      res.setHeader('x-amzn-requestid', requestId);
      if (errorType) res.setHeader('x-amzn-errortype', errorType);
      res.end(JSON.stringify(payload));
    };
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      const [prefix, operation = ''] = target.split('.');
      const op = operations[operation];
      if (req.method !== 'POST' || prefix !== 'AWSEvents' || !op) {
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
      send(200, await op(body));
    } catch (err) {
      const e =
        err instanceof ServiceError
          ? err
          : new ServiceError('InternalException', 500, String((err as Error).message));
      send(e.status, { __type: e.type, message: e.message }, e.type);
    }
  };

  const endpoint = await listenLoopback(server, opts.port);
  return {
    endpoint,
    close: async () => {
      await closeServer(server);
      await logTail.catch(() => undefined);
    },
    events: () => stored.map((e) => ({ ...e, resources: [...e.resources] })),
    failNext: (n) => {
      failures = Math.max(0, Math.trunc(n));
    },
  };
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
