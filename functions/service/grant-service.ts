/**
 * One queue message → one converged principal → one terminal audit record.
 *
 * Grant, revoke, expiry and reconcile are the same operation with different ledger
 * input: update the ledger, compute desired = baseline ∪ active grants, read EKS,
 * apply the minimal diff. A replayed, duplicated or reordered message therefore
 * converges to the same state.
 */
import { type EksAdapter, entryCreatedAt } from '../adapters/eks.js';
import type { LedgerAdapter } from '../adapters/ledger.js';
import {
  type AuditChange,
  type AuditOutcome,
  type AuditRecord,
  auditHash,
  buildAuditRecord,
  describeChange,
  messageAttemptKey,
} from '../core/audit.js';
import { type ClusterDirectory, type ClusterTarget, clusterArn } from '../core/cluster-target.js';
import { computeDesired, desiredState } from '../core/desired.js';
import { type EksLimitReasonCode, MAX_NAMESPACES_PER_SCOPE, scopeOverflow } from '../core/eks-limits.js';
import { AppError, PermanentError, RejectionError, TransientError } from '../core/errors.js';
import {
  type EndedBy,
  endGrant,
  type Grant,
  type PrincipalRecord,
  REPORTED_MESSAGES_KEPT,
} from '../core/ledger.js';
import {
  alreadyReported,
  attributeChanges,
  type LedgerChange,
  planLedgerChange,
} from '../core/ledger-change.js';
import { type DroppedAccess, type EksChange, planChanges, planRecreate } from '../core/plan.js';
import { decide, type GuardrailPolicy } from '../core/policy.js';
import { type PartialIdentifiers, parseAccessRequest } from '../core/request.js';
import { judgeSender, type SenderBinding } from '../core/senders.js';
import { ACTIONS, type AccessRequest, type AccessState, type Reason, SOURCES } from '../core/types.js';

export interface ServiceLogger {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface ServiceMetrics {
  count(name: string, value?: number): void;
}

export interface AuditSink {
  publish(record: AuditRecord): Promise<void>;
}

export interface DeadLetterSink {
  /** Hands a message to the dead-letter queue now, with the sender this worker verified for it. */
  deadLetter(message: InboundMessage, reason: Reason, verifiedSender: string): Promise<void>;
}

export interface ExpiryScheduler {
  /**
   * Makes sure an expiry request for this grant will arrive at `grant.expiresAt`. Idempotent.
   * `clusterKey` (core/cluster-target.ts) names the schedule and its message group; default: the alias.
   */
  scheduleExpiry(request: AccessRequest, grant: Grant, clusterKey?: string): Promise<void>;
  /** Removes the schedule of an ended grant; absent schedules are fine. */
  cancelExpiry(grantId: string, clusterKey?: string): Promise<void>;
  /** Moves the schedule of a grant whose end moved (an extension) to `grant.expiresAt`; creates it if absent. */
  rescheduleExpiry(request: AccessRequest, grant: Grant, clusterKey?: string): Promise<void>;
}

export interface GrantServiceDeps {
  eks: EksAdapter;
  ledger: LedgerAdapter;
  audit: AuditSink;
  deadLetters: DeadLetterSink;
  policy: GuardrailPolicy;
  /** Sender binding (C1): checked before anything else, so an untrusted message costs no EKS or ledger call. */
  senders: SenderBinding;
  /** The policy's clusters resolved against the deployment: where each alias is, and its keys. */
  clusters: ClusterDirectory;
  scheduler?: ExpiryScheduler;
  maxReceiveCount: number;
  logger: ServiceLogger;
  metrics?: ServiceMetrics;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Re-read-and-replan rounds inside one invocation for transient faults the SDK does not retry. */
  convergeRounds?: number;
  /**
   * How long after a grant is first recorded EKS may still call its principal invalid (IAM
   * propagation) before the grant fails with PRINCIPAL_NOT_IN_IAM. Default 120 s: terraform-provider-aws
   * retries the same answer for its 2-minute propagationTimeout.
   */
  iamPropagationWindowMs?: number;
}

const DEFAULT_IAM_PROPAGATION_WINDOW_MS = 120_000;

export interface InboundMessage {
  messageId: string;
  body: string;
  /** 1 on first delivery. */
  receiveCount: number;
  /** Epoch ms by which this message's work must be finished (invocation deadline minus a margin). */
  deadline: number;
  /** The FIFO message group, kept when the message is dead-lettered. */
  groupId?: string;
  /** The SenderId SQS stamped on the record (the event source mapping delivers it in `attributes`). */
  senderId?: string;
  /** The `verifiedSender` message attribute: trusted only on a dead letter this worker wrote itself. */
  verifiedSenderAttribute?: string;
}

export type MessageResult =
  | { status: 'done'; audit: AuditRecord }
  /** A redelivery of a message whose terminal record is out (`alreadyReported`): acknowledged, nothing published. */
  | { status: 'duplicate' }
  /** Return the message to the queue; the SDK and in-invocation retries are spent. */
  | { status: 'retry'; error: AppError };

const TERMINAL_OUTCOME: Record<string, AuditOutcome> = {
  grant: 'granted',
  revoke: 'revoked',
  expiry: 'expired',
  reconcile: 'repaired',
  extend: 'extended',
};

/** Where a request acts: its resolved cluster, and that cluster's ledger / group / schedule key. */
interface Place {
  target: ClusterTarget;
  key: string;
}

interface ConvergeResult {
  outcome: AuditOutcome;
  /** Grants this message changed; marked once its terminal record is published. */
  toMarkReported: Grant[];
  grantId?: string;
  expiresAt?: string;
  severity?: 'high';
  endedBy?: EndedBy;
  dropped?: DroppedAccess;
  previousExpiresAt?: string;
}

export class GrantService {
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly deps: GrantServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = deps.random ?? Math.random;
  }

