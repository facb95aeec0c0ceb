// Loopback EventBridge Scheduler (REST-JSON, what @aws-sdk/client-scheduler speaks) that really fires: one-time
// `at()` schedules whose target is an SQS queue send their Input to the queue when due; those whose target is
// an event bus (the templated EventBridge PutEvents target) put one event with Input as its detail. Only what
// this project uses is emulated: at() expressions, SQS and event-bus targets, schedule groups by name,
// ActionAfterCompletion.
import { createHash } from 'node:crypto';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, type SendMessageCommandInput, type SQSClient } from '@aws-sdk/client-sqs';
import { AwsServiceError, serveAwsJson } from './http.js';

export interface ScheduleTarget {
  Arn: string;
  RoleArn: string;
  Input?: string;
  SqsParameters?: { MessageGroupId?: string };
  /** Event-bus targets: the event's Source and DetailType (Input is its detail). */
  EventBridgeParameters?: { Source?: string; DetailType?: string };
  RetryPolicy?: { MaximumEventAgeInSeconds?: number; MaximumRetryAttempts?: number };
  DeadLetterConfig?: { Arn?: string };
}

export interface ScheduleView {
  name: string;
  groupName: string;
  arn: string;
  scheduleExpression: string;
  scheduleExpressionTimezone: string;
  /** When the schedule is due, ISO-8601 UTC. */
  fireAt: string;
  state: 'ENABLED' | 'DISABLED';
  actionAfterCompletion: 'NONE' | 'DELETE';
  flexibleTimeWindow: { Mode: string; MaximumWindowInMinutes?: number };
  target: ScheduleTarget;
  /** It fired (or gave up retrying) and stays only because ActionAfterCompletion is NONE. */
  completed: boolean;
  failedAttempts: number;
}

export interface FiredSchedule {
  name: string;
  groupName: string;
  /** When it was due, ISO-8601 UTC. */
  at: string;
  /** When the message was accepted by SQS, ISO-8601 UTC. */
  firedAt: string;
  messageId: string | undefined;
}

export interface SchedulerEmulator {
  endpoint: string;
  close(): Promise<void>;
  schedules(): ScheduleView[];
  fired(): FiredSchedule[];
  /** While paused nothing fires (a test simulating a lost or late schedule). */
  pause(): void;
  resume(): void;
  /** Deletes every schedule without firing it. */
  dropAll(): void;
  /** Fires whatever is due now instead of waiting for the next tick; resolves with how many fired. */
  fireDue(): Promise<number>;
}

export interface StartSchedulerOptions {
  sqs: SQSClient;
  /**
   * The client a schedule's target is sent with: Scheduler assumes the target's RoleArn and sends as that role,
   * so the queue stamps the role's SenderId (default: `sqs` for every role).
   */
  sqsForRole?: (roleArn: string) => SQSClient;
  queueUrlForArn: (arn: string) => string;
  /**
   * Event-bus targets are put with this client. Scheduler assumes the target's RoleArn, so the bus sees that
   * role as the caller (and its resource policy applies): `eventbridgeForRole` picks the client per role.
   */
  eventbridge?: EventBridgeClient;
  eventbridgeForRole?: (roleArn: string) => EventBridgeClient;
  now?: () => number;
  /** How often due schedules are looked for (default 100 ms). */
  tickMs?: number;
  port?: number;
  region?: string;
  accountId?: string;
  /**
   * MessageDeduplicationId for FIFO targets. 'content' (default) is what AWS does: Scheduler sends none, so the
   * queue must have content-based deduplication and two schedules with the same Input and group within five
   * minutes deliver once. 'schedule' sends sha256(group/name@time) instead.
   */
  deduplication?: 'content' | 'schedule';
  onError?: (err: unknown, schedule: { name: string; groupName: string }) => void;
}

interface Schedule {
  Name: string;
  GroupName: string;
  Arn: string;
  ScheduleExpression: string;
  ScheduleExpressionTimezone: string;
  StartDate?: number;
  EndDate?: number;
  Description?: string;
  State: 'ENABLED' | 'DISABLED';
  KmsKeyArn?: string;
  Target: ScheduleTarget;
  FlexibleTimeWindow: { Mode: string; MaximumWindowInMinutes?: number };
  ActionAfterCompletion: 'NONE' | 'DELETE';
  CreationDate: number;
  LastModificationDate: number;
  fireAtMs: number;
  completed: boolean;
  firing: boolean;
  failedAttempts: number;
  nextAttemptMs: number;
}

