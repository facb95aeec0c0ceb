import { describe, expect, test } from 'vitest';
import {
  ACTORS,
  accessKeyIdOf,
  identityOfKey,
  LOCAL_IDENTITIES,
  localSenderRouting,
  senderIdForKey,
} from '../../infra/local/identities.js';

describe('local identities (C3)', () => {
  test('every actor has its own key, role id and SenderId', () => {
    for (const field of ['accessKeyId', 'roleId', 'senderId', 'roleArn'] as const) {
      const values = ACTORS.map((a) => LOCAL_IDENTITIES[a][field]);
      expect(new Set(values).size, field).toBe(ACTORS.length);
    }
    for (const actor of ACTORS) {
      const id = LOCAL_IDENTITIES[actor];
      expect(id.roleId).toMatch(/^AROA[A-Z0-9]{17}$/);
      expect(id.senderId).toBe(`${id.roleId}:${id.session}`);
      expect(identityOfKey(id.accessKeyId)?.actor).toBe(actor);
    }
  });

  test('an unknown key is always the same stranger, never a local identity', () => {
    const stranger = senderIdForKey('AKIASOMEONEELSE');
    expect(stranger).toMatch(/^AIDA[A-Z0-9]{17}$/);
    expect(senderIdForKey('AKIASOMEONEELSE')).toBe(stranger);
    expect(senderIdForKey(undefined)).not.toBe(stranger);
    expect(ACTORS.map((a) => LOCAL_IDENTITIES[a].senderId)).not.toContain(stranger);
  });

  test('reads the caller’s key from a SigV4 Authorization header', () => {
    expect(
      accessKeyIdOf(
        'AWS4-HMAC-SHA256 Credential=AKIAOPERATOR00000000/20261202/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=ab',
      ),
    ).toBe('AKIAOPERATOR00000000');
    expect(accessKeyIdOf(undefined)).toBeUndefined();
    expect(accessKeyIdOf('Basic abc')).toBeUndefined();
  });

  test('TRUSTED_SENDERS in local mode is the template’s routing with local role ids', () => {
    expect(localSenderRouting('grantWorker').senders).toEqual({
      ticket: ['ticketIntake'],
      'iam-role-created': ['roleLifecycleIntake'],
      expiry: ['expiryScheduler', 'reconciler'],
      reconcile: ['reconciler'],
      operator: ['operator'],
    });
    expect(localSenderRouting('breakGlassWorker').senders).toEqual({
      'break-glass': ['breakGlassIntake'],
      expiry: ['breakGlassScheduler'],
      operator: ['operator'],
    });
    expect(localSenderRouting('grantWorker').binding.deadLetterSenders).toEqual([
      LOCAL_IDENTITIES.grantWorker.roleId,
    ]);
    expect(localSenderRouting('breakGlassWorker').binding.deadLetterSenders).toEqual([
      LOCAL_IDENTITIES.breakGlassWorker.roleId,
    ]);
  });
});
