// A loopback emulator of the Amazon EKS access-entry API (restJson1 over node:http), so the real
// @aws-sdk/client-eks runs unchanged against `endpoint`. No public emulator covers access entries for
// Node. Faults and state are driven in-process through the returned object, never over HTTP.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { EksApiError } from './eks-emulator/errors.js';
import { FaultInjector } from './eks-emulator/faults.js';
import { EksModel } from './eks-emulator/model.js';
import { matchRoute, type Route } from './eks-emulator/routes.js';
import type { EksCall, EksEmulator, EksEmulatorOptions } from './eks-emulator/types.js';
import { listenLoopback, readBody } from './http.js';

export { MANAGED_POLICY_NAMES } from './eks-emulator/rules.js';
export type {
  AccessEntryType,
  AccessScope,
  AuthenticationMode,
  EksCall,
  EksEmulator,
  EksEmulatorOptions,
  EksOperation,
  EntrySnapshot,
  FaultConfig,
  SeedEntry,
} from './eks-emulator/types.js';

const MAX_BODY_BYTES = 1024 * 1024;

export async function startEksEmulator(opts: EksEmulatorOptions = {}): Promise<EksEmulator> {
  const region = opts.region ?? 'us-east-1';
  const model = new EksModel({
    region,
    accountId: opts.accountId ?? '000000000000',
    entryQuota: opts.entryQuota ?? 3000,
    ...(opts.maxNamespacesPerScope !== undefined && { maxNamespacesPerScope: opts.maxNamespacesPerScope }),
  });
  for (const c of opts.clusters ?? []) model.addCluster(c.name, c.authenticationMode);
  const faults = new FaultInjector();
  let log: EksCall[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const dispatch = (route: Route, query: URLSearchParams, body: Record<string, unknown>): unknown => {
    const cluster = route.clusterName ?? '';
    const principal = route.principalArn ?? '';
    const window = faults.postCreateNotFoundMs;
    switch (route.operation) {
      case 'DescribeCluster':
        return model.describeCluster(cluster);
      case 'ListAccessPolicies':
        return model.listAccessPolicies(query);
      case 'CreateAccessEntry':
        return model.createAccessEntry(cluster, body, {
          postDeleteConflictMs: faults.postDeleteConflictMs,
          iamPropagationMs: faults.iamPropagationMs,
        });
      case 'ListAccessEntries':
        return model.listAccessEntries(cluster, query);
      case 'DescribeAccessEntry':
        return model.describeAccessEntry(cluster, principal, window);
      case 'UpdateAccessEntry':
        return model.updateAccessEntry(cluster, principal, body, window);
      case 'DeleteAccessEntry':
        return model.deleteAccessEntry(cluster, principal, window);
      case 'AssociateAccessPolicy':
        return model.associateAccessPolicy(cluster, principal, body, window);
      case 'ListAssociatedAccessPolicies':
        return model.listAssociatedAccessPolicies(cluster, principal, query, window);
      case 'DisassociateAccessPolicy':
        return model.disassociateAccessPolicy(cluster, principal, route.policyArn ?? '', window);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = matchRoute(req.method ?? 'GET', url.pathname);
    let text: string;
    try {
      text = await readBody(req, MAX_BODY_BYTES);
    } catch {
      send(res, new EksApiError('SerializationException', 'Request body too large or unreadable.'));
      return;
    }
    if (!route) {
      send(
        res,
        new EksApiError('UnknownOperationException', `No EKS operation at ${req.method} ${url.pathname}.`),
      );
      return;
    }
    // Faults are decided on arrival (the throttle bucket measures arrival rate); latency then applies to
    // every answer, failed or not.
    const fault = faults.decide(route.operation);
    const delay = faults.latency();
    if (delay > 0) await sleep(delay);

    let status: number;
    if (fault) {
      status = send(res, fault);
    } else {
      try {
        const body = parseBody(text);
        status = send(res, undefined, dispatch(route, url.searchParams, body));
      } catch (err) {
        status = send(
          res,
          err instanceof EksApiError
            ? err
            : new EksApiError(
                'ServerException',
                `Emulator bug: ${err instanceof Error ? err.message : String(err)}`,
              ),
        );
      }
    }
    log.push({
      operation: route.operation,
      ...(route.clusterName === undefined ? {} : { clusterName: route.clusterName }),
      ...(route.principalArn === undefined ? {} : { principalArn: route.principalArn }),
      status,
      at,
    });
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  const endpoint = await listenLoopback(server, opts.port);

  return {
    endpoint,
    region,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        // The SDK keeps connections alive; without this close() waits for their idle timeout.
        server.closeAllConnections();
      }),
    setFaults: (f) => faults.set(f),
    clearFaults: () => faults.clear(),
    calls: () => log.map((c) => ({ ...c })),
    resetCalls: () => {
      log = [];
    },
    addCluster: (name, mode) => model.addCluster(name, mode),
    seedEntry: (cluster, entry) => model.seedEntry(cluster, entry),
    snapshot: (cluster) => model.snapshot(cluster),
    recreatePrincipal: (arn) => model.recreatePrincipal(arn),
    createPrincipal: (arn) => model.createPrincipal(arn),
    deletePrincipal: (arn) => model.deletePrincipal(arn),
    isStale: (cluster, arn) => model.isStale(cluster, arn),
  };
}

function send(res: ServerResponse, error: EksApiError | undefined, payload?: unknown): number {
  const status = error ? error.status : 200;
  const text = JSON.stringify(error ? error.body() : (payload ?? {}));
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  };
  // The SDK reads the error type from this header before looking at the body.
  if (error) headers['x-amzn-errortype'] = error.type;
  if (!res.destroyed) {
    res.writeHead(status, headers);
    res.end(text);
  }
  return status;
}

function parseBody(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new EksApiError('SerializationException', 'The request body is not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new EksApiError('SerializationException', 'The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}
