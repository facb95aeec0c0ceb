import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/reliability/**/*.test.ts'],
    // Integration tests start loopback servers; keep parallelism modest on the 2-core machines.
    maxWorkers: 2,
    // Ceilings for a stuck run, not performance limits: with other work on the 2 cores, a test that waits
    // for a few retried messages can take well over a minute.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'reports/vitest.json' },
    env: { RELIABILITY_SCALE: process.env.RELIABILITY_SCALE ?? 'short' },
  },
});
