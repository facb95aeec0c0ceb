/**
 * How an AssumeRole failure is typed (adapters/target-clients.ts translateStsError), on errors the real
 * @aws-sdk/client-sts raises from a loopback server answering in STS's query protocol. STS answers
 * throttling with HTTP 400 and the code `Throttling` ("Rate exceeded"), a client fault: after the SDK's
 * own retries it must still be STS_UNAVAILABLE (transient, retried through the queue), not
 * TARGET_ROLE_UNAVAILABLE (permanent: dead-lettered at once, as if the role were missing).
 */
import { createServer } from 'node:http';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TARGET_ROLE_UNAVAILABLE, translateStsError } from '../../functions/adapters/target-clients.js';
import { AppError } from '../../functions/core/errors.js';
import { closeServer, listenLoopback } from '../../infra/local/http.js';

const ROLE = 'arn:aws:iam::444455556666:role/eks-access-grants-test-target';

describe('AssumeRole errors, as the real STS client raises them', () => {
  let answer = { status: 400, code: 'Throttling', message: 'Rate exceeded' };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body =
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>' +
        `<Type>${answer.status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${answer.code}</Code>` +
        `<Message>${answer.message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
      res.writeHead(answer.status, { 'content-type': 'text/xml' });
      res.end(body);
    });
  });
  let sts: STSClient;
  beforeAll(async () => {
    const endpoint = await listenLoopback(server);
    sts = new STSClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      // The SDK's retries are not what is under test: one attempt keeps the test fast.
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    sts.destroy();
    await closeServer(server);
  });

  async function typed(status: number, code: string, message: string): Promise<AppError> {
    answer = { status, code, message };
    const err = await sts.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 's1' })).then(
      () => {
        throw new Error('expected AssumeRole to fail');
      },
      (e: unknown) => e,
    );
    const out = translateStsError(ROLE, err);
    expect(out).toBeInstanceOf(AppError);
    return out as AppError;
  }

  test.each([
    [400, 'Throttling', 'Rate exceeded'],
    [400, 'ThrottlingException', 'Rate exceeded'],
    [400, 'RequestLimitExceeded', 'Request limit exceeded'],
    [429, 'TooManyRequestsException', 'Too many requests'],
    [500, 'InternalFailure', 'internal error'],
    [503, 'ServiceUnavailable', 'unavailable'],
  ])('HTTP %i %s is STS_UNAVAILABLE, retryable', async (status, code, message) => {
    const e = await typed(status, code, message);
    expect({ code: e.code, retryable: e.retryable }).toEqual({ code: 'STS_UNAVAILABLE', retryable: true });
  });

  test.each([
    [400, 'ExpiredTokenException', 'The security token included in the request is expired'],
    [403, 'InvalidClientTokenId', 'The security token included in the request is invalid.'],
    [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match'],
  ])(
    'HTTP %i %s is the caller’s own credentials, retryable, never "deploy the target role"',
    async (status, code, message) => {
      const e = await typed(status, code, message);
      expect({ code: e.code, retryable: e.retryable }).toEqual({
        code: 'STS_CALLER_CREDENTIALS_REFUSED',
        retryable: true,
      });
      expect(e.message).toContain("the caller's own credentials were refused");
    },
  );

  test.each([
    [403, 'AccessDenied', `User: x is not authorized to perform: sts:AssumeRole on resource: ${ROLE}`],
    [400, 'ValidationError', 'bad session name'],
  ])('HTTP %i %s is TARGET_ROLE_UNAVAILABLE, permanent', async (status, code, message) => {
    const e = await typed(status, code, message);
    expect({ code: e.code, retryable: e.retryable }).toEqual({
      code: TARGET_ROLE_UNAVAILABLE,
      retryable: false,
    });
  });
});
