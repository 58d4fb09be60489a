import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SECRETS_TTL_SECONDS, forgetSecret, forgetSecrets, requiredSecret, secret } from '../../lib/config/secrets.ts';
import { ConfigError } from '../../lib/domain/errors.ts';

// Secrets from SSM are cached with a time-to-live (SECRETS_TTL_SECONDS) and can be dropped
// at once (`forgetSecret`, after a 401/403); plain variables never need SSM.
const ssm = mockClient(SSMClient);
const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const PARAMETER = '/orderbridge/test/klar-token';
const fromSsm = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ AWS_REGION: 'eu-central-1', KLAR_API_TOKEN_PARAMETER: PARAMETER, ...extra });

/** SSM answers these values one after the other (the last one repeats). */
function ssmAnswers(...values: string[]): void {
  let stub = ssm.on(GetParameterCommand, { Name: PARAMETER });
  for (const value of values.slice(0, -1)) stub = stub.resolvesOnce({ Parameter: { Value: value } });
  stub.resolves({ Parameter: { Value: values.at(-1)! } });
}

beforeEach(() => {
  ssm.reset();
  forgetSecrets();
});
afterAll(() => {
  ssm.restore();
  forgetSecrets();
});

describe('secret(): the SSM cache', () => {
  it.each([
    ['default TTL (5 min), just before it ends', {}, DEFAULT_SECRETS_TTL_SECONDS * 1000 - 1, 'token-1', 1],
    ['default TTL (5 min), when it ends', {}, DEFAULT_SECRETS_TTL_SECONDS * 1000, 'token-2', 2],
    ['SECRETS_TTL_SECONDS=60, after 59 s', { SECRETS_TTL_SECONDS: '60' }, 59_000, 'token-1', 1],
    ['SECRETS_TTL_SECONDS=60, after 61 s', { SECRETS_TTL_SECONDS: '60' }, 61_000, 'token-2', 2],
    ['SECRETS_TTL_SECONDS=0, at once', { SECRETS_TTL_SECONDS: '0' }, 0, 'token-2', 2],
  ])('%s', async (_, settings, later, expected, reads) => {
    // prepare
    ssmAnswers('token-1', 'token-2');
    const env = fromSsm(settings);

    // act
    const first = await secret('KLAR_API_TOKEN', env, T0);
    const second = await secret('KLAR_API_TOKEN', env, T0 + later);

    // assess
    expect(first).toBe('token-1');
    expect(second).toBe(expected);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, reads);
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: PARAMETER, WithDecryption: true });
  });

  it('reads SSM once for calls made at the same time', async () => {
    // prepare
    ssmAnswers('token-1', 'token-2');

    // act
    const values = await Promise.all([1, 2, 3].map(() => secret('KLAR_API_TOKEN', fromSsm(), T0)));

    // assess
    expect(values).toEqual(['token-1', 'token-1', 'token-1']);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 1);
  });

  it('forgetSecret drops the named secret only: the next call reads it again, the others stay cached', async () => {
    // prepare
    ssmAnswers('token-1', 'token-2');
    ssm.on(GetParameterCommand, { Name: '/orderbridge/test/kk-key' }).resolves({ Parameter: { Value: 'kk-key-1' } });
    const env = fromSsm({ KOMFORTKASSE_API_KEY_PARAMETER: '/orderbridge/test/kk-key' });
    await secret('KLAR_API_TOKEN', env, T0);
    await secret('KOMFORTKASSE_API_KEY', env, T0);

    // act
    forgetSecret('KLAR_API_TOKEN');
    const token = await secret('KLAR_API_TOKEN', env, T0 + 1);
    const key = await secret('KOMFORTKASSE_API_KEY', env, T0 + 1);

    // assess
    expect(token).toBe('token-2');
    expect(key).toBe('kk-key-1');
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 3);
    expect(ssm.commandCalls(GetParameterCommand).map((call) => call.args[0].input.Name)).toEqual([PARAMETER, '/orderbridge/test/kk-key', PARAMETER]);
  });

  it('forgetSecret takes several names at once', async () => {
    // prepare
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'v' } });
    const env = { AWS_REGION: 'eu-central-1', VERSACOMMERCE_API_KEY_PARAMETER: '/k', VERSACOMMERCE_API_PASSWORD_PARAMETER: '/p' };
    await secret('VERSACOMMERCE_API_KEY', env, T0);
    await secret('VERSACOMMERCE_API_PASSWORD', env, T0);

    // act
    forgetSecret('VERSACOMMERCE_API_KEY', 'VERSACOMMERCE_API_PASSWORD');
    await secret('VERSACOMMERCE_API_KEY', env, T0);
    await secret('VERSACOMMERCE_API_PASSWORD', env, T0);

    // assess
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 4);
  });

  it('takes a plain variable without asking SSM, and keeps it however long the container lives', async () => {
    // prepare
    ssmAnswers('from-ssm');
    const env = fromSsm({ KLAR_API_TOKEN: ' plain-token ', SECRETS_TTL_SECONDS: '1' });

    // act
    const now = await secret('KLAR_API_TOKEN', env, T0);
    const muchLater = await secret('KLAR_API_TOKEN', env, T0 + 365 * 86_400_000);

    // assess
    expect([now, muchLater]).toEqual(['plain-token', 'plain-token']);
    expect(ssm).not.toHaveReceivedCommand(GetParameterCommand);
  });

  it('answers undefined when neither the variable nor a parameter is set; requiredSecret names the variable', async () => {
    // act
    const value = await secret('KLAR_API_TOKEN', {}, T0);
    const error = await requiredSecret('KLAR_API_TOKEN', {}).catch((e: unknown) => e);

    // assess
    expect(value).toBeUndefined();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ variables: ['KLAR_API_TOKEN'] });
    expect(ssm).not.toHaveReceivedCommand(GetParameterCommand);
  });

  it('does not cache a failed SSM read: the next call tries again and succeeds', async () => {
    // prepare
    ssm.on(GetParameterCommand).rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })).resolves({ Parameter: { Value: 'token-1' } });

    // act
    const failure = await secret('KLAR_API_TOKEN', fromSsm(), T0).catch((e: unknown) => e);
    const retried = await secret('KLAR_API_TOKEN', fromSsm(), T0 + 1);

    // assess
    expect(failure).toBeInstanceOf(ConfigError);
    expect(failure).toMatchObject({ variables: ['KLAR_API_TOKEN_PARAMETER'], message: expect.stringContaining(PARAMETER) });
    expect((failure as ConfigError).cause).toMatchObject({ name: 'ThrottlingException' });
    expect(retried).toBe('token-1');
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 2);
  });

  it('does not cache an empty parameter either', async () => {
    // prepare
    ssm.on(GetParameterCommand).resolvesOnce({ Parameter: { Value: '  ' } }).resolves({ Parameter: { Value: 'token-1' } });

    // act
    const failure = await secret('KLAR_API_TOKEN', fromSsm(), T0).catch((e: unknown) => e);
    const retried = await secret('KLAR_API_TOKEN', fromSsm(), T0 + 1);

    // assess
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).message).toMatch(/is empty/);
    expect(retried).toBe('token-1');
  });
});
