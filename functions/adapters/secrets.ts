/**
 * Webhook signing secrets from SSM Parameter Store (SecureString), through Powertools Parameters, which
 * caches each value for `maxAgeSeconds`: a warm function does not call SSM per request, and a rotated secret
 * is picked up within that time. A parameter may hold several secrets, one per line, so a rotation can add
 * the new secret, wait for every sender to switch, then drop the old one.
 */
import { ParameterNotFoundError } from '@aws-lambda-powertools/parameters/errors';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { PermanentError, TransientError } from '../core/errors.js';

/** The slice of a Powertools provider this adapter uses; tests may pass their own. */
export interface ParameterSource {
  get(name: string, options: { decrypt: true; maxAge: number; throwOnMissing: true }): Promise<unknown>;
}

/** Powertools' SSM provider over the given client (endpoint from AWS_ENDPOINT_URL_SSM in local mode). */
export function ssmParameterSource(client: SSMClient): ParameterSource {
  return new SSMProvider({ awsSdkV3Client: client });
}

export const DEFAULT_SECRET_MAX_AGE_SECONDS = 300;

export class SigningSecrets {
  constructor(
    private readonly source: ParameterSource,
    private readonly maxAgeSeconds = DEFAULT_SECRET_MAX_AGE_SECONDS,
  ) {}

  /** Every secret the parameter currently holds (one per line, blank lines ignored). */
  async get(parameterName: string): Promise<string[]> {
    let value: unknown;
    try {
      value = await this.source.get(parameterName, {
        decrypt: true,
        maxAge: this.maxAgeSeconds,
        throwOnMissing: true,
      });
    } catch (err) {
      if (err instanceof ParameterNotFoundError) {
        throw new PermanentError('SIGNING_SECRET_MISSING', `SSM parameter ${parameterName} does not exist`, {
          cause: err,
        });
      }
      throw new TransientError(
        'SIGNING_SECRET_UNAVAILABLE',
        `SSM parameter ${parameterName}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const secrets =
      typeof value === 'string'
        ? value
            .split(/\r?\n/)
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : [];
    if (secrets.length === 0) {
      throw new PermanentError('SIGNING_SECRET_MISSING', `SSM parameter ${parameterName} holds no secret`);
    }
    return secrets;
  }
}
