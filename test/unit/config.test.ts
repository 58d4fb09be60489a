import { describe, expect, it } from 'vitest';
import { parseEnv, webhookSecretsFrom } from '../../lib/config/env.ts';
import { requiredSecret, forgetSecrets } from '../../lib/config/secrets.ts';
import { ConfigError } from '../../lib/domain/errors.ts';

function configErrorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseEnv(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseEnv', () => {
  it('applies the documented defaults when nothing is set', () => {
    // act
    const env = parseEnv({});
    // assess
    expect(env).toMatchObject({
      PORT: 3000,
      KOMFORTKASSE_BASE_URL: 'https://ssl.komfortkasse.eu/api/v2',
      KLAR_BASE_URL: 'https://open-api.getklar.com',
      KLAR_API_VERSION: '06.2024',
      KLAR_BATCH_WINDOW_SECONDS: 5,
      DRY_RUN: false,
      KLAR_ORDER_ID_FIELD: 'id',
      KLAR_BODY_WRAPPER: 'items',
      UPSTREAM_TOTAL_TIMEOUT_MS: 12_000,
      KLAR_TOTAL_TIMEOUT_MS: 40_000,
      SECRETS_TTL_SECONDS: 300,
    });
    expect(env.VERSACOMMERCE_BASE_URL).toBeUndefined();
    expect(env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL).toBeUndefined();
    expect(env.DEFAULT_COUNTRY_CODE).toBeUndefined();
  });

  it('reads the deadlines, the secrets TTL and the default country', () => {
    // act
    const env = parseEnv({
      UPSTREAM_TOTAL_TIMEOUT_MS: '20000',
      KLAR_TOTAL_TIMEOUT_MS: '50000',
      SECRETS_TTL_SECONDS: '0',
      DEFAULT_COUNTRY_CODE: ' at ',
    });
    // assess
    expect(env).toMatchObject({ UPSTREAM_TOTAL_TIMEOUT_MS: 20_000, KLAR_TOTAL_TIMEOUT_MS: 50_000, SECRETS_TTL_SECONDS: 0, DEFAULT_COUNTRY_CODE: 'AT' });
  });

  it('strips a trailing slash from base URLs and reads numbers and flags', () => {
    const env = parseEnv({
      KOMFORTKASSE_BASE_URL: 'http://127.0.0.1:9000/api/v2/',
      PORT: '8080',
      DRY_RUN: 'true',
      KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '1',
      KLAR_BATCH_WINDOW_SECONDS: '60',
    });
    expect(env.KOMFORTKASSE_BASE_URL).toBe('http://127.0.0.1:9000/api/v2');
    expect(env.PORT).toBe(8080);
    expect(env.DRY_RUN).toBe(true);
    expect(env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL).toBe(1);
    expect(env.KLAR_BATCH_WINDOW_SECONDS).toBe(60);
  });

  it('treats an empty variable as unset', () => {
    const env = parseEnv({ KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '', VERSACOMMERCE_BASE_URL: '', DEFAULT_COUNTRY_CODE: '  ' });
    expect(env.KOMFORTKASSE_INITIAL_DUNNING_LEVEL).toBeUndefined();
    expect(env.VERSACOMMERCE_BASE_URL).toBeUndefined();
    expect(env.DEFAULT_COUNTRY_CODE).toBeUndefined();
  });

  it.each([
    ['PORT', 'not-a-port'],
    ['PORT', '70000'],
    ['KLAR_BASE_URL', 'ftp://example.org'],
    ['KOMFORTKASSE_BASE_URL', 'not a url'],
    ['KLAR_API_VERSION', '2024-06'],
    ['DRY_RUN', 'maybe'],
    ['KOMFORTKASSE_INITIAL_DUNNING_LEVEL', 'two'],
    ['KOMFORTKASSE_INITIAL_DUNNING_LEVEL', '-1'],
    ['KLAR_BATCH_WINDOW_SECONDS', '301'],
    ['KLAR_ORDER_ID_FIELD', 'uuid'],
    ['KLAR_BODY_WRAPPER', 'object'],
    ['HISTORY_TABLE_NAME', 'ab'],
    ['DEFAULT_COUNTRY_CODE', 'DEU'],
    ['DEFAULT_COUNTRY_CODE', 'Germany'],
    ['DEFAULT_COUNTRY_CODE', 'D1'],
    ['SECRETS_TTL_SECONDS', '-1'],
    ['SECRETS_TTL_SECONDS', '86401'],
    ['SECRETS_TTL_SECONDS', 'soon'],
    ['UPSTREAM_TOTAL_TIMEOUT_MS', '99'],
    ['UPSTREAM_TOTAL_TIMEOUT_MS', '120001'],
    ['UPSTREAM_TOTAL_TIMEOUT_MS', '1.5'],
    ['KLAR_TOTAL_TIMEOUT_MS', '99'],
    ['KLAR_TOTAL_TIMEOUT_MS', '300001'],
  ])('rejects %s=%s with an error naming the variable', (name, value) => {
    // act
    const error = configErrorOf({ [name]: value });
    // assess
    expect(error.variables).toEqual([name]);
    expect(error.message).toContain(name);
    expect(error.category).toBe('permanent');
  });

  it('names every bad variable at once', () => {
    const error = configErrorOf({ PORT: 'x', DRY_RUN: 'perhaps' });
    expect(error.variables.sort()).toEqual(['DRY_RUN', 'PORT']);
  });
});

describe('webhookSecretsFrom', () => {
  it('splits a rotation pair and drops blanks', () => {
    expect(webhookSecretsFrom(' old-secret, new-secret ,, ')).toEqual(['old-secret', 'new-secret']);
    expect(webhookSecretsFrom(undefined)).toEqual([]);
  });
});

describe('requiredSecret', () => {
  it('prefers the plain variable', async () => {
    forgetSecrets();
    await expect(requiredSecret('KLAR_API_TOKEN', { KLAR_API_TOKEN: 'token-1' })).resolves.toBe('token-1');
  });

  it('fails naming the variable when neither it nor its SSM parameter is set', async () => {
    forgetSecrets();
    await expect(requiredSecret('KOMFORTKASSE_API_KEY', {})).rejects.toMatchObject({
      name: 'ConfigError',
      variables: ['KOMFORTKASSE_API_KEY'],
    });
    forgetSecrets();
  });
});