  async handle(message: InboundMessage): Promise<MessageResult> {
    const parsed = parseAccessRequest(message.body);
    const verdict = judgeSender(this.deps.senders, {
      senderId: message.senderId,
      verifiedSender: message.verifiedSenderAttribute,
      source: parsed.ok ? parsed.request.source : parsed.partial.source,
    });
    if (!verdict.trusted) {
      // Before any ledger or EKS call. Acknowledged, not retried or dead-lettered: another delivery would
      // carry the same SenderId, and a dead letter would only offer the forgery to a redrive.
      this.deps.metrics?.count('RequestsRejected');
      this.deps.metrics?.count('UntrustedSenders');
      const ids = parsed.ok ? parsed.request : auditableIdentifiers(parsed.partial);
      this.deps.logger.warn('message from an untrusted sender rejected', {
        messageId: message.messageId,
        senderId: message.senderId,
        reason: verdict.reason.message,
      });
      return this.finish(message, {
        requestId: ids.requestId ?? `untrusted:${message.messageId}`,
        outcome: 'rejected',
        request: ids,
        reason: verdict.reason,
        severity: 'high',
      });
    }
    const verifiedSender = verdict.sender;
    if (!parsed.ok) {
      this.deps.metrics?.count('RequestsRejected');
      return this.finish(message, {
        requestId: parsed.partial.requestId ?? `invalid:${message.messageId}`,
        outcome: 'rejected',
        request: auditableIdentifiers(parsed.partial),
        reason: parsed.reason,
      });
    }
    const request = parsed.request;
    const decision = decide(this.deps.policy, request, this.now());
    if (!decision.allowed) {
      this.deps.metrics?.count('RequestsRejected');
      return this.finish(message, {
        requestId: request.requestId,
        outcome: 'rejected',
        request,
        reason: decision.reason,
      });
    }
    const applied: AuditChange[] = [];
    const place = this.placeOf(request);
    try {
      const converged = await this.converge(request, place, decision.expiresAt, message, applied);
      if (converged === 'already-reported') {
        this.deps.metrics?.count('RedeliveriesAcknowledged');
        this.deps.logger.info('redelivery of a message whose outcome is already reported; acknowledged', {
          requestId: request.requestId,
          messageId: message.messageId,
          attempt: message.receiveCount,
        });
        return { status: 'duplicate' };
      }
      const { toMarkReported, ...result } = converged;
      const done = await this.finish(message, {
        requestId: request.requestId,
        request,
        ...result,
        changes: applied,
      });
      await this.markReported(request, place, toMarkReported, message.messageId);
      return done;
    } catch (err) {
      return this.onError(err, request, place, message, applied, verifiedSender);
    }
  }

  /** `decide` has allowed the request, so its alias is in the policy. */
  private placeOf(request: AccessRequest): Place {
    const target = this.deps.clusters.resolve(request.clusterName);
    if (!target) throw new Error(`cluster ${request.clusterName} passed the policy but is not in it`);
    return { target, key: this.deps.clusters.key(target) };
  }

