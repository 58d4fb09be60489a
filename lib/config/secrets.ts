import type { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../domain/errors.ts';

/**
 * Secrets: the plain variable wins (local runs); otherwise the SSM parameter named by
 * `<NAME>_PARAMETER` is read and cached for SECRETS_TTL_SECONDS (default 5 minutes), so a
 * rotated value is picked up without a redeploy. A client whose upstream refuses the
 * credentials (401/403) drops the cached value at once (`forgetSecret`). Each function
 * only asks for what it needs, so its IAM role only has to allow those parameters.
 */
export type SecretName =
  | 'WEBHOOK_SECRETS'
  | 'KOMFORTKASSE_API_KEY'
  | 'KLAR_API_TOKEN'
  | 'VERSACOMMERCE_API_KEY'
  | 'VERSACOMMERCE_API_PASSWORD';

export const DEFAULT_SECRETS_TTL_SECONDS = 300;

let ssm: SSMClient | undefined;
const cache = new Map<SecretName, { value: Promise<string | undefined>; until: number }>();

function ttlMs(env: NodeJS.ProcessEnv): number {
  const seconds = Number(env.SECRETS_TTL_SECONDS ?? DEFAULT_SECRETS_TTL_SECONDS);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_SECRETS_TTL_SECONDS) * 1000;
}

export function secret(name: SecretName, env: NodeJS.ProcessEnv = process.env, now = Date.now()): Promise<string | undefined> {
  const cached = cache.get(name);
  if (cached && cached.until > now) return cached.value;
  const direct = env[name]?.trim();
  // A plain variable cannot change while the container lives: no need to expire it.
  const entry = { value: resolveSecret(name, env), until: direct ? Infinity : now + ttlMs(env) };
  cache.set(name, entry);
  // A failed SSM read must not poison the container for good.
  entry.value.catch(() => {
    if (cache.get(name) === entry) cache.delete(name);
  });
  return entry.value;
}

export async function requiredSecret(name: SecretName, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const value = await secret(name, env);
  if (value === undefined) {
    throw new ConfigError(`${name} is not set (and no ${name}_PARAMETER names an SSM parameter)`, [name]);
  }
  return value;
}

async function resolveSecret(name: SecretName, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const direct = env[name]?.trim();
  if (direct) return direct;
  const parameter = env[`${name}_PARAMETER`]?.trim();
  if (!parameter) return undefined;
  try {
    // Loaded on first use: functions whose secrets come from the environment never pay for it.
    const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');
    ssm ??= new SSMClient({});
    const result = await ssm.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }));
    const value = result.Parameter?.Value?.trim();
    if (!value) throw new ConfigError(`SSM parameter ${parameter} (${name}_PARAMETER) is empty`, [`${name}_PARAMETER`]);
    return value;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot read SSM parameter ${parameter} (${name}_PARAMETER)`, [`${name}_PARAMETER`], {
      cause: error,
    });
  }
}

/** The upstream refused this secret: read it again on the next call (it may have been rotated). */
export function forgetSecret(...names: SecretName[]): void {
  for (const name of names) cache.delete(name);
}

/** Tests and the local stack change the environment between runs. */
export function forgetSecrets(): void {
  cache.clear();
}
