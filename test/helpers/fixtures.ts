import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessRequest } from '../../functions/core/types.js';

const EVENTS = join(import.meta.dirname, '../../events');

/** A sample request from events/requests/, optionally with fields replaced. */
export function fixture(name: string, over: Partial<AccessRequest> = {}): AccessRequest {
  const base = JSON.parse(readFileSync(join(EVENTS, 'requests', `${name}.json`), 'utf8')) as AccessRequest;
  return { ...base, ...over };
}

export function fixtureBody(name: string): string {
  return readFileSync(join(EVENTS, 'requests', `${name}.json`), 'utf8');
}

export const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
export const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
export const ADMIN = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';
export const ns = (...namespaces: string[]) => ({ type: 'namespace' as const, namespaces });