  private async converge(
    request: AccessRequest,
    place: Place,
    expiresAt: string | undefined,
    message: InboundMessage,
    applied: AuditChange[],
  ): Promise<ConvergeResult | 'already-reported'> {
    const rounds = this.deps.convergeRounds ?? 3;
    for (let round = 1; ; round++) {
      try {
        return await this.convergeOnce(request, place, expiresAt, message, applied);
      } catch (err) {
        const retryable = err instanceof TransientError;
        const backoff = Math.min(2000, 100 * 2 ** round) * (0.5 + this.random() / 2);
        if (!retryable || round >= rounds || Date.now() + backoff >= message.deadline) throw err;
        this.deps.logger.warn('transient fault; re-reading and re-planning', {
          requestId: request.requestId,
          round,
          code: err.code,
          error: err.message,
        });
        await this.sleep(backoff);
      }
    }
  }

  private async convergeOnce(
    request: AccessRequest,
    place: Place,
    expiresAt: string | undefined,
    message: InboundMessage,
    applied: AuditChange[],
  ): Promise<ConvergeResult | 'already-reported'> {
    const { principalArn } = request;
    const { target, key } = place;
    const now = this.now();
    const signal = AbortSignal.timeout(Math.max(1, message.deadline - Date.now()));
    let record = await this.deps.ledger.load(key, principalArn);
    // SQS hands back a message whose invocation was lost after the handler finished it. Its change is applied
    // and its record out: leave EKS alone and publish nothing (on the first round only: a later round's load
    // sees what this attempt itself reported, which cannot be, since it reports after converging).
    if (applied.length === 0 && alreadyReported(record, message.messageId)) return 'already-reported';
    const current = await this.deps.eks.readCurrent(target, principalArn, signal);
    if (unseenOwnCreate(current, applied)) {
      // EKS is eventually consistent: an entry this message created can read as absent for a while.
      // Planning from that read would revoke nothing or create twice; read again instead.
      throw new TransientError(
        'EVENTUAL_CONSISTENCY',
        'the access entry this request created is not visible yet',
      );
    }

    const ledgerChange = await this.updateLedger(
      request,
      key,
      expiresAt,
      record,
      current,
      now,
      message.messageId,
    );
    const kind =
      request.source === 'expiry' || request.source === 'reconcile' ? request.source : request.action;
    const pending = attributeChanges(record, message.messageId, request.requestId);
    // Another message's ledger change is pending and this one has none of its own (a replay whose batch
    // was lost together with a later message's attempt, or a no-op request): that message applies and
    // reports its change; converging it here would put its EKS calls in our record, and none in its.
    // The reconciler is the safety net and always converges.
    const defer =
      kind !== 'reconcile' && !ledgerChange.recreate && pending.own.length === 0 && pending.others.length > 0;
    if (defer) {
      this.deps.logger.info('a ledger change of another message is pending; leaving EKS to that message', {
        requestId: request.requestId,
        pending: pending.others.map((g) => `${g.grantId} by ${g.lastRequestId ?? g.lastMessageId}`),
      });
    }
    // CreateRole succeeded for this ARN, so any entry that exists belongs to a deleted
    // role. Recreate once, when the grant is first recorded; replays converge normally.
    const desired = computeDesired(record, now);
    // A retry of the recreating message must not delete the entry an earlier attempt already created
    // for the new role (under EKS's consistency windows it would delete and recreate forever).
    const recreate =
      ledgerChange.recreate && !createdSince(current, ledgerChange.grant)
        ? planRecreate(current, desired)
        : undefined;
    const plan = defer ? { changes: [] } : (recreate ?? planChanges(current, desired));
    await this.applyAll(request, target, plan.changes, applied, signal).catch((err: unknown) => {
      throw this.boundIamPropagation(err, request, ledgerChange.grant, now);
    });
    if (plan.changes.at(-1)?.op === 'CreateAccessEntry') {
      // Nothing after the create proved the entry visible (an Associate would have). Until it is, the
      // next message could read "no entry" and, say, revoke nothing: report only once EKS shows it.
      const seen = await this.deps.eks.readCurrent(target, principalArn, signal);
      if (!seen.exists) {
        throw new TransientError(
          'EVENTUAL_CONSISTENCY',
          'the access entry this request created is not visible yet',
        );
      }
    }

    // The break-glass worker has its own FIFO queue, so it can work on this principal at
    // the same time as the standard worker. If the ledger moved while we applied, our
    // plan may have undone the other worker's change: converge again from the new ledger.
    for (let extra = 0; !defer && extra < 2; extra++) {
      const latest = await this.deps.ledger.load(key, principalArn);
      if (fingerprint(latest) === fingerprint(record)) break;
      this.deps.logger.info(
        'ledger changed while applying (another worker on this principal); converging again',
        {
          requestId: request.requestId,
        },
      );
      record = latest;
      const again = await this.deps.eks.readCurrent(target, principalArn, signal);
      const changes = planChanges(again, computeDesired(record, now)).changes;
      await this.applyAll(request, target, changes, applied, signal);
    }
    if (ledgerChange.grant?.status === 'active' && ledgerChange.grant.expiresAt && this.deps.scheduler) {
      await this.deps.scheduler.scheduleExpiry(request, ledgerChange.grant, key);
    }
    // What this message did to the ledger, in this attempt or an earlier one whose outcome was
    // never reported (a failed attempt, or a response lost after EKS applied the call).
    const mine = attributeChanges(record, message.messageId, request.requestId).own;
    const changed =
      kind === 'reconcile'
        ? applied.some((c) => c.status === 'applied')
        : kind === 'grant'
          ? mine.some((g) => addsAccess(record, g, current, now))
          : mine.length > 0;
    return {
      outcome: changed ? (TERMINAL_OUTCOME[kind] ?? 'granted') : 'unchanged',
      // Marked whatever the outcome: an unmarked change reads as pending to every later message.
      toMarkReported: mine,
      // The end of break-glass access pages as loudly as its start; so does access a recreate dropped.
      ...((ledgerChange.grant?.source === 'break-glass' || (recreate && current.exists)) && {
        severity: 'high' as const,
      }),
      ...(recreate && current.exists && { dropped: recreate.dropped }),
      ...(changed && ledgerChange.endedBy && { endedBy: ledgerChange.endedBy }),
      ...(ledgerChange.grant && { grantId: ledgerChange.grant.grantId }),
      ...(ledgerChange.grant?.expiresAt && { expiresAt: ledgerChange.grant.expiresAt }),
      ...(changed &&
        ledgerChange.extension && { previousExpiresAt: ledgerChange.extension.previousExpiresAt }),
    };
  }

