/**
 * The reconciler's EKS call budget on an SDK client: every HTTP attempt, retries included, first takes
 * a token from the account-region's bucket (core/token-bucket.ts). At the `deserialize` step because the
 * SDK's retry middleware sits earlier (finalizeRequest) and calls the rest of the stack once per attempt:
 * a throttled call retried three times costs four tokens, as it costs EKS four requests.
 */
import type { EKSClient } from '@aws-sdk/client-eks';

export interface CallBudget {
  take(): Promise<void>;
}

export function withCallBudget(client: EKSClient, budget: CallBudget): EKSClient {
  // Idempotent: a client kept across a session renewal (adapters/target-clients.ts cool-down) is
  // wrapped again, and a second middleware of the same name would make every call throw.
  client.middlewareStack.remove('reconcileCallBudget');
  client.middlewareStack.add(
    (next) => async (args) => {
      await budget.take();
      return next(args);
    },
    { step: 'deserialize', name: 'reconcileCallBudget', priority: 'low' },
  );
  return client;
}
