// Request-body readers and list pagination shared by the operations.
import { EksApiError } from './errors.js';

// Pages are cut on sorted keys and the token names the last key served, so an entry created or
// deleted between pages neither repeats nor shifts the rest.
export function paginate<T>(
  items: T[],
  key: (t: T) => string,
  query: URLSearchParams,
): { items: T[]; nextToken?: string } {
  const rawMax = query.get('maxResults');
  const max = rawMax === null ? 100 : Number(rawMax);
  if (!Number.isInteger(max) || max < 1 || max > 100) {
    throw new EksApiError('InvalidParameterException', 'maxResults must be between 1 and 100.');
  }
  let start = 0;
  const token = query.get('nextToken');
  if (token !== null) {
    const after = decodeToken(token);
    start = items.findIndex((t) => key(t) > after);
    if (start < 0) start = items.length;
  }
  const page = items.slice(start, start + max);
  const last = page.at(-1);
  if (start + max < items.length && last !== undefined) {
    return {
      items: page,
      nextToken: Buffer.from(JSON.stringify({ after: key(last) })).toString('base64url'),
    };
  }
  return { items: page };
}

function decodeToken(token: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && typeof (parsed as { after?: unknown }).after === 'string') {
      return (parsed as { after: string }).after;
    }
  } catch {
    // fall through to the error below
  }
  throw new EksApiError('InvalidParameterException', 'The nextToken is invalid.');
}

export function tokenField(nextToken: string | undefined): { nextToken?: string } {
  return nextToken === undefined ? {} : { nextToken };
}

export function requiredString(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v.length === 0) {
    throw new EksApiError('InvalidParameterException', `${name} is required.`);
  }
  return v;
}

export function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new EksApiError('InvalidParameterException', `${name} must be a string.`);
  return v;
}

export function optionalStringList(body: Record<string, unknown>, name: string): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new EksApiError('InvalidParameterException', `${name} must be a list of strings.`);
  }
  return v as string[];
}

export function optionalStringMap(
  body: Record<string, unknown>,
  name: string,
): Record<string, string> | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new EksApiError('InvalidParameterException', `${name} must be a map of strings.`);
  }
  return v as Record<string, string>;
}