  /**
   * IAM_PROPAGATION is transient only for a while, measured from when this grant was first recorded
   * (the first attempt, before any EKS write; the same for every redelivery and worker). After that,
   * the principal most likely does not exist: fail with a code that says so.
   */
  private boundIamPropagation(
    err: unknown,
    request: AccessRequest,
    grant: Grant | undefined,
    now: Date,
  ): unknown {
    if (!(err instanceof TransientError) || err.code !== 'IAM_PROPAGATION' || !grant) return err;
    const windowMs = this.deps.iamPropagationWindowMs ?? DEFAULT_IAM_PROPAGATION_WINDOW_MS;
    const waited = now.getTime() - Date.parse(grant.createdAt);
    if (waited < windowMs) return err;
    return new PermanentError(
      'PRINCIPAL_NOT_IN_IAM' satisfies EksLimitReasonCode,
      `EKS still calls ${request.principalArn} an invalid principal ${Math.round(waited / 1000)} s after ` +
        `grant ${grant.grantId} was first recorded (IAM propagation window: ${Math.round(windowMs / 1000)} s, ` +
        'IAM_PROPAGATION_WINDOW_SECONDS): the role or user does not exist or was deleted. ' +
        `Create it, then redrive the message. EKS said: ${err.message}`,
      { cause: err },
    );
  }

