/**
 * The reconciler's shipped defaults, read through its own config loader (functions/config.ts) so the
 * bench measures what deploys: placeholders for the settings that have no default.
 */
import { loadReconcilerConfig, type ReconcilerConfig } from '../../functions/config.js';
import { REGION } from '../../test/helpers/harness.js';

export function shippedReconcilerConfig(): ReconcilerConfig {
  return loadReconcilerConfig({
    AWS_REGION: REGION,
    REQUEST_QUEUE_URL: 'https://sqs.invalid/requests',
    RECONCILE_QUEUE_URL: 'https://sqs.invalid/reconcile',
    RECONCILE_TASK_SENDERS: '["AROABENCHRECONCILER"]',
    LEDGER_TABLE: 'grants',
    AUDIT_BUS_NAME: 'audit',
    POLICY_PATH: 'policy.json',
  });
}
