import { ConfigError } from '../domain/errors.ts';
import * as z from '../domain/schema.ts';

const booleanFlag = z.pipe(
  z._default(z.enum(['true', 'false', '1', '0', 'yes', 'no', '']), 'false'),
  z.transform((v: 'true' | 'false' | '1' | '0' | 'yes' | 'no' | '') => v === 'true' || v === '1' || v === 'yes'),
);

/**
 * A side's switch (`KLAR_ENABLED`, `KOMFORTKASSE_ENABLED`): on unless set to `false` or `0`.
 * Exactly the words osls' `strToBool` takes (serverless.yml resolves the same variable at
 * package time to disable the Klar poller), so a value one accepts the other accepts too.
 */
const sideSwitch = z.pipe(
  z._default(z.string().check(z.trim(), z.toLowerCase(), z.regex(/^(true|false|1|0)$/, 'must be true or false')), 'true'),
  z.transform((v: string) => v === 'true' || v === '1'),
);

/** A trimmed string, absent when unset; what every optional variable starts as. */
const trimmedOrAbsent = () => z.optional(z.string().check(z.trim()));
const blankAsAbsent = () => z.transform((v: string | undefined) => (v === undefined || v === '' ? undefined : v));

const optionalUrl = z.pipe(
  z.pipe(
    trimmedOrAbsent(),
    z.transform((v: string | undefined) => (v === undefined || v === '' ? undefined : v.replace(/\/+$/, ''))),
  ),
  z.optional(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
);

const optionalString = z.pipe(trimmedOrAbsent(), blankAsAbsent());

const optionalInt = (min: number, max: number) =>
  z.pipe(
    z.pipe(trimmedOrAbsent(), blankAsAbsent()),
    z.union([
      z.undefined(),
      z.pipe(z.pipe(z.string().check(z.regex(/^-?\d+$/, 'must be a whole number')), z.transform(Number)), z.number().check(z.gte(min), z.lte(max))),
    ]),
  );

/** `z.coerce.number()` with `.int().min(min).max(max).default(fallback)`. */
const coercedInt = (min: number, max: number, fallback: number) =>
  z._default(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)), fallback);

/**
 * Every environment variable Orderbridge reads. All are optional locally; in AWS the
 * secrets come from SSM parameters named by the matching `*_PARAMETER` variable.
 */
export const envSchema = z.object({
  STAGE: z._default(z.string().check(z.trim()), 'local'),
  PORT: coercedInt(0, 65535, 3000),
  WEBHOOK_SECRETS: optionalString,
  WEBHOOK_SECRETS_PARAMETER: optionalString,
  KOMFORTKASSE_BASE_URL: z._default(optionalUrl, 'https://ssl.komfortkasse.eu/api/v2'),
  KOMFORTKASSE_API_KEY: optionalString,
  KOMFORTKASSE_API_KEY_PARAMETER: optionalString,
  KOMFORTKASSE_INITIAL_DUNNING_LEVEL: optionalInt(0, 10),
  KOMFORTKASSE_TIMEOUT_MS: coercedInt(100, 60000, 8000),
  /** How long a worker holds an order's lease; a crashed worker's lease expires after it. */
  KOMFORTKASSE_LEASE_SECONDS: coercedInt(1, 900, 60),
  KLAR_BASE_URL: z._default(optionalUrl, 'https://open-api.getklar.com'),
  KLAR_API_TOKEN: optionalString,
  KLAR_API_TOKEN_PARAMETER: optionalString,
  KLAR_API_VERSION: z._default(z.string().check(z.trim(), z.regex(/^\d{2}\.\d{4}$/, 'must look like 06.2024')), '06.2024'),
  KLAR_BATCH_WINDOW_SECONDS: coercedInt(0, 300, 5),
  KLAR_ORDER_ID_FIELD: z._default(z.enum(['id', 'code']), 'id'),
  KLAR_BODY_WRAPPER: z._default(z.enum(['items', 'array']), 'items'),
  FEE_SCHEDULE: optionalString,
  PAYMENT_TYPE_MAP: optionalString,
  VERSACOMMERCE_BASE_URL: optionalUrl,
  VERSACOMMERCE_API_KEY: optionalString,
  VERSACOMMERCE_API_KEY_PARAMETER: optionalString,
  VERSACOMMERCE_API_PASSWORD: optionalString,
  VERSACOMMERCE_API_PASSWORD_PARAMETER: optionalString,
  DRY_RUN: booleanFlag,
  /** false: Klar gets nothing (no costs forwarded, no poller), and no Klar token is needed */
  KLAR_ENABLED: sideSwitch,
  /** false: Komfortkasse gets nothing, and no Komfortkasse API key is needed */
  KOMFORTKASSE_ENABLED: sideSwitch,
  HISTORY_TABLE_NAME: z._default(z.string().check(z.trim(), z.minLength(3)), 'orderbridge-local-history'),
  HISTORY_RETENTION_DAYS: coercedInt(1, 3650, 400),
  ORDERS_QUEUE_URL: optionalString,
  KLAR_COSTS_QUEUE_URL: optionalString,
  UPSTREAM_RETRY_LIMIT: coercedInt(0, 10, 2),
  UPSTREAM_RETRY_BASE_MS: coercedInt(0, 10000, 200),
  /** one upstream call, retries and their delays included (ky totalTimeout); fits sync-order's 30 s */
  UPSTREAM_TOTAL_TIMEOUT_MS: coercedInt(100, 120_000, 12_000),
  /** one Klar upload of up to 1000 costs, retries included; fits upload-klar-costs' 60 s */
  KLAR_TOTAL_TIMEOUT_MS: coercedInt(100, 300_000, 40_000),
  /** how long a secret read from SSM is cached; a 401/403 drops it at once */
  SECRETS_TTL_SECONDS: coercedInt(0, 86_400, 300),
  /** a billing address without a country (nor a shipping one) gets this one (2 letters) */
  DEFAULT_COUNTRY_CODE: z.pipe(
    z.pipe(z.optional(z.string().check(z.trim(), z.toUpperCase())), blankAsAbsent()),
    z.union([z.undefined(), z.string().check(z.regex(/^[A-Z]{2}$/, 'must be a 2-letter ISO country code such as DE'))]),
  ),
});

