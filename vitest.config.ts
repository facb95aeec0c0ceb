import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/reliability/**/*.test.ts'],
    // Integration tests start loopback servers; keep parallelism modest on the 2-core machines.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'reports/vitest.json' },
    env: { RELIABILITY_SCALE: process.env.RELIABILITY_SCALE ?? 'short' },
  },
});