interface ScheduleGroup {
  Arn: string;
  Name: string;
  State: 'ACTIVE';
  CreationDate: number;
  LastModificationDate: number;
}

const invalid = (message: string): AwsServiceError =>
  new AwsServiceError('ValidationException', 400, message);
const NAME = /^[0-9a-zA-Z\-_.]{1,64}$/;
const AT = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/;
/** AWS default RetryPolicy: 185 attempts within 24 h. */
const DEFAULT_MAX_RETRIES = 185;

export async function startScheduler(opts: StartSchedulerOptions): Promise<SchedulerEmulator> {
  const now = opts.now ?? Date.now;
  const region = opts.region ?? 'us-east-1';
  const account = opts.accountId ?? '123456789012';
  const schedules = new Map<string, Schedule>();
  const groups = new Map<string, ScheduleGroup>();
  const firedLog: FiredSchedule[] = [];
  let paused = false;

  const groupArn = (name: string): string => `arn:aws:scheduler:${region}:${account}:schedule-group/${name}`;
  const keyOf = (group: string, name: string): string => `${group}/${name}`;
  const addGroup = (name: string): ScheduleGroup => {
    const t = now();
    const g: ScheduleGroup = {
      Arn: groupArn(name),
      Name: name,
      State: 'ACTIVE',
      CreationDate: t,
      LastModificationDate: t,
    };
    groups.set(name, g);
    return g;
  };
  addGroup('default');

  const findSchedule = (name: string, group: string | null): Schedule => {
    const s = schedules.get(keyOf(group ?? 'default', name));
    if (!s) throw new AwsServiceError('ResourceNotFoundException', 404, `Schedule ${name} does not exist.`);
    return s;
  };

  // CreateSchedule and UpdateSchedule take the same body and both replace every field.
  const buildSchedule = (name: string, body: Record<string, unknown>, creationDate?: number): Schedule => {
    if (!NAME.test(name)) throw invalid(`Invalid schedule name ${name}: 1-64 of [0-9a-zA-Z-_.].`);
    const groupName = optionalString(body.GroupName, 'GroupName') ?? 'default';
    if (!groups.has(groupName)) {
      throw new AwsServiceError(
        'ResourceNotFoundException',
        404,
        `Schedule group ${groupName} does not exist.`,
      );
    }
    const expression = optionalString(body.ScheduleExpression, 'ScheduleExpression');
    if (!expression) throw invalid('ScheduleExpression is required.');
    const timezone = optionalString(body.ScheduleExpressionTimezone, 'ScheduleExpressionTimezone') ?? 'UTC';
    const fireAtMs = parseAt(expression, timezone);
    const window = body.FlexibleTimeWindow as Schedule['FlexibleTimeWindow'] | undefined;
    if (!window || (window.Mode !== 'OFF' && window.Mode !== 'FLEXIBLE')) {
      throw invalid('FlexibleTimeWindow with Mode OFF or FLEXIBLE is required.');
    }
    if (window.Mode === 'FLEXIBLE') {
      const max = window.MaximumWindowInMinutes;
      if (typeof max !== 'number' || max < 1 || max > 1440) {
        throw invalid('MaximumWindowInMinutes must be 1-1440 when Mode is FLEXIBLE.');
      }
    }
    const target = validateTarget(body.Target);
    const state = body.State ?? 'ENABLED';
    if (state !== 'ENABLED' && state !== 'DISABLED') throw invalid('State must be ENABLED or DISABLED.');
    const after = body.ActionAfterCompletion ?? 'NONE';
    if (after !== 'NONE' && after !== 'DELETE')
      throw invalid('ActionAfterCompletion must be NONE or DELETE.');
    const t = now();
    return {
      Name: name,
      GroupName: groupName,
      Arn: `arn:aws:scheduler:${region}:${account}:schedule/${groupName}/${name}`,
      ScheduleExpression: expression,
      ScheduleExpressionTimezone: timezone,
      StartDate: body.StartDate as number | undefined,
      EndDate: body.EndDate as number | undefined,
      Description: optionalString(body.Description, 'Description'),
      State: state,
      KmsKeyArn: optionalString(body.KmsKeyArn, 'KmsKeyArn'),
      Target: target,
      FlexibleTimeWindow: window,
      ActionAfterCompletion: after,
      CreationDate: creationDate ?? t,
      LastModificationDate: t,
      fireAtMs,
      completed: false,
      firing: false,
      failedAttempts: 0,
      nextAttemptMs: 0,
    };
  };

  const describe = (s: Schedule): Record<string, unknown> => ({
    Arn: s.Arn,
    GroupName: s.GroupName,
    Name: s.Name,
    ScheduleExpression: s.ScheduleExpression,
    ScheduleExpressionTimezone: s.ScheduleExpressionTimezone,
    StartDate: s.StartDate,
    EndDate: s.EndDate,
    Description: s.Description,
    State: s.State,
    KmsKeyArn: s.KmsKeyArn,
    Target: s.Target,
    FlexibleTimeWindow: s.FlexibleTimeWindow,
    ActionAfterCompletion: s.ActionAfterCompletion,
    CreationDate: s.CreationDate / 1000,
    LastModificationDate: s.LastModificationDate / 1000,
  });

  const route = async (method: string, url: URL, body: Record<string, unknown>): Promise<unknown> => {
    const [collection, rawName, ...rest] = url.pathname.split('/').filter(Boolean);
    const name = rawName === undefined ? undefined : decodeURIComponent(rawName);
    if (rest.length > 0)
      throw new AwsServiceError('UnknownOperationException', 404, `No route for ${url.pathname}`);
    if (collection === 'schedules' && name !== undefined) {
      const group = url.searchParams.get('groupName');
      switch (method) {
        case 'POST': {
          const s = buildSchedule(name, body);
          if (schedules.has(keyOf(s.GroupName, name))) {
            throw new AwsServiceError('ConflictException', 409, `Schedule ${name} already exists.`);
          }
          schedules.set(keyOf(s.GroupName, name), s);
          return { ScheduleArn: s.Arn };
        }
        case 'PUT': {
          const old = findSchedule(name, (body.GroupName as string | undefined) ?? null);
          const s = buildSchedule(name, body, old.CreationDate);
          schedules.set(keyOf(s.GroupName, name), s);
          return { ScheduleArn: s.Arn };
        }
        case 'GET':
          return describe(findSchedule(name, group));
        case 'DELETE': {
          const s = findSchedule(name, group);
          schedules.delete(keyOf(s.GroupName, s.Name));
          return {};
        }
      }
    }
    if (collection === 'schedules' && name === undefined && method === 'GET') {
      const group = url.searchParams.get('ScheduleGroup');
      const prefix = url.searchParams.get('NamePrefix') ?? '';
      const state = url.searchParams.get('State');
      const all = [...schedules.values()]
        .filter((s) => (group === null || s.GroupName === group) && s.Name.startsWith(prefix))
        .filter((s) => state === null || s.State === state)
        .sort((a, b) => keyOf(a.GroupName, a.Name).localeCompare(keyOf(b.GroupName, b.Name)));
      return paginate(all, url, 'Schedules', (s) => ({
        Arn: s.Arn,
        Name: s.Name,
        GroupName: s.GroupName,
        State: s.State,
        CreationDate: s.CreationDate / 1000,
        LastModificationDate: s.LastModificationDate / 1000,
        Target: { Arn: s.Target.Arn },
      }));
    }
    if (collection === 'schedule-groups' && name !== undefined) {
      const existing = groups.get(name);
      const view = (g: ScheduleGroup) => ({
        ...g,
        CreationDate: g.CreationDate / 1000,
        LastModificationDate: g.LastModificationDate / 1000,
      });
      switch (method) {
        case 'POST':
          if (existing)
            throw new AwsServiceError('ConflictException', 409, `Schedule group ${name} already exists.`);
          if (!NAME.test(name)) throw invalid(`Invalid schedule group name ${name}.`);
          return { ScheduleGroupArn: addGroup(name).Arn };
        case 'GET':
          if (!existing)
            throw new AwsServiceError(
              'ResourceNotFoundException',
              404,
              `Schedule group ${name} does not exist.`,
            );
          return view(existing);
        case 'DELETE':
          if (!existing)
            throw new AwsServiceError(
              'ResourceNotFoundException',
              404,
              `Schedule group ${name} does not exist.`,
            );
          if (name === 'default') throw invalid('The default schedule group cannot be deleted.');
          groups.delete(name);
          for (const [key, s] of schedules) if (s.GroupName === name) schedules.delete(key);
          return {};
      }
    }
    if (collection === 'schedule-groups' && name === undefined && method === 'GET') {
      const prefix = url.searchParams.get('NamePrefix') ?? '';
      const all = [...groups.values()].filter((g) => g.Name.startsWith(prefix));
      return paginate(all, url, 'ScheduleGroups', (g) => ({
        ...g,
        CreationDate: g.CreationDate / 1000,
        LastModificationDate: g.LastModificationDate / 1000,
      }));
    }
    throw new AwsServiceError(
      'UnknownOperationException',
      404,
      `The emulator does not support ${method} ${url.pathname}`,
    );
  };

  const sendMessage = async (s: Schedule, at: string): Promise<string | undefined> => {
    const input: SendMessageCommandInput = {
      QueueUrl: opts.queueUrlForArn(s.Target.Arn),
      MessageBody: s.Target.Input,
      MessageGroupId: s.Target.SqsParameters?.MessageGroupId,
    };
    if (opts.deduplication === 'schedule' && s.Target.Arn.endsWith('.fifo')) {
      input.MessageDeduplicationId = createHash('sha256')
        .update(`${s.GroupName}/${s.Name}@${at}`)
        .digest('hex');
    }
    const client = opts.sqsForRole?.(s.Target.RoleArn) ?? opts.sqs;
    return (await client.send(new SendMessageCommand(input))).MessageId;
  };

  const putEvent = async (s: Schedule): Promise<string | undefined> => {
    const client = opts.eventbridgeForRole?.(s.Target.RoleArn) ?? opts.eventbridge;
    if (!client)
      throw new Error('the emulator was started without an EventBridge client for event-bus targets');
    const out = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: s.Target.Arn,
            Source: s.Target.EventBridgeParameters?.Source,
            DetailType: s.Target.EventBridgeParameters?.DetailType,
            Detail: s.Target.Input,
          },
        ],
      }),
    );
    // A refused entry is a failed invocation: Scheduler retries it as it would a refused SendMessage.
    const entry = out.Entries?.[0];
    if (out.FailedEntryCount || !entry?.EventId) {
      throw new Error(`PutEvents refused the event: ${entry?.ErrorCode}: ${entry?.ErrorMessage}`);
    }
    return entry.EventId;
  };

  const fire = async (s: Schedule): Promise<boolean> => {
    s.firing = true;
    const at = new Date(s.fireAtMs).toISOString();
    let delivered = false;
    try {
      const messageId = isEventBus(s.Target.Arn) ? await putEvent(s) : await sendMessage(s, at);
      firedLog.push({
        name: s.Name,
        groupName: s.GroupName,
        at,
        firedAt: new Date(now()).toISOString(),
        messageId,
      });
      s.completed = true;
      delivered = true;
    } catch (err) {
      s.failedAttempts += 1;
      opts.onError?.(err, { name: s.Name, groupName: s.GroupName });
      const maxRetries = s.Target.RetryPolicy?.MaximumRetryAttempts ?? DEFAULT_MAX_RETRIES;
      // AWS retries with back-off and then drops the event (or sends it to the target's DLQ, not emulated).
      if (s.failedAttempts > maxRetries) s.completed = true;
      else s.nextAttemptMs = now() + Math.min(1000 * 2 ** (s.failedAttempts - 1), 60_000);
    } finally {
      s.firing = false;
    }
    const key = keyOf(s.GroupName, s.Name);
    // Only delete the schedule that fired: an UpdateSchedule during the send installed a new one.
    if (s.completed && s.ActionAfterCompletion === 'DELETE' && schedules.get(key) === s)
      schedules.delete(key);
    return delivered;
  };

  let sweeping: Promise<number> | undefined;
  const fireDue = (): Promise<number> => {
    if (paused) return Promise.resolve(0);
    // One sweep at a time, so a slow send cannot make the same schedule fire twice.
    sweeping ??= (async () => {
      try {
        const t = now();
        const due = [...schedules.values()].filter(
          (s) =>
            s.State === 'ENABLED' && !s.completed && !s.firing && s.fireAtMs <= t && s.nextAttemptMs <= t,
        );
        const results = await Promise.all(due.map(fire));
        return results.filter(Boolean).length;
      } finally {
        sweeping = undefined;
      }
    })();
    return sweeping;
  };

  const timer = setInterval(() => {
    void fireDue();
  }, opts.tickMs ?? 100);
  timer.unref();

  // REST-JSON: the operation is the method and path; errors carry `Message` (the model's member) too.
  const { endpoint, close: closeHttp } = await serveAwsJson({
    ...(opts.port !== undefined && { port: opts.port }),
    contentType: 'application/json',
    internalErrorType: 'InternalServerException',
    invalidBody: invalid,
    errorBody: (e) => ({ Message: e.message, message: e.message }),
    handle: (req, body) => route(req.method ?? 'GET', new URL(req.url ?? '/', 'http://127.0.0.1'), body),
  });

  return {
    endpoint,
    close: async () => {
      clearInterval(timer);
      await sweeping;
      await closeHttp();
    },
    schedules: () =>
      [...schedules.values()].map((s) => ({
        name: s.Name,
        groupName: s.GroupName,
        arn: s.Arn,
        scheduleExpression: s.ScheduleExpression,
        scheduleExpressionTimezone: s.ScheduleExpressionTimezone,
        fireAt: new Date(s.fireAtMs).toISOString(),
        state: s.State,
        actionAfterCompletion: s.ActionAfterCompletion,
        flexibleTimeWindow: { ...s.FlexibleTimeWindow },
        target: structuredClone(s.Target),
        completed: s.completed,
        failedAttempts: s.failedAttempts,
      })),
    fired: () => firedLog.map((f) => ({ ...f })),
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    dropAll: () => schedules.clear(),
    fireDue,
  };
}

