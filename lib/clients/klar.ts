import type { KyInstance } from 'ky';
import { config, requiredSecret } from '../config/index.ts';
import { UpstreamError } from '../domain/errors.ts';
import { klarBody, klarInvalidResponseSchema, type KlarError, type TransactionCosts } from '../domain/klar.ts';
import { createUpstreamClient, toUpstreamError } from './http.ts';
import { memoized } from './registry.ts';

const UPSTREAM = 'Klar';

async function client(): Promise<KyInstance> {
  const env = config();
  const token = await requiredSecret('KLAR_API_TOKEN');
  return memoized(`klar:${env.KLAR_BASE_URL}:${token}`, () =>
    createUpstreamClient({
      upstream: UPSTREAM,
      baseUrl: env.KLAR_BASE_URL,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      timeoutMs: 20_000,
      retryLimit: env.UPSTREAM_RETRY_LIMIT,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
    }),
  );
}

export function uploadPath(): string {
  return `${config().KLAR_API_VERSION}/transaction-costs/json`;
}

export function describeUpload(costs: TransactionCosts[]) {
  return { method: 'POST', url: `${config().KLAR_BASE_URL}/${uploadPath()}`, body: klarBody(costs, config().KLAR_BODY_WRAPPER as 'items') };
}

export type UploadResult =
  | { outcome: 'valid'; status: number; latencyMs: number }
  | { outcome: 'invalid'; status: number; latencyMs: number; errors: KlarError[] };

/** One POST of up to 1000 costs. INVALID is an answer, not an exception: the caller maps it. */
export async function uploadTransactionCosts(costs: TransactionCosts[]): Promise<UploadResult> {
  const api = await client();
  const started = performance.now();
  const body = klarBody(costs, config().KLAR_BODY_WRAPPER as 'items');
  try {
    const response = await api.post(uploadPath(), { json: body });
    return { outcome: 'valid', status: response.status, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    const upstream = await toUpstreamError(UPSTREAM, error);
    if (upstream.status === 400) {
      const invalid = klarInvalidResponseSchema.safeParse(await responseJson(error));
      if (invalid.success) {
        return { outcome: 'invalid', status: 400, latencyMs: Math.round(performance.now() - started), errors: invalid.data.errors };
      }
    }
    throw upstream;
  }
}

async function responseJson(error: unknown): Promise<unknown> {
  const response = (error as { response?: Response }).response;
  try {
    return response ? await response.clone().json() : undefined;
  } catch {
    return undefined;
  }
}

/** GET /transaction-costs/state; some docs say /status, so fall back to it on 404. */
export async function fetchKlarState(): Promise<{ endpoint: string; body: unknown }> {
  const api = await client();
  for (const endpoint of ['transaction-costs/state', 'transaction-costs/status']) {
    try {
      return { endpoint: `/${endpoint}`, body: await api.get(endpoint).json() };
    } catch (error) {
      const upstream = await toUpstreamError(UPSTREAM, error);
      if (upstream.status === 404 && endpoint.endsWith('state')) continue;
      throw upstream;
    }
  }
  throw new UpstreamError(UPSTREAM, 'no state endpoint answered', 'permanent');
}
