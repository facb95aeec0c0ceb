// A loopback emulator of the Amazon EKS access-entry API (restJson1 over node:http), so the real
// @aws-sdk/client-eks runs unchanged against `endpoint`. No public emulator covers access entries for
// Node. Faults and state are driven in-process through the returned object, never over HTTP.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { EksApiError } from './eks-emulator/errors.js';
import { FaultInjector } from './eks-emulator/faults.js';
import { EksModel, PrincipalRegistry } from './eks-emulator/model.js';
import { matchRoute, type Route } from './eks-emulator/routes.js';
import type { AccountRegion, EksCall, EksEmulator, EksEmulatorOptions } from './eks-emulator/types.js';
import { listenLoopback, readBody } from './http.js';
import { accessKeyOf, signedRegionOf } from './sts.js';

export { MANAGED_POLICY_NAMES } from './eks-emulator/rules.js';
export type {
  AccessEntryType,
  AccessScope,
  AccountRegion,
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
  const home: AccountRegion = { account: opts.accountId ?? '000000000000', region };
  // One model per account-region (issue 13): EKS is a regional service of each account, and a cluster
  // name is unique only there. IAM principals are shared: a recreated role is stale everywhere.
  const principals = new PrincipalRegistry();
  const models = new Map<string, EksModel>();
  const modelAt = (at: AccountRegion = home): EksModel => {
    const key = `${at.account}:${at.region}`;
    let m = models.get(key);
    if (!m) {
      m = new EksModel({
        region: at.region,
        accountId: at.account,
        principals,
        entryQuota: opts.entryQuota ?? 3000,
        ...(opts.maxNamespacesPerScope !== undefined && {
          maxNamespacesPerScope: opts.maxNamespacesPerScope,
        }),
      });
      models.set(key, m);
    }
    return m;
  };
  const model = modelAt(home);
  for (const c of opts.clusters ?? []) {
    modelAt({ account: c.account ?? home.account, region: c.region ?? home.region }).addCluster(
      c.name,
      c.authenticationMode,
    );
  }

  /**
   * Where a caller acts, from its credentials as AWS decides it: a session issued by the local STS acts in
   * its role's account, in the region it signed for (each region has its own EKS endpoint; locally one
   * endpoint serves all, so the SigV4 scope picks). A plain local key acts in the default account and
   * region, as before fleets. A key STS issued whose session has died (role deleted or recreated, IAM
   * authorizes sessions by the role's unique id; or expired) is refused as EKS refuses an unauthorized
   * caller: 403 AccessDeniedException (EKS API reference, common errors).
   */
  const callerScope = (req: IncomingMessage): AccountRegion | EksApiError => {
    const key = accessKeyOf(req.headers.authorization);
    if (!opts.sts || key === undefined || !opts.sts.issued(key)) return home;
    const session = opts.sts.sessionOf(key);
    if (!session) {
      return new EksApiError(
        'AccessDeniedException',
        `The security token of ${key} no longer grants access: its role session has expired or its role was deleted.`,
      );
    }
    return { account: session.account, region: signedRegionOf(req.headers.authorization) ?? home.region };
  };
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

  const dispatch = (
    model: EksModel,
    route: Route,
    query: URLSearchParams,
    body: Record<string, unknown>,
  ): unknown => {
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
    const scope = callerScope(req);

    let status: number;
    if (fault) {
      status = send(res, fault);
    } else if (scope instanceof EksApiError) {
      status = send(res, scope);
    } else {
      try {
        const body = parseBody(text);
        status = send(res, undefined, dispatch(modelAt(scope), route, url.searchParams, body));
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
    const elsewhere =
      !(scope instanceof EksApiError) && (scope.account !== home.account || scope.region !== home.region);
    log.push({
      operation: route.operation,
      ...(route.clusterName === undefined ? {} : { clusterName: route.clusterName }),
      ...(route.principalArn === undefined ? {} : { principalArn: route.principalArn }),
      // Only outside the default account-region, so single-account call logs read as before.
      ...(elsewhere && { account: scope.account, region: scope.region }),
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
    addCluster: (name, mode, at) => modelAt(at).addCluster(name, mode),
    seedEntry: (cluster, entry, at) => modelAt(at).seedEntry(cluster, entry),
    snapshot: (cluster, at) => modelAt(at).snapshot(cluster),
    recreatePrincipal: (arn) => model.recreatePrincipal(arn),
    createPrincipal: (arn) => model.createPrincipal(arn),
    deletePrincipal: (arn) => model.deletePrincipal(arn),
    isStale: (cluster, arn, at) => modelAt(at).isStale(cluster, arn),
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