  /**
   * Best effort: a crash before this only means a redelivery repeats the outcome. `failed`: the record was
   * `failed` (the message is dead-lettered), so a redrive of the same request takes the change over
   * (`takeOverFailed` in core/ledger-change.ts) instead of reporting `unchanged` for what it applies.
   */
  private async markReported(
    request: AccessRequest,
    place: Place,
    grants: Grant[],
    messageId: string,
    failed = false,
  ): Promise<void> {
    for (const g of grants) {
      // The mark names the stamp it reports, which a redrive may have taken over from an older message.
      const reported = g.lastMessageId ?? messageId;
      const { failedMessageId: _previous, ...rest } = g;
      try {
        await this.deps.ledger.updateGrant(
          place.key,
          request.principalArn,
          {
            ...rest,
            reportedMessageId: reported,
            ...(failed && { failedMessageId: reported }),
            // Who reported, kept after later stamps: its redelivery publishes nothing (alreadyReported).
            reportedMessageIds: [
              ...(g.reportedMessageIds ?? []).filter((id) => id !== messageId),
              messageId,
            ].slice(-REPORTED_MESSAGES_KEPT),
            version: g.version + 1,
          },
          g.version,
        );
      } catch (err) {
        this.deps.logger.warn('could not mark a grant as reported', {
          grantId: g.grantId,
          error: (err as Error).message,
        });
      }
    }
  }

  private async applyAll(
    request: AccessRequest,
    target: ClusterTarget,
    changes: EksChange[],
    applied: AuditChange[],
    signal: AbortSignal,
  ): Promise<void> {
    for (const change of changes) {
      try {
        await this.deps.eks.apply(target, request.principalArn, change, signal);
      } catch (err) {
        applied.push(describeChange(change, 'failed'));
        throw err;
      }
      applied.push(describeChange(change, 'applied'));
    }
  }

  /**
   * Writes the ledger change core/ledger-change.ts decided, in its order, and applies it to `record`
   * (which the caller goes on to plan from). Rejections are thrown by the core before anything is written.
   */
  private async updateLedger(
    request: AccessRequest,
    clusterName: string,
    expiresAt: string | undefined,
    record: PrincipalRecord,
    current: AccessState,
    now: Date,
    messageId: string,
  ): Promise<LedgerChange> {
    const { principalArn } = request;
    const ledger = this.deps.ledger;
    const change = planLedgerChange({
      record,
      request,
      current,
      expiresAt,
      now,
      messageId,
      policy: this.deps.policy,
    });
    refuseScopeOverflow(request, record, change, now);
    for (const note of change.notes)
      this.deps.logger[note.level](note.message, { requestId: request.requestId, ...note.data });
    if (change.baseline?.kind === 'capture') {
      record.baseline = await ledger.captureBaseline(clusterName, principalArn, change.baseline.baseline);
    } else if (change.baseline?.kind === 'replace') {
      await ledger.replaceBaseline(
        clusterName,
        principalArn,
        change.baseline.baseline,
        change.baseline.expected,
      );
      record.baseline = change.baseline.baseline;
    }
    if (change.insert) {
      if (!(await ledger.insertGrant(clusterName, principalArn, change.insert))) {
        throw new TransientError(
          'LEDGER_CONFLICT',
          `grant ${change.insert.grantId} appeared concurrently; re-reading`,
        );
      }
      record.grants.push(change.insert);
    }
    for (const { next, expectedVersion } of change.updates) {
      await ledger.updateGrant(clusterName, principalArn, next, expectedVersion);
      const at = record.grants.findIndex((g) => g.grantId === next.grantId);
      if (at === -1) record.grants.push(next);
      else record.grants[at] = next;
    }
    for (const grantId of change.cancelExpiries)
      await this.deps.scheduler?.cancelExpiry(grantId, clusterName);
    // After the ledger write: a failure here retries the message, and the replayed extension moves it again.
    for (const grant of change.reschedule)
      await this.deps.scheduler?.rescheduleExpiry(request, grant, clusterName);
    return change;
  }

