import * as z from 'zod';
import { ConfigError } from '../domain/errors.ts';

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .default('false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const optionalUrl = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v.replace(/\/+$/, '')))
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional());

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

const optionalInt = (min: number, max: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v))
    .pipe(z.union([z.undefined(), z.string().regex(/^-?\d+$/, 'must be a whole number').transform(Number).pipe(z.number().min(min).max(max))]));

/**
 * Every environment variable Orderbridge reads. All are optional locally; in AWS the
 * secrets come from SSM parameters named by the matching `*_PARAMETER` variable.
 */
export const envSchema = z.object({
  STAGE: z.string().trim().default('local'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  WEBHOOK_SECRETS: optionalString,
  WEBHOOK_SECRETS_PARAMETER: optionalString,
  KOMFORTKASSE_BASE_URL: optionalUrl.default('https://ssl.komfortkasse.eu/api/v2'),
  KOMFORTKASSE_API_KEY: optionalString,
  KOMFORTKASSE_API_KEY_PARAMETER: optionalString,
  KOMFORTKASSE_INITIAL_DUNNING_LEVEL: optionalInt(0, 10),
  KOMFORTKASSE_TIMEOUT_MS: z.coerce.number().int().min(100).max(60000).default(8000),
  /** How long a worker holds an order's lease; a crashed worker's lease expires after it. */
  KOMFORTKASSE_LEASE_SECONDS: z.coerce.number().int().min(1).max(900).default(60),
  KLAR_BASE_URL: optionalUrl.default('https://open-api.getklar.com'),
  KLAR_API_TOKEN: optionalString,
  KLAR_API_TOKEN_PARAMETER: optionalString,
  KLAR_API_VERSION: z.string().trim().regex(/^\d{2}\.\d{4}$/, 'must look like 06.2024').default('06.2024'),
  KLAR_BATCH_WINDOW_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
  KLAR_ORDER_ID_FIELD: z.enum(['id', 'code']).default('id'),
  KLAR_BODY_WRAPPER: z.enum(['items', 'array']).default('items'),
  FEE_SCHEDULE: optionalString,
  PAYMENT_TYPE_MAP: optionalString,
  VERSACOMMERCE_BASE_URL: optionalUrl,
  VERSACOMMERCE_API_KEY: optionalString,
  VERSACOMMERCE_API_KEY_PARAMETER: optionalString,
  VERSACOMMERCE_API_PASSWORD: optionalString,
  VERSACOMMERCE_API_PASSWORD_PARAMETER: optionalString,
  DRY_RUN: booleanFlag,
  HISTORY_TABLE_NAME: z.string().trim().min(3).default('orderbridge-local-history'),
  HISTORY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(400),
  ORDERS_QUEUE_URL: optionalString,
  KLAR_COSTS_QUEUE_URL: optionalString,
  UPSTREAM_RETRY_LIMIT: z.coerce.number().int().min(0).max(10).default(2),
  UPSTREAM_RETRY_BASE_MS: z.coerce.number().int().min(0).max(10000).default(200),
  /** one upstream call, retries and their delays included (ky totalTimeout); fits sync-order's 30 s */
  UPSTREAM_TOTAL_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(12_000),
  /** one Klar upload of up to 1000 costs, retries included; fits upload-klar-costs' 60 s */
  KLAR_TOTAL_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(40_000),
  /** how long a secret read from SSM is cached; a 401/403 drops it at once */
  SECRETS_TTL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  /** a billing address without a country (nor a shipping one) gets this one (2 letters) */
  DEFAULT_COUNTRY_CODE: z
    .string()
    .trim()
    .toUpperCase()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v))
    .pipe(z.union([z.undefined(), z.string().regex(/^[A-Z]{2}$/, 'must be a 2-letter ISO country code such as DE')])),
});

export type Env = z.infer<typeof envSchema>;

/** Validates the environment once; the error names every bad variable. */
export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const result = envSchema.safeParse(source);
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