export type Env = z.infer<typeof envSchema>;

/**
 * Where a variable's value comes from in AWS — next to the schema, so a new variable cannot
 * be added without saying how it is deployed (the type below requires an entry for each).
 * The template test derives the deployed environment it expects from this map.
 * - `deploy`: `serverless.yml` passes it from the deploy shell as `${env:NAME, <default>}`;
 *   the default is the schema's, unless `deployedDefault` names another one for AWS.
 * - `ssm`: a secret; `serverless.yml` passes `<NAME>_PARAMETER`, the SecureString it is read from.
 * - `stack`: `serverless.yml` sets it itself (stage, table, queue URLs, SSM paths).
 * - `local`: read only by the local stack, never deployed.
 */
export type EnvSource = { from: 'deploy'; deployedDefault?: string } | { from: 'ssm' } | { from: 'stack' } | { from: 'local' };

const deploy: EnvSource = { from: 'deploy' };
const ssm: EnvSource = { from: 'ssm' };
const stack: EnvSource = { from: 'stack' };

export const envSources = {
  STAGE: stack,
  PORT: { from: 'local' },
  WEBHOOK_SECRETS: ssm,
  WEBHOOK_SECRETS_PARAMETER: stack,
  KOMFORTKASSE_BASE_URL: deploy,
  KOMFORTKASSE_API_KEY: ssm,
  KOMFORTKASSE_API_KEY_PARAMETER: stack,
  KOMFORTKASSE_INITIAL_DUNNING_LEVEL: deploy,
  KOMFORTKASSE_TIMEOUT_MS: deploy,
  KOMFORTKASSE_LEASE_SECONDS: deploy,
  KLAR_BASE_URL: deploy,
  KLAR_API_TOKEN: ssm,
  KLAR_API_TOKEN_PARAMETER: stack,
  KLAR_API_VERSION: deploy,
  // Locally 5 s so a test sees its upload soon; in AWS the SQS batching window of upload-klar-costs.
  KLAR_BATCH_WINDOW_SECONDS: { from: 'deploy', deployedDefault: '60' },
  KLAR_ORDER_ID_FIELD: deploy,
  KLAR_BODY_WRAPPER: deploy,
  FEE_SCHEDULE: deploy,
  PAYMENT_TYPE_MAP: deploy,
  VERSACOMMERCE_BASE_URL: deploy,
  VERSACOMMERCE_API_KEY: ssm,
  VERSACOMMERCE_API_KEY_PARAMETER: stack,
  VERSACOMMERCE_API_PASSWORD: ssm,
  VERSACOMMERCE_API_PASSWORD_PARAMETER: stack,
  DRY_RUN: deploy,
  KLAR_ENABLED: deploy,
  KOMFORTKASSE_ENABLED: deploy,
  HISTORY_TABLE_NAME: stack,
  HISTORY_RETENTION_DAYS: deploy,
  ORDERS_QUEUE_URL: stack,
  KLAR_COSTS_QUEUE_URL: stack,
  UPSTREAM_RETRY_LIMIT: deploy,
  UPSTREAM_RETRY_BASE_MS: deploy,
  UPSTREAM_TOTAL_TIMEOUT_MS: deploy,
  KLAR_TOTAL_TIMEOUT_MS: deploy,
  SECRETS_TTL_SECONDS: deploy,
  DEFAULT_COUNTRY_CODE: deploy,
} satisfies Record<keyof typeof envSchema.shape, EnvSource>;

export const SIDE_SWITCHES = ['KOMFORTKASSE_ENABLED', 'KLAR_ENABLED'] as const;

/**
 * A switch's raw value (unset = on) as the functions read it, for code that looks at another
 * process's environment (the local stack, the CLI); undefined for a value the config refuses.
 */
export function sideSwitchOn(value: string | undefined): boolean | undefined {
  const parsed = sideSwitch.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** A switch as another process (a stage, a local stack, a deploy shell) has it: on unless switched off. */
export function sideOn(value: string | undefined): boolean {
  return sideSwitchOn(value) !== false;
}

/** A true/false setting (DRY_RUN) as another process has it, read as the functions read it; anything else is off. */
export function flagOn(value: string | undefined): boolean {
  const parsed = booleanFlag.safeParse((value ?? '').trim().toLowerCase());
  return parsed.success && parsed.data;
}

/** With both sides off nothing would be synced at all: a mistake, never a mode. */
export function bothSidesOff(env: Pick<Env, (typeof SIDE_SWITCHES)[number]>): boolean {
  return !env.KLAR_ENABLED && !env.KOMFORTKASSE_ENABLED;
}

/** Validates the environment once; the error names every bad variable. */
export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const result = envSchema.safeParse(source);
  if (result.success && bothSidesOff(result.data)) {
    throw new ConfigError(
      'Invalid configuration — KLAR_ENABLED and KOMFORTKASSE_ENABLED are both false: Orderbridge would sync nothing; switch at least one side on',
      [...SIDE_SWITCHES],
    );
  }
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`);
  const variables = [...new Set(result.error.issues.map((issue) => String(issue.path[0])))];
  throw new ConfigError(`Invalid configuration — ${problems.join('; ')}`, variables, { cause: result.error });
}

export function webhookSecretsFrom(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