  private async onError(
    err: unknown,
    request: AccessRequest,
    place: Place,
    message: InboundMessage,
    applied: AuditChange[],
    verifiedSender: string,
  ): Promise<MessageResult> {
    if (err instanceof RejectionError) {
      this.deps.metrics?.count('RequestsRejected');
      const done = await this.finish(message, {
        requestId: request.requestId,
        outcome: 'rejected',
        request,
        reason: { code: err.code, message: err.message },
        changes: applied,
      });
      await this.markOwnReported(request, place, message);
      return done;
    }
    const error =
      err instanceof AppError
        ? err
        : new TransientError('UNEXPECTED', `${(err as Error)?.name}: ${(err as Error)?.message}`, {
            cause: err,
          });
    const lastAttempt = message.receiveCount >= this.deps.maxReceiveCount;
    if (error.retryable && !lastAttempt) {
      this.deps.metrics?.count('RequestsRetried');
      this.deps.logger.warn('request will be retried', {
        requestId: request.requestId,
        attempt: message.receiveCount,
        maxReceiveCount: this.deps.maxReceiveCount,
        code: error.code,
        error: error.message,
      });
      return { status: 'retry', error };
    }
    // Terminal failure: take the grant out of the desired state and undo what this
    // attempt half-applied, so nothing is left half-granted; then dead-letter the message.
    const reason: Reason = {
      code: error.code,
      message:
        lastAttempt && error.retryable
          ? `gave up after ${message.receiveCount} attempts: ${error.message}`
          : error.message,
    };
    await this.rollBack(request, place, message, applied);
    this.deps.metrics?.count('RequestsFailed');
    await this.deps.deadLetters.deadLetter(message, reason, verifiedSender);
    const done = await this.finish(message, {
      requestId: request.requestId,
      outcome: 'failed',
      request,
      reason,
      changes: applied,
    });
    // The cycle ended with its record: later messages converge what it left (a revoke that could not be
    // applied, say) instead of deferring to a message that will not come back unless redriven; a redrive
    // of this request takes the change over, since the mark says it was reported as failed.
    await this.markOwnReported(request, place, message, true);
    return done;
  }

  /** After a `rejected` or `failed` record: marks what this message stamped on the ledger as reported. */
  private async markOwnReported(
    request: AccessRequest,
    place: Place,
    message: InboundMessage,
    failed = false,
  ): Promise<void> {
    try {
      const record = await this.deps.ledger.load(place.key, request.principalArn);
      const own = attributeChanges(record, message.messageId, request.requestId).own;
      await this.markReported(request, place, own, message.messageId, failed);
    } catch (err) {
      this.deps.logger.warn('could not mark the grants of a failed request as reported', {
        requestId: request.requestId,
        error: (err as Error).message,
      });
    }
  }

  private async rollBack(
    request: AccessRequest,
    place: Place,
    message: InboundMessage,
    applied: AuditChange[],
  ): Promise<void> {
    if (request.action !== 'grant') return;
    const { principalArn } = request;
    const { target, key } = place;
    try {
      const record = await this.deps.ledger.load(key, principalArn);
      const grant = record.grants.find((g) => g.grantId === request.requestId);
      if (grant?.status !== 'active') return;
      const failed = endGrant(grant, 'failed', this.now());
      await this.deps.ledger.updateGrant(key, principalArn, failed, grant.version);
      Object.assign(grant, failed);
      // Converge even if this attempt applied nothing: an earlier attempt may have.
      const signal = AbortSignal.timeout(Math.max(1, message.deadline - Date.now()));
      let current = await this.deps.eks.readCurrent(target, principalArn, signal);
      // An entry this attempt created may not be visible yet; rolling back from that read would leave it.
      for (let i = 0; i < 4 && unseenOwnCreate(current, applied); i++) {
        await this.sleep(250 * 2 ** i);
        current = await this.deps.eks.readCurrent(target, principalArn, signal);
      }
      const plan = planChanges(current, computeDesired(record, this.now()));
      for (const change of plan.changes) {
        await this.deps.eks.apply(target, principalArn, change, signal);
        applied.push(describeChange(change, 'applied'));
      }
    } catch (err) {
      // The reconciler repairs what is left; the audit record lists what was applied.
      this.deps.logger.error('rollback after a failed grant did not complete', {
        requestId: request.requestId,
        error: (err as Error).message,
      });
    }
  }

  private async finish(
    message: InboundMessage,
    input: {
      requestId: string;
      outcome: AuditOutcome;
      request?: Partial<AccessRequest>;
      reason?: Reason;
      grantId?: string;
      expiresAt?: string;
      changes?: AuditChange[];
      severity?: 'high';
      endedBy?: EndedBy;
      dropped?: DroppedAccess;
      previousExpiresAt?: string;
    },
  ): Promise<MessageResult> {
    // Every record of a cluster the policy names says where it is, whatever the outcome.
    const target = input.request?.clusterName
      ? this.deps.clusters.resolve(input.request.clusterName)
      : undefined;
    const record = buildAuditRecord(
      {
        ...input,
        ...(target && { clusterArn: clusterArn(target) }),
        attempt: message.receiveCount,
        at: this.now(),
        // The CLI finds the record of the message it sent by this key (isRecordOfMessage in core/audit.ts).
        attemptKey: messageAttemptKey(message.messageId, message.receiveCount),
        ...(message.senderId !== undefined && { senderId: message.senderId }),
      },
      auditHash,
    );
    try {
      await this.deps.audit.publish(record);
    } catch (err) {
      // The record is in the log already; re-running the request would only produce a
      // misleading `unchanged` record, so the message is still acknowledged.
      this.deps.metrics?.count('AuditPublishFailed');
      this.deps.logger.error('audit publish failed', {
        requestId: input.requestId,
        error: (err as Error).message,
      });
    }
    this.deps.metrics?.count(`Outcome_${input.outcome}`);
    return { status: 'done', audit: record };
  }
}

