/**
 * A loopback STS with AssumeRole only, so the worker's real @aws-sdk/client-sts and its per-account
 * target roles (issue 13) run unchanged in local mode.
 *
 * Wire format: the AWS query protocol, as botocore's model of STS declares it
 * (botocore/data/sts/2011-06-15/service-2.json: `"protocol":"query"`, `"apiVersion":"2011-06-15"`,
 * `"xmlNamespace":"https://sts.amazonaws.com/doc/2011-06-15/"`, AssumeRole is POST / with output
 * `"resultWrapper":"AssumeRoleResult"`): a form-encoded body `Action=AssumeRole&Version=2011-06-15&
 * RoleArn=…&RoleSessionName=…[&DurationSeconds=…]`, answered with
 * `<AssumeRoleResponse><AssumeRoleResult><Credentials>…</Credentials><AssumedRoleUser>…` and errors as
 * `<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…`.
 * Limits from the STS API reference (AssumeRole): RoleSessionName 2-64 of `[\w+=,.@-]`,
 * DurationSeconds 900-43200 (default 3600); a role that does not exist, or whose trust policy does not
 * name the caller, is `AccessDenied` (403) "User: <caller> is not authorized to perform: sts:AssumeRole
 * on resource: <role>" — STS does not tell a missing role from an untrusting one.
 *
 * Local accounts exist only as roles created here (`createRole`). The issued access keys start with
 * `ASIA` as STS's temporary keys do; `sessionOf` tells the EKS emulator which account a caller acts in.
 * A session dies with its role: IAM authorizes a role session by the role's unique id, so deleting the
 * role (or deleting and recreating it under the same name) leaves earlier sessions with no permissions.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './http.js';

const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;

export interface StsSession {
  accessKeyId: string;
  /** The account the role, hence the session, belongs to. */
  account: string;
  roleArn: string;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>` */
  assumedRoleArn: string;
  expiresAt: number;
}

export interface RoleOptions {
  /**
   * Access key ids the role's trust policy names (the worker roles' local keys); absent: any caller
   * with a plain local key. A caller not named is denied, as for a missing role.
   */
  trustedAccessKeys?: readonly string[];
}

export interface StsCall {
  action: string;
  roleArn?: string;
  callerAccessKeyId?: string;
  status: number;
}

export interface StsEmulator {
  endpoint: string;
  createRole(roleArn: string, options?: RoleOptions): void;
  deleteRole(roleArn: string): void;
  /** The live session an access key belongs to; undefined for plain keys and dead sessions. */
  sessionOf(accessKeyId: string): StsSession | undefined;
  /** True when the key was issued here (even if its session has since died). */
  issued(accessKeyId: string): boolean;
  calls(): StsCall[];
  close(): Promise<void>;
}

interface Role {
  arn: string;
  /** A new id per create: sessions are bound to it, not to the name. */
  id: string;
  trusted?: ReadonlySet<string>;
}

interface Issued extends StsSession {
  roleId: string;
}

class StsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StsOptions {
  port?: number;
  /** The caller ARN quoted in AccessDenied messages, per plain access key (default: a local user). */
  callerArn?: (accessKeyId: string) => string;
  now?: () => number;
}

export async function startSts(opts: StsOptions = {}): Promise<StsEmulator> {
  const now = opts.now ?? Date.now;
  const roles = new Map<string, Role>();
  const sessions = new Map<string, Issued>();
  const log: StsCall[] = [];

  const callerName = (key: string | undefined) => {
    const session = key ? sessions.get(key) : undefined;
    if (session) return session.assumedRoleArn;
    return opts.callerArn?.(key ?? '') ?? `arn:aws:iam::000000000000:user/${key ?? 'anonymous'}`;
  };

  const assumeRole = (form: URLSearchParams, caller: string | undefined): string => {
    const roleArn = form.get('RoleArn') ?? '';
    const sessionName = form.get('RoleSessionName') ?? '';
    const duration = Number(form.get('DurationSeconds') ?? '3600');
    if (!ROLE_ARN.test(roleArn)) {
      throw new StsError(400, 'ValidationError', `${roleArn} is invalid`);
    }
    if (!SESSION_NAME.test(sessionName)) {
      throw new StsError(
        400,
        'ValidationError',
        "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
      );
    }
    if (!Number.isInteger(duration) || duration < 900 || duration > 43_200) {
      throw new StsError(
        400,
        'ValidationError',
        `1 validation error detected: Value '${form.get('DurationSeconds')}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200`,
      );
    }
    const role = roles.get(roleArn);
    if (!role || (role.trusted && !role.trusted.has(caller ?? ''))) {
      throw new StsError(
        403,
        'AccessDenied',
        `User: ${callerName(caller)} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    const [, account = '', roleName = ''] = ROLE_ARN.exec(roleArn) ?? [];
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const session: Issued = {
      accessKeyId,
      account,
      roleArn,
      roleId: role.id,
      assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}`,
      expiresAt: now() + duration * 1000,
    };
    sessions.set(accessKeyId, session);
    const secret = randomBytes(20).toString('base64');
    const token = randomBytes(32).toString('base64');
    return (
      `<AssumeRoleResponse xmlns="${XMLNS}"><AssumeRoleResult>` +
      `<AssumedRoleUser><AssumedRoleId>${role.id}:${xml(sessionName)}</AssumedRoleId>` +
      `<Arn>${xml(session.assumedRoleArn)}</Arn></AssumedRoleUser>` +
      `<Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${secret}</SecretAccessKey>` +
      `<SessionToken>${token}</SessionToken>` +
      // ISO-8601 in UTC, as STS writes it (e.g. 2019-11-09T13:34:41Z).
      `<Expiration>${new Date(session.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>` +
      `</Credentials></AssumeRoleResult>` +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const caller = accessKeyOf(req.headers.authorization);
    let action = '';
    let roleArn: string | undefined;
    let status = 200;
    let body: string;
    try {
      const form = new URLSearchParams(await readBody(req, 64 * 1024));
      action = form.get('Action') ?? '';
      roleArn = form.get('RoleArn') ?? undefined;
      if (req.method !== 'POST') throw new StsError(400, 'InvalidAction', 'STS takes POST /');
      if (action !== 'AssumeRole') {
        throw new StsError(400, 'InvalidAction', `Could not find operation ${action} for version 2011-06-15`);
      }
      body = assumeRole(form, caller);
    } catch (err) {
      const e =
        err instanceof StsError ? err : new StsError(500, 'InternalFailure', `Emulator bug: ${String(err)}`);
      status = e.status;
      body =
        `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${status < 500 ? 'Sender' : 'Receiver'}</Type>` +
        `<Code>${e.code}</Code><Message>${xml(e.message)}</Message></Error>` +
        `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
    }
    log.push({
      action,
      ...(roleArn !== undefined && { roleArn }),
      ...(caller !== undefined && { callerAccessKeyId: caller }),
      status,
    });
    res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  const endpoint = await listenLoopback(server, opts.port);
  return {
    endpoint,
    createRole(arn, options = {}) {
      if (!ROLE_ARN.test(arn)) throw new Error(`createRole: not an IAM role ARN: ${arn}`);
      roles.set(arn, {
        arn,
        id: `AROA${randomBytes(8).toString('hex').toUpperCase()}`,
        ...(options.trustedAccessKeys && { trusted: new Set(options.trustedAccessKeys) }),
      });
    },
    deleteRole(arn) {
      roles.delete(arn);
    },
    sessionOf(accessKeyId) {
      const s = sessions.get(accessKeyId);
      if (!s || s.expiresAt <= now() || roles.get(s.roleArn)?.id !== s.roleId) return undefined;
      const { roleId: _roleId, ...session } = s;
      return session;
    },
    issued: (accessKeyId) => sessions.has(accessKeyId),
    calls: () => log.map((c) => ({ ...c })),
    close: () => closeServer(server),
  };
}

/** The access key id of a SigV4 `Authorization` header (`… Credential=<key>/<date>/<region>/…`). */
export function accessKeyOf(authorization: string | undefined): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
}

/** The region a SigV4 `Authorization` header was signed for. */
export function signedRegionOf(authorization: string | undefined): string | undefined {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(authorization ?? '')?.[1];
}

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
