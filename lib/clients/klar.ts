import type { KyInstance } from 'ky';
import * as z from '../domain/schema.ts';
import { config, forgetSecret, requiredSecret } from '../config/index.ts';
import { InvalidMessageError, UpstreamError } from '../domain/errors.ts';
import { klarBody, klarErrorSchema, klarInvalidResponseSchema, transactionCostsSchema, type KlarError, type TransactionCosts } from '../domain/klar.ts';
import { createUpstreamClient, isHTTPError, toUpstreamError, type CallOptions } from './http.ts';
import { memoized } from './registry.ts';

const UPSTREAM = 'Klar';

async function client(): Promise<KyInstance> {
  const env = config();
  const token = await requiredSecret('KLAR_API_TOKEN');
  return memoized(`klar:${env.KLAR_BASE_URL}:${token}:${env.KLAR_TOTAL_TIMEOUT_MS}:${env.UPSTREAM_RETRY_LIMIT}:${env.UPSTREAM_RETRY_BASE_MS}`, () =>
    createUpstreamClient({
      upstream: UPSTREAM,
      baseUrl: env.KLAR_BASE_URL,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      timeoutMs: 20_000,
      totalTimeoutMs: env.KLAR_TOTAL_TIMEOUT_MS,
      retryLimit: env.UPSTREAM_RETRY_LIMIT,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
    }),
  );
}

/** A 401/403 means the token was refused: read it again (maybe rotated in SSM) next time. */
const tokenRefused = () => forgetSecret('KLAR_API_TOKEN');

/** `<version>/transaction-costs/json`, relative to the host-only KLAR_BASE_URL. */
export function uploadPath(): string {
  return `${config().KLAR_API_VERSION}/transaction-costs/json`;
}

export function describeUpload(costs: TransactionCosts[]) {
  return { method: 'POST', url: `${config().KLAR_BASE_URL}/${uploadPath()}`, body: klarBody(costs, config().KLAR_BODY_WRAPPER) };
}

export type UploadResult =
  /** 2xx without complaints: every cost is stored. */
  | { outcome: 'valid'; status: number; latencyMs: number }
  /** 2xx naming rejected entries (e.g. 207): those failed, the others are stored. */
  | { outcome: 'partial'; status: number; latencyMs: number; errors: KlarError[] }
  /** 400 INVALID: nothing is stored; the errors name the offending entries. */
  | { outcome: 'invalid'; status: number; latencyMs: number; errors: KlarError[] };

/** A 2xx body that lists per-entry errors, whatever its `status` says. */
const partialResponseSchema = z.looseObject({ status: z.optional(z.string()), errors: z.array(klarErrorSchema).check(z.minLength(1)) });

/**
 * One POST of up to 1000 costs (retried per http.ts on network errors, 408/425/429/5xx).
 * INVALID and partial answers are results, not exceptions: the caller maps them back to
 * the orders. Every other failure throws an UpstreamError saying whether to retry.
 */
export async function uploadTransactionCosts(costs: TransactionCosts[], options: CallOptions = {}): Promise<UploadResult> {
  // Last guard for the seed's rule: orderId a string, optional fields absent, never null/0.
  const parsed = z.array(transactionCostsSchema).safeParse(costs);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidMessageError(`transaction costs break Klar's schema at ${issue?.path.join('.')}: ${issue?.message}`, { cause: parsed.error });
  }
  const checked = parsed.data;
  const api = await client();
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const body = klarBody(checked, config().KLAR_BODY_WRAPPER);
  let response: Response;
  try {
    response = await api.post(uploadPath(), { json: body, signal: options.signal });
  } catch (error) {
    const upstream = toUpstreamError(UPSTREAM, error, tokenRefused);
    if (upstream.status === 400 && isHTTPError(error)) {
      const invalid = klarInvalidResponseSchema.safeParse(jsonData(error.data));
      if (invalid.success) return { outcome: 'invalid', status: 400, latencyMs: elapsed(), errors: invalid.data.errors };
    }
    throw upstream;
  }
  const answer = await readJson(response);
  const invalid = klarInvalidResponseSchema.safeParse(answer);
  // INVALID means "nothing stored", even if a proxy turned the status into a 2xx.
  if (invalid.success) return { outcome: 'invalid', status: response.status, latencyMs: elapsed(), errors: invalid.data.errors };
  const partial = partialResponseSchema.safeParse(answer);
  if (partial.success) return { outcome: 'partial', status: response.status, latencyMs: elapsed(), errors: partial.data.errors };
  if (response.status === 207) {
    // Some entries failed, but we cannot tell which: the upload is an idempotent upsert,
    // so sending the batch again (SQS retry) is safe, and persistent trouble ends in the DLQ.
    throw new UpstreamError(UPSTREAM, 'Klar answered 207 without naming the rejected entries', 'transient', { status: 207 });
  }
  return { outcome: 'valid', status: response.status, latencyMs: elapsed() };
}

/** ky 2 has already read an error's body into `data` (JSON or text). */
function jsonData(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

async function readJson(response: Response): Promise<unknown> {
  try {
    const text = await response.text();
    return text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

export const STATE_ENDPOINTS = ['/transaction-costs/state', '/transaction-costs/status'] as const;

/**
 * GET /transaction-costs/state (no version segment, as seed 003 shows it); some docs say
 * /status, so a 404 on /state falls back to it. Returns the raw body for parseKlarState.
 */
export async function fetchKlarState(): Promise<{ endpoint: (typeof STATE_ENDPOINTS)[number]; body: unknown }> {
  const api = await client();
  for (const endpoint of STATE_ENDPOINTS) {
    let response: Response;
    try {
      // Relative (no leading slash) so it resolves against the base URL's path, if any.
      response = await api.get(endpoint.slice(1));
    } catch (error) {
      const upstream = toUpstreamError(UPSTREAM, error, tokenRefused);
      if (upstream.status === 404 && endpoint === STATE_ENDPOINTS[0]) continue;
      throw upstream;
    }
    const body = await readJson(response);
    if (body === undefined) {
      throw new UpstreamError(UPSTREAM, `Klar ${endpoint} answered ${response.status} without a JSON body`, 'permanent', { status: response.status });
    }
    return { endpoint, body };
  }
  throw new UpstreamError(UPSTREAM, 'no state endpoint answered', 'permanent');
}