/**
 * A grant whose merged scope (baseline ∪ active grants, as the ledger will hold them after `change`)
 * would name more namespaces than an access scope may hold is refused before anything is written to
 * the ledger or EKS, so nothing is half-applied.
 */
function refuseScopeOverflow(
  request: AccessRequest,
  record: PrincipalRecord,
  change: LedgerChange,
  now: Date,
): void {
  if (request.action !== 'grant' || (!change.insert && change.updates.length === 0)) return;
  const overflow = scopeOverflow(record, change, now);
  if (!overflow) return;
  throw new RejectionError(
    'SCOPE_TOO_MANY_NAMESPACES' satisfies EksLimitReasonCode,
    `merged with the access ${request.principalArn} already has on ${request.clusterName}, the scope of ` +
      `${overflow.policyArn} would name ${overflow.namespaces} namespaces; an access scope holds at most ` +
      `${MAX_NAMESPACES_PER_SCOPE}. Use a wildcard namespace (e.g. "team-*") or a cluster scope, or revoke ` +
      'other grants of this policy first; nothing was applied',
  );
}

/**
 * True when EKS created the entry after `grant` was first recorded, i.e. after the role was (re)created:
 * it is the new role's entry, made by an earlier attempt of this message. The grant is recorded before
 * any EKS write, so our own create is always later; the stale entry predates the CreateRole. (Clocks:
 * EKS's and Lambda's are both synchronised; a skew larger than the ~100 ms between recording the grant
 * and creating the entry would make us recreate once more per attempt.)
 */
function createdSince(current: AccessState, grant: Grant | undefined): boolean {
  const createdAt = current.exists ? entryCreatedAt(current) : undefined;
  return createdAt !== undefined && grant !== undefined && createdAt >= Date.parse(grant.createdAt);
}

/** True when the read says "no entry" but the last entry-level write this message made was a create. */
function unseenOwnCreate(current: AccessState, applied: AuditChange[]): boolean {
  if (current.exists) return false;
  const last = applied
    .filter((c) => c.status === 'applied')
    .filter((c) => c.operation === 'CreateAccessEntry' || c.operation === 'DeleteAccessEntry')
    .at(-1);
  return last?.operation === 'CreateAccessEntry';
}

/** What a converge depends on: the baseline and each grant's version and status. */
function fingerprint(record: PrincipalRecord): string {
  const grants = [...record.grants]
    .sort((a, b) => a.grantId.localeCompare(b.grantId))
    .map((g) => `${g.grantId}@${g.version}:${g.status}`);
  return JSON.stringify([record.baseline ?? null, grants]);
}

/**
 * What an invalid request may contribute to its audit record: identifiers as sent, but a
 * source or action only when valid, so the record still matches the published schema.
 */
function auditableIdentifiers(partial: PartialIdentifiers): Partial<AccessRequest> {
  const { source, action, ...ids } = partial;
  return {
    ...ids,
    ...(SOURCES.includes(source as never) && { source: source as AccessRequest['source'] }),
    ...(ACTIONS.includes(action as never) && { action: action as AccessRequest['action'] }),
  };
}

/**
 * Whether a grant gives access that baseline and the other active grants do not: a grant
 * of access the principal already has changes nothing and is audited `unchanged`.
 */
function addsAccess(record: PrincipalRecord, grant: Grant, current: AccessState, now: Date): boolean {
  const without: PrincipalRecord = {
    ...record,
    grants: record.grants.map((g) =>
      g.grantId === grant.grantId ? { ...g, status: 'revoked' as const } : g,
    ),
  };
  const access = (r: PrincipalRecord) => {
    const s = desiredState(current, computeDesired(r, now));
    return JSON.stringify([s.exists, s.kubernetesGroups, s.policies]);
  };
  return access(record) !== access(without);
}
