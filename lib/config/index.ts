import { parseEnv, type Env } from './env.ts';

export { parseEnv, webhookSecretsFrom, envSchema, sideSwitchOn, sideOn, flagOn, type Env } from './env.ts';
export { secret, requiredSecret, forgetSecret, forgetSecrets, type SecretName } from './secrets.ts';

let current: Env | undefined;

/** The validated environment, parsed once per cold start (fails fast naming the variable). */
export function config(): Env {
  current ??= parseEnv(process.env);
  return current;
}

/** For the local stack and tests, which start handlers with a changed environment. */
export function reloadConfig(): Env {
  current = undefined;
  return config();
}
