import { expect, test } from 'vitest';

test('runs on the Lambda runtime major (Node.js 22 or newer)', () => {
  const major = Number(process.versions.node.split('.')[0]);
  expect(major).toBeGreaterThanOrEqual(22);
});
