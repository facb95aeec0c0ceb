import { defineConfig } from 'vitest/config';

// `npm run test:reliability`: the reliability suite at full scale (5,000 requests, 500 principals, ...).
// The default config runs the same files in their short form in CI.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    // One file at a time: each one saturates the 2-core machines on its own, and a file running beside
    // another would only stretch both. No test asserts wall-clock time either way.
    fileParallelism: false,
    testTimeout: 30 * 60_000,
    hookTimeout: 30 * 60_000,
    reporters: ['default'],
    env: { RELIABILITY_SCALE: 'full' },
  },
});
