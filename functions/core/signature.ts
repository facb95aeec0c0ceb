/**
 * Webhook signatures: HMAC-SHA256 over `${timestamp}.${body}`, hex-encoded, sent as
 *
 *   x-signature-timestamp: 1767225600        (unix seconds)
 *   x-signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *
 * Signing the timestamp with the body means a captured request stops working once the timestamp leaves the
 * tolerance window; the replay guard covers the window itself. `x-signature` may carry several
 * comma-separated `v1=` values, and a secret parameter several secrets (one per line), so a secret can be
 * rotated without a moment where sender and receiver disagree. Pure: node:crypto only.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-signature';
export const TIMESTAMP_HEADER = 'x-signature-timestamp';
/** How far the signed timestamp may be from our clock, either way: 5 minutes. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const SCHEME = 'v1';
const DIGEST_HEX = /^[0-9a-f]{64}$/i;
const TIMESTAMP = /^[0-9]{1,12}$/;

/** Why a signature was refused: logged, never returned to the caller (it would coach a forger). */
export type SignatureFailure =
  | 'MISSING_SIGNATURE'
  | 'MISSING_TIMESTAMP'
  | 'MALFORMED_TIMESTAMP'
  | 'STALE_TIMESTAMP'
  | 'MALFORMED_SIGNATURE'
  | 'NO_SECRET'
  | 'SIGNATURE_MISMATCH';

export type SignatureCheck =
  | { ok: true; timestamp: number }
  | { ok: false; failure: SignatureFailure; detail: string };

export interface SignatureInput {
  /** Raw `x-signature` header value, if any. */
  signature: string | undefined;
  /** Raw `x-signature-timestamp` header value, if any. */
  timestamp: string | undefined;
  /** The body exactly as received (after base64 decoding): bytes, so non-UTF-8 bodies verify too. */
  body: string | Uint8Array;
  /** Every secret currently accepted; any one matching is enough. */
  secrets: readonly string[];
  now: Date;
  toleranceSeconds?: number;
}

/** The hex HMAC-SHA256 of `${timestamp}.${body}`. */
export function computeSignature(
  secret: string,
  body: string | Uint8Array,
  timestampSeconds: number,
): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
}

/** The headers a sender adds; also what local mode and tests use to sign requests. */
export function signRequest(
  secret: string,
  body: string | Uint8Array,
  timestampSeconds: number = Math.floor(Date.now() / 1000),
): Record<typeof TIMESTAMP_HEADER | typeof SIGNATURE_HEADER, string> {
  return {
    [TIMESTAMP_HEADER]: String(timestampSeconds),
    [SIGNATURE_HEADER]: `${SCHEME}=${computeSignature(secret, body, timestampSeconds)}`,
  };
}

export function verifySignature(input: SignatureInput): SignatureCheck {
  const tolerance = input.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  const rawTimestamp = input.timestamp?.trim();
  if (!input.signature?.trim()) return refuse('MISSING_SIGNATURE', `no ${SIGNATURE_HEADER} header`);
  if (!rawTimestamp) return refuse('MISSING_TIMESTAMP', `no ${TIMESTAMP_HEADER} header`);
  if (!TIMESTAMP.test(rawTimestamp)) {
    return refuse('MALFORMED_TIMESTAMP', `${TIMESTAMP_HEADER} is not unix seconds: ${clip(rawTimestamp)}`);
  }
  const timestamp = Number(rawTimestamp);
  const skew = Math.floor(input.now.getTime() / 1000) - timestamp;
  if (Math.abs(skew) > tolerance) {
    return refuse(
      'STALE_TIMESTAMP',
      `timestamp is ${Math.abs(skew)} s ${skew > 0 ? 'old' : 'in the future'}; at most ${tolerance} s accepted`,
    );
  }
  const candidates = parseSignatureHeader(input.signature);
  if (candidates.length === 0) {
    return refuse('MALFORMED_SIGNATURE', `${SIGNATURE_HEADER} holds no ${SCHEME}=<64 hex digits> value`);
  }
  const secrets = input.secrets.filter((s) => s !== '');
  if (secrets.length === 0) return refuse('NO_SECRET', 'no signing secret is configured');
  // Every secret against every candidate, without stopping early, so timing says nothing about which matched.
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(computeSignature(secret, input.body, timestamp), 'hex');
    for (const candidate of candidates) {
      if (timingSafeEqual(expected, candidate)) matched = true;
    }
  }
  return matched
    ? { ok: true, timestamp }
    : refuse('SIGNATURE_MISMATCH', 'no signature matches the body and timestamp under any current secret');
}

/** `v1=<hex>[, v1=<hex>...]` → 32-byte digests; other schemes and malformed values are skipped. */
function parseSignatureHeader(header: string): Buffer[] {
  const out: Buffer[] = [];
  for (const part of header.split(',')) {
    const [scheme, value] = part.trim().split('=', 2);
    if (scheme === SCHEME && value !== undefined && DIGEST_HEX.test(value))
      out.push(Buffer.from(value, 'hex'));
  }
  return out;
}

function refuse(failure: SignatureFailure, detail: string): SignatureCheck {
  return { ok: false, failure, detail };
}

function clip(s: string): string {
  return JSON.stringify(s.length > 32 ? `${s.slice(0, 32)}…` : s);
}
