import type { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../domain/errors.ts';

/**
 * Secrets: the plain variable wins (local runs); otherwise the SSM parameter named by
 * `<NAME>_PARAMETER` is read once per cold start. Each function only asks for what it
 * needs, so its IAM role only has to allow those parameters.
 */
export type SecretName =
  | 'WEBHOOK_SECRETS'
  | 'KOMFORTKASSE_API_KEY'
  | 'KLAR_API_TOKEN'
  | 'VERSACOMMERCE_API_KEY'
  | 'VERSACOMMERCE_API_PASSWORD';

let ssm: SSMClient | undefined;
const cache = new Map<SecretName, Promise<string | undefined>>();

export function secret(name: SecretName, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  let pending = cache.get(name);
  if (!pending) {
    pending = resolveSecret(name, env);
    cache.set(name, pending);
    // A failed SSM read must not poison the container for good.
    pending.catch(() => cache.delete(name));
  }
  return pending;
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

/** Tests and the local stack change the environment between runs. */
export function forgetSecrets(): void {
  cache.clear();
}
