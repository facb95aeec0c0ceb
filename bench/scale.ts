/**
 * Scale: reconcile one cluster with 3,000 access entries and 100 clusters' worth of ledger rows; report
 * time and memory. PENDING: the reconciler is being written. This module is the extension point: when
 * functions/reconciler.ts lands, seed the emulator (seedEntry × 3,000) and the ledger, run one reconcile
 * pass, and return its wall time and peak RSS (and the time as a ratio to a plain ListAccessEntries walk of
 * the same cluster, measured in the same run, so the figure survives a noisy machine).
 */
import type { SummaryRow } from './lib/report.js';

export interface ScaleResult {
  status: 'pending';
  note: string;
}

export async function scale(opts: { log: (s: string) => void }): Promise<ScaleResult> {
  opts.log('scale: pending (the reconciler is not written yet)');
  return { status: 'pending', note: 'reconcile 3,000 entries: waiting for the reconciler' };
}

export function scaleSummary(result: ScaleResult): SummaryRow[] {
  return [
    {
      benchmark: 'scale',
      case: 'reconcile 3,000 entries',
      figure: result.status,
      target: 'time and memory',
      status: 'pending',
    },
  ];
}
