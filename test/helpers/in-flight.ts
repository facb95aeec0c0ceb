/** Counts how many calls an SDK client has in flight at once (bounded-concurrency checks). */
import type { EKSClient } from '@aws-sdk/client-eks';

export function countInFlight(client: EKSClient): { max(): number } {
  let inFlight = 0;
  let max = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      inFlight++;
      max = Math.max(max, inFlight);
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    },
    { step: 'initialize', name: 'countInFlight' },
  );
  return { max: () => max };
}
