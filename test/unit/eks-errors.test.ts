import { describe, expect, test } from 'vitest';
import { translateEksError } from '../../functions/adapters/eks.js';
import { PermanentError, TransientError } from '../../functions/core/errors.js';

const sdkError = (name: string, message: string, status: number) =>
  Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });

describe('translateEksError', () => {
  test('a missing cluster is permanent', () => {
    const e = translateEksError(
      'DescribeAccessEntry',
      sdkError('ResourceNotFoundException', 'No cluster found for name: ghost.', 404),
    );
    expect(e).toBeInstanceOf(PermanentError);
    expect((e as PermanentError).code).toBe('CLUSTER_NOT_FOUND');
  });

  test('a 404 naming a cluster-access-policy ARN is not mistaken for a missing cluster', () => {
    const e = translateEksError(
      'DisassociateAccessPolicy',
      sdkError(
        'ResourceNotFoundException',
        'The specified policy arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy is not associated',
        404,
      ),
    );
    expect((e as TransientError).code).toBe('ALREADY_ABSENT');
  });

  test('a 404 right after a create is eventual consistency, retried', () => {
    const e = translateEksError(
      'AssociateAccessPolicy',
      sdkError('ResourceNotFoundException', 'The specified principalArn could not be found.', 404),
    );
    expect(e).toBeInstanceOf(TransientError);
    expect((e as TransientError).code).toBe('EVENTUAL_CONSISTENCY');
  });

  test.each([
    ['InvalidParameterException', 400, PermanentError, 'EKS_INVALID_PARAMETER'],
    ['InvalidRequestException', 400, PermanentError, 'EKS_INVALID_REQUEST'],
    ['ResourceLimitExceededException', 400, PermanentError, 'EKS_QUOTA_EXCEEDED'],
    ['ResourceInUseException', 409, TransientError, 'CONFLICT'],
    ['ServerException', 500, TransientError, 'EKS_UNAVAILABLE'],
    ['ThrottlingException', 429, TransientError, 'EKS_THROTTLED'],
  ])('%s is %s', (name, status, kind, code) => {
    const e = translateEksError('CreateAccessEntry', sdkError(name, 'x', status));
    expect(e).toBeInstanceOf(kind);
    expect((e as PermanentError).code).toBe(code);
    expect((e as PermanentError).cause).toBeDefined();
  });
});

describe('IAM propagation', () => {
  // terraform-provider-aws retries exactly this InvalidParameterException on CreateAccessEntry
  // (internal/service/eks/access_entry.go); terraform-aws-eks#2969 quotes it.
  const message = 'The specified principalArn is invalid: invalid principal';

  test('the invalid-principal answer to CreateAccessEntry is transient IAM_PROPAGATION', () => {
    const e = translateEksError('CreateAccessEntry', sdkError('InvalidParameterException', message, 400));
    expect(e).toBeInstanceOf(TransientError);
    expect((e as TransientError).code).toBe('IAM_PROPAGATION');
  });

  test('any other InvalidParameterException, or the same text on another call, stays permanent', () => {
    for (const [op, text] of [
      ['CreateAccessEntry', 'The username john{{SessionName}} is invalid'],
      ['CreateAccessEntry', 'The specified principalArn is invalid'],
      ['AssociateAccessPolicy', message],
    ] as const) {
      const e = translateEksError(op, sdkError('InvalidParameterException', text, 400));
      expect(e, `${op}: ${text}`).toBeInstanceOf(PermanentError);
      expect((e as PermanentError).code).toBe('EKS_INVALID_PARAMETER');
    }
  });
});