function validateTarget(value: unknown): ScheduleTarget {
  const target = value as ScheduleTarget | undefined;
  if (!target || typeof target.Arn !== 'string' || typeof target.RoleArn !== 'string') {
    throw invalid('Target with Arn and RoleArn is required.');
  }
  const arn = target.Arn.split(':');
  if (isEventBus(target.Arn)) {
    const p = target.EventBridgeParameters;
    if (!p?.Source || !p.DetailType) {
      throw invalid('EventBridgeParameters with Source and DetailType is required for an event bus target.');
    }
    if (typeof target.Input !== 'string' || target.Input.length === 0) {
      throw invalid('The emulator requires Target.Input (the event detail) for event bus targets.');
    }
    return structuredClone(target);
  }
  if (arn.length !== 6 || arn[2] !== 'sqs') {
    throw invalid(`The emulator only delivers to SQS queues and event buses; Target.Arn is ${target.Arn}.`);
  }
  // Scheduler's templated SQS target maps Input to the message body; an empty body is not a valid message.
  if (typeof target.Input !== 'string' || target.Input.length === 0) {
    throw invalid('The emulator requires Target.Input for SQS targets.');
  }
  if (target.Arn.endsWith('.fifo')) {
    const group = target.SqsParameters?.MessageGroupId;
    if (typeof group !== 'string' || group.length < 1 || group.length > 128) {
      throw invalid('SqsParameters.MessageGroupId (1-128 characters) is required for a FIFO queue target.');
    }
  }
  return structuredClone(target);
}

