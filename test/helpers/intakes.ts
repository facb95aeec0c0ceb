/**
 * The intakes as deployed, wired to a harness (test/helpers/harness.ts): the role-lifecycle intake, on its own
 * or invoked by the local EventBridge as the template's rule does, and the two HTTP intakes behind a local
 * HTTP API with their signing keys in a local SSM. Each intake sends with its own identity, so the queue
 * stamps which function sent what.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import type { ServiceLogger } from '../../functions/service/grant-service.js';
import { createRoleLifecycleIntake } from '../../functions/service/role-lifecycle.js';
import { createTicketIntake, type TicketIntakeOptions } from '../../functions/service/ticket-intake.js';
import { type HttpApiServer, serveHttpApi } from '../../infra/local/http-api.js';
import { startSsm } from '../../infra/local/ssm.js';
import { localClientConfig } from '../../infra/local/stack.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { captureLogger, type Harness, type HarnessOptions, startHarness } from './harness.js';

export type RoleIntake = ReturnType<typeof createRoleLifecycleIntake>;

/** The role-lifecycle intake on the harness' queue, ledger table and audit bus, as its own identity. */
export function createRoleIntake(
  h: Harness,
  policy: GuardrailPolicy,
  logger: ServiceLogger = captureLogger(),
): RoleIntake {
  return createRoleLifecycleIntake({
    config: { requestQueueUrl: h.aws.queueUrl, ledgerTable: 'grants', auditBusName: 'audit' },
    policy,
    clients: {
      sqs: h.aws.sqsAs('roleLifecycleIntake'),
      dynamodb: h.aws.dynamodb,
      eventbridge: h.aws.eventbridgeAs('roleLifecycleIntake'),
    },
    logger,
  });
}

/**
 * A harness (local SQS, dynalite, EventBridge, EKS, the real worker) whose EventBridge invokes the role intake
 * for the events its template rule matches. Harness and intake share one policy (default: the sample file).
 */
export async function startHarnessWithRoleIntake(
  opts: HarnessOptions = {},
): Promise<{ h: Harness; roleIntake: RoleIntake }> {
  const policy = opts.policy ?? (await loadPolicyFile(EXAMPLE_POLICY_PATH));
  // The harness starts the bus before the intake can exist (the intake needs the harness' clients).
  let intake: RoleIntake | undefined;
  const h = await startHarness({
    ...opts,
    policy,
    localAws: {
      ...opts.localAws,
      eventTargets: {
        ...opts.localAws?.eventTargets,
        roleLifecycleIntake: (event) => (intake ? intake(event) : Promise.reject(new Error('not ready'))),
      },
    },
  });
  intake = createRoleIntake(h, policy);
  return { h, roleIntake: intake };
}

export interface HttpIntakeOptions {
  policy: GuardrailPolicy;
  /** The signing keys of /tickets and /break-glass, as their SSM parameters hold them. */
  ticketSecret: string;
  breakGlassSecret: string;
  /** The `jira` payload format on /tickets (absent: /tickets takes v1 bodies only). */
  jira?: TicketIntakeOptions['jira'];
  /** Both intakes log here: their `intake decision` lines are the audit trail of refusals at the HTTP edge. */
  logger: ServiceLogger;
}

const TICKET_PARAM = '/intakes/ticket';
const BREAK_GLASS_PARAM = '/intakes/break-glass';

/**
 * The ticket and break-glass intakes as two functions, each with its own route, key and identity, behind one
 * local HTTP API; `close` also stops their SSM.
 */
export async function serveHttpIntakes(h: Harness, opts: HttpIntakeOptions): Promise<HttpApiServer> {
  const ssm = await startSsm({
    parameters: { [TICKET_PARAM]: opts.ticketSecret, [BREAK_GLASS_PARAM]: opts.breakGlassSecret },
  });
  const ssmClient = new SSMClient(localClientConfig(ssm.endpoint));
  const intake = (route: '/tickets' | '/break-glass', actor: 'ticketIntake' | 'breakGlassIntake') =>
    createTicketIntake({
      config: {
        routes: [route],
        requestQueueUrl: h.aws.queueUrl,
        // One worker drains both routes here; the break-glass queue's isolation is the template's row.
        breakGlassQueueUrl: h.aws.queueUrl,
        ticketSecretParam: TICKET_PARAM,
        breakGlassSecretParam: BREAK_GLASS_PARAM,
        ledgerTable: 'grants',
        secretMaxAgeSeconds: 300,
        replayWindowSeconds: 600,
      },
      policy: opts.policy,
      ...(route === '/tickets' && opts.jira && { jira: opts.jira }),
      clients: { sqs: h.aws.sqsAs(actor), dynamodb: h.aws.dynamodb, ssm: ssmClient },
      logger: opts.logger,
    });
  const tickets = intake('/tickets', 'ticketIntake');
  const breakGlass = intake('/break-glass', 'breakGlassIntake');
  const api = await serveHttpApi((event) => (event.rawPath === '/break-glass' ? breakGlass : tickets)(event));
  return {
    endpoint: api.endpoint,
    close: async () => {
      await api.close();
      ssmClient.destroy();
      await ssm.close();
    },
  };
}
