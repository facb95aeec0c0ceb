import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  computeSignature,
  SIGNATURE_HEADER,
  SIGNATURE_TOLERANCE_SECONDS,
  type SignatureCheck,
  signRequest,
  TIMESTAMP_HEADER,
  verifySignature,
} from '../../functions/core/signature.js';

const SECRET = 'whsec-test';
const BODY = '{"hello":"world"}';
const TS = 1_767_225_600;
const AT = (offsetSeconds: number) => new Date((TS + offsetSeconds) * 1000);

function check(over: Partial<Parameters<typeof verifySignature>[0]> = {}): SignatureCheck {
  const headers = signRequest(SECRET, BODY, TS);
  return verifySignature({
    signature: headers[SIGNATURE_HEADER],
    timestamp: headers[TIMESTAMP_HEADER],
    body: BODY,
    secrets: [SECRET],
    now: AT(0),
    ...over,
  });
}

function failure(result: SignatureCheck): string {
  if (result.ok) throw new Error('expected the signature to be refused');
  return result.failure;
}

describe('signing', () => {
  test('is HMAC-SHA256 over "<timestamp>.<body>", hex-encoded (independent vector)', () => {
    expect(computeSignature(SECRET, BODY, TS)).toBe(
      '9c6c4d8c05297a58b6161ef154e04c954c8c46e60807d82336a4e80a2d87fd1c',
    );
  });

  test('signRequest yields the two headers a sender adds', () => {
    expect(signRequest(SECRET, BODY, TS)).toEqual({
      'x-signature-timestamp': '1767225600',
      'x-signature': 'v1=9c6c4d8c05297a58b6161ef154e04c954c8c46e60807d82336a4e80a2d87fd1c',
    });
  });

  test('signs bytes and the equal UTF-8 string alike', () => {
    const body = '{"reason":"déploiement 🚀"}';
    expect(computeSignature(SECRET, Buffer.from(body, 'utf8'), TS)).toBe(computeSignature(SECRET, body, TS));
  });
});

describe('verification', () => {
  test('accepts a fresh, correct signature and returns its timestamp', () => {
    expect(check()).toEqual({ ok: true, timestamp: TS });
  });

  test('accepts timestamps up to five minutes off either way, and refuses one second more', () => {
    expect(SIGNATURE_TOLERANCE_SECONDS).toBe(300);
    expect(check({ now: AT(300) }).ok).toBe(true);
    expect(check({ now: AT(-300) }).ok).toBe(true);
    expect(failure(check({ now: AT(301) }))).toBe('STALE_TIMESTAMP');
    expect(failure(check({ now: AT(-301) }))).toBe('STALE_TIMESTAMP');
  });

  test('says in the detail (for the log) how stale the timestamp is', () => {
    const result = check({ now: AT(3600) });
    expect(result).toMatchObject({ ok: false, detail: 'timestamp is 3600 s old; at most 300 s accepted' });
  });

  test('refuses a missing signature or timestamp', () => {
    expect(failure(check({ signature: undefined }))).toBe('MISSING_SIGNATURE');
    expect(failure(check({ signature: '  ' }))).toBe('MISSING_SIGNATURE');
    expect(failure(check({ timestamp: undefined }))).toBe('MISSING_TIMESTAMP');
  });

  test('refuses a timestamp that is not unix seconds', () => {
    for (const timestamp of [
      '2026-01-01T00:00:00Z',
      '1767225600.5',
      '-1767225600',
      '0x69',
      '1767225600000000',
    ]) {
      expect(failure(check({ timestamp })), timestamp).toBe('MALFORMED_TIMESTAMP');
    }
  });

  test('refuses a changed body, timestamp or secret', () => {
    expect(failure(check({ body: '{"hello":"World"}' }))).toBe('SIGNATURE_MISMATCH');
    expect(failure(check({ timestamp: String(TS + 1) }))).toBe('SIGNATURE_MISMATCH');
    expect(failure(check({ secrets: ['another-secret'] }))).toBe('SIGNATURE_MISMATCH');
  });

  test('refuses other schemes and digests that are not 64 hex digits', () => {
    const digest = computeSignature(SECRET, BODY, TS);
    for (const signature of [digest, `v0=${digest}`, `sha256=${digest}`, `v1=${digest.slice(2)}`, 'v1=zz']) {
      expect(failure(check({ signature })), signature).toBe('MALFORMED_SIGNATURE');
    }
  });

  test('accepts any of several signatures, so senders can sign with old and new secret during a rotation', () => {
    const old = computeSignature('old-secret', BODY, TS);
    const current = computeSignature(SECRET, BODY, TS);
    expect(check({ signature: `v1=${old}, v1=${current}` }).ok).toBe(true);
    expect(check({ signature: `v0=abc,v1=${current}` }).ok).toBe(true);
  });

  test('accepts a signature made with any configured secret, and refuses when none is configured', () => {
    expect(check({ secrets: ['next-secret', SECRET] }).ok).toBe(true);
    expect(failure(check({ secrets: [] }))).toBe('NO_SECRET');
    expect(failure(check({ secrets: [''] }))).toBe('NO_SECRET');
  });

  test('a signature verifies for any body and secret, and any changed body byte breaks it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.string({ minLength: 1 }),
        fc.nat(),
        (body, secret, index) => {
          const headers = signRequest(secret, body, TS);
          const input = {
            signature: headers[SIGNATURE_HEADER],
            timestamp: headers[TIMESTAMP_HEADER],
            secrets: [secret],
            now: AT(0),
          };
          expect(verifySignature({ ...input, body }).ok).toBe(true);
          const tampered = Uint8Array.from(body);
          const i = index % tampered.length;
          tampered[i] = (tampered[i] ?? 0) ^ 0x01;
          expect(verifySignature({ ...input, body: tampered }).ok).toBe(false);
        },
      ),
      { seed: 4242, numRuns: 200 },
    );
  });
});
