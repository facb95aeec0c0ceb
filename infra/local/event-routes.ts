/**
 * The deployed stack's EventBridge routing, read from the very template fragments serverless.yml assembles
 * (one source of truth): the functions' `eventBridge` events (infra/functions-more.yml), and the
 * AWS::Events::Rule, AWS::Events::Archive and AWS::Events::EventBusPolicy resources (infra/resources/audit.yml).
 * test/integration/template.test.ts checks that the packaged template holds exactly these patterns.
 * CloudFormation intrinsics are resolved through the caller's naming of local resources.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Tags, type YAMLSeq } from 'yaml';
import type { EventPattern } from './event-pattern.js';
import type { PolicyStatement } from './resource-policy.js';

const ROOT = join(import.meta.dirname, '../..');
/** Fragments whose `functions:` may subscribe to EventBridge (serverless `eventBridge` events). */
const FUNCTION_FILES = ['infra/functions-more.yml', 'infra/break-glass-intake.yml'];
/** Fragments whose `Resources:` may hold buses, rules, archives and bus policies. */
const RESOURCE_FILES = ['infra/resources/audit.yml'];

export type RouteTarget =
  /** A Lambda function of serverless.yml, by its key under `functions:`. */
  | { kind: 'function'; name: string }
  /** An AWS::Events::Archive (local mode: the audit log). */
  | { kind: 'archive'; logicalId: string }
  /** An AWS::Events::Rule resource, by logical id; its targets are the stack's to model. */
  | { kind: 'rule'; logicalId: string };

export interface RouteSpec {
  /** Logical id of the rule or archive, or `<function>-eventBridge-<n>` as serverless names its rules. */
  id: string;
  eventBusName: string;
  /** Undefined: every event of the bus (an archive without a pattern). */
  pattern: EventPattern | undefined;
  target: RouteTarget;
}

export interface BusPolicySpec {
  id: string;
  eventBusName: string;
  statement: PolicyStatement;
}

export interface EventRoutes {
  routes: RouteSpec[];
  policies: BusPolicySpec[];
}

/** How template references map to local names: `!Ref <bus>`, `!GetAtt <bus>.Arn`, `!GetAtt <role>.Arn`. */
export interface LocalNames {
  busName(logicalId: string): string;
  busArn(busName: string): string;
  roleArn(logicalId: string): string;
}

const INTRINSICS = ['Sub', 'If', 'Equals', 'Not', 'Split', 'Join', 'Select', 'GetAtt', 'FindInMap'];
const CFN_TAGS: Tags = [
  { tag: '!Ref', resolve: (s: string) => ({ Ref: s }) },
  { tag: '!GetAtt', resolve: (s: string) => ({ 'Fn::GetAtt': s.split('.') }) },
  ...INTRINSICS.filter((f) => f !== 'GetAtt').map((f) => ({
    tag: `!${f}`,
    resolve: (s: string) => ({ [`Fn::${f}`]: s }),
  })),
  ...INTRINSICS.map((f) => ({
    tag: `!${f}`,
    collection: 'seq' as const,
    resolve: (s: YAMLSeq) => ({ [`Fn::${f}`]: s.toJSON() }),
  })),
];

function readFragment(file: string): Record<string, unknown> {
  return (parse(readFileSync(join(ROOT, file), 'utf8'), { customTags: CFN_TAGS }) ?? {}) as Record<
    string,
    unknown
  >;
}

type Json = unknown;
const obj = (v: Json): Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, Json>) : {};

export function loadEventRoutes(names: LocalNames): EventRoutes {
  const resources: Record<string, { Type?: string; Properties?: Record<string, Json> }> = {};
  for (const file of RESOURCE_FILES) Object.assign(resources, obj(readFragment(file).Resources));
  const typeOf = (id: string) => resources[id]?.Type;

  // Template values to local strings; anything unknown throws, so a new reference is noticed, not guessed.
  const resolve = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolve);
    if (typeof value !== 'object' || value === null) return value;
    const o = value as Record<string, Json>;
    if (typeof o.Ref === 'string') {
      if (typeOf(o.Ref) === 'AWS::Events::EventBus') return names.busName(o.Ref);
      throw new Error(`local EventBridge routing: cannot resolve Ref ${o.Ref}`);
    }
    const getAtt = o['Fn::GetAtt'];
    if (Array.isArray(getAtt)) {
      const [id, attr] = getAtt as [string, string];
      if (attr === 'Arn' && typeOf(id) === 'AWS::Events::EventBus') return names.busArn(names.busName(id));
      if (attr === 'Arn' && id.endsWith('Role')) return names.roleArn(id);
      throw new Error(`local EventBridge routing: cannot resolve GetAtt ${id}.${attr}`);
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v)]));
  };
  const busOf = (v: Json): string => (v === undefined ? 'default' : String(resolve(v)));

  const routes: RouteSpec[] = [];
  for (const file of FUNCTION_FILES) {
    for (const [name, fn] of Object.entries(obj(readFragment(file).functions))) {
      const events = Array.isArray(obj(fn).events) ? (obj(fn).events as Json[]) : [];
      events.forEach((e, i) => {
        const eb = obj(obj(e).eventBridge);
        if (Object.keys(eb).length === 0) return;
        routes.push({
          id: `${name}-eventBridge-${i + 1}`,
          eventBusName: busOf(eb.eventBus),
          pattern: eb.pattern as EventPattern,
          target: { kind: 'function', name },
        });
      });
    }
  }
  const policies: BusPolicySpec[] = [];
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::Events::Rule' && p.EventPattern)
      routes.push({
        id,
        eventBusName: busOf(p.EventBusName),
        pattern: p.EventPattern as EventPattern,
        target: { kind: 'rule', logicalId: id },
      });
    if (r.Type === 'AWS::Events::Archive') {
      // SourceArn is the archived bus; an archive without a pattern keeps every event of the bus.
      const arn = String(resolve(p.SourceArn));
      routes.push({
        id,
        eventBusName: arn.split('/').pop() ?? arn,
        pattern: p.EventPattern as EventPattern | undefined,
        target: { kind: 'archive', logicalId: id },
      });
    }
    if (r.Type === 'AWS::Events::EventBusPolicy') {
      if (!p.Statement) throw new Error(`local EventBridge routing: ${id} has no Statement`);
      policies.push({
        id,
        eventBusName: busOf(p.EventBusName),
        statement: resolve(p.Statement) as PolicyStatement,
      });
    }
  }
  return { routes, policies };
}
