/**
 * Suite size. `npm run test:reliability` runs the full form; the default `vitest run` (CI) sets
 * RELIABILITY_SCALE=short, which must keep the reliability files well under two minutes on 2 cores.
 */
export const SCALE: 'full' | 'short' = process.env.RELIABILITY_SCALE === 'full' ? 'full' : 'short';

const FULL = SCALE === 'full';

export const FAULTS = FULL ? { requests: 5_000, principals: 500 } : { requests: 300, principals: 30 };

/** Hostile bodies fed through the handler, in batches of 10. */
export const BAD_INPUT_BODIES = FULL ? 5_000 : 600;

/** Random workloads (each on a fresh stack) and requests per workload. */
export const OVER_GRANT = FULL ? { workloads: 10, requests: 500 } : { workloads: 3, requests: 150 };

/** Fixed unless overridden, so a failure can be replayed: RELIABILITY_SEED=<n> npm run test:reliability. */
export const SEED = Number(process.env.RELIABILITY_SEED ?? 20_251_121);

/**
 * Generous: these are ceilings for a stuck run, never performance assertions. The short form runs inside
 * `npm test`, beside the other files and whatever else shares the 2 cores, where it can take several times
 * its time on an idle machine.
 */
export const TEST_TIMEOUT_MS = FULL ? 30 * 60_000 : 15 * 60_000;
