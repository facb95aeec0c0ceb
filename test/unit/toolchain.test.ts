import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

test('runs on the Lambda runtime major, Node.js 24', () => {
  // Every function deploys on nodejs24.x (serverless.yml); the tests, scripts and bench run on the
  // same major, installed by `npm ci` from the registry's `node` package.
  const major = Number(process.versions.node.split('.')[0]);
  expect(major).toBe(24);
});

test('installs Node.js 24 and its types through the project files', () => {
  expect(pkg.devDependencies.node).toMatch(/^24\./);
  expect(pkg.devDependencies['@types/node']).toMatch(/^24\./);
  expect(pkg.engines.node).toBe('>=24');
});