function isEventBus(arn: string): boolean {
  const parts = arn.split(':');
  return parts.length === 6 && parts[2] === 'events' && (parts[5] ?? '').startsWith('event-bus/');
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string.`);
  return value;
}

/** `at(yyyy-mm-ddThh:mm:ss)` is wall-clock time in `timezone`; returns epoch milliseconds. */
export function parseAt(expression: string, timezone: string): number {
  const m = AT.exec(expression);
  if (!m) {
    throw invalid(`The emulator supports only at(yyyy-mm-ddThh:mm:ss) expressions; got ${expression}.`);
  }
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(wall);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw invalid(`Invalid date in ${expression}.`);
  }
  if (timezone === 'UTC') return wall;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  } catch {
    throw invalid(`Invalid ScheduleExpressionTimezone ${timezone}.`);
  }
  const offset = (epochMs: number): number => {
    const parts = Object.fromEntries(format.formatToParts(new Date(epochMs)).map((p) => [p.type, p.value]));
    const asUtc = Date.UTC(
      Number(parts.year),
      Number(parts.month) - 1,
      Number(parts.day),
      Number(parts.hour),
      Number(parts.minute),
      Number(parts.second),
    );
    return asUtc - epochMs;
  };
  // The zone's offset at the wall time itself is only a guess; a second pass corrects it across DST changes.
  const first = wall - offset(wall);
  return wall - offset(first);
}

function paginate<T>(all: T[], url: URL, key: string, view: (item: T) => unknown): Record<string, unknown> {
  const start = Number(url.searchParams.get('NextToken') ?? '0') || 0;
  const max = Math.min(Math.max(Number(url.searchParams.get('MaxResults') ?? '100') || 100, 1), 100);
  const page = all.slice(start, start + max);
  const next = start + max < all.length ? String(start + max) : undefined;
  return { [key]: page.map(view), NextToken: next };
}
