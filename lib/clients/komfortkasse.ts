import type { KyInstance } from 'ky';
import { config, requiredSecret } from '../config/index.ts';
import { UpstreamError } from '../domain/errors.ts';
import { komfortkasseOrderResponseSchema, type KomfortkasseOrder, type KomfortkasseOrderResponse } from '../domain/komfortkasse.ts';
import { createUpstreamClient, toUpstreamError } from './http.ts';
import { memoized } from './registry.ts';

const UPSTREAM = 'Komfortkasse';

export interface CallResult<T> {
  status: number;
  latencyMs: number;
  body: T;
}

export interface DescribedRequest {
  method: string;
  url: string;
  body?: unknown;
}

async function client(): Promise<KyInstance> {
  const env = config();
  const apiKey = await requiredSecret('KOMFORTKASSE_API_KEY');
  return memoized(`komfortkasse:${env.KOMFORTKASSE_BASE_URL}:${apiKey}`, () =>
    createUpstreamClient({
      upstream: UPSTREAM,
      baseUrl: env.KOMFORTKASSE_BASE_URL,
      headers: { 'X-Komfortkasse-API-Key': apiKey, Accept: 'application/json' },
      timeoutMs: env.KOMFORTKASSE_TIMEOUT_MS,
      retryLimit: env.UPSTREAM_RETRY_LIMIT,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
    }),
  );
}

const orderPath = (orderNumber: string) => `order/${encodeURIComponent(orderNumber)}`;
const removePath = (orderNumber: string) => `order/remove/${encodeURIComponent(orderNumber)}`;

/** The request a submit would send (dry-run records it; the API key is never part of it). */
export function describeSubmit(orderNumber: string, payload: KomfortkasseOrder): DescribedRequest {
  return { method: 'POST', url: `${config().KOMFORTKASSE_BASE_URL}/${orderPath(orderNumber)}`, body: payload };
}

export function describeRemove(orderNumber: string): DescribedRequest {
  return { method: 'POST', url: `${config().KOMFORTKASSE_BASE_URL}/${removePath(orderNumber)}` };
}

/** Submit or update (Komfortkasse upserts by order number). */
export async function submitOrder(orderNumber: string, payload: KomfortkasseOrder): Promise<CallResult<KomfortkasseOrderResponse>> {
  const api = await client();
  const started = performance.now();
  try {
    const response = await api.post(orderPath(orderNumber), { json: payload });
    const body = komfortkasseOrderResponseSchema.safeParse(await response.json().catch(() => undefined));
    if (!body.success) {
      // Komfortkasse accepted the order; an odd answer must not make us submit it again.
      return { status: response.status, latencyMs: elapsed(started), body: { number: orderNumber } as KomfortkasseOrderResponse };
    }
    return { status: response.status, latencyMs: elapsed(started), body: body.data };
  } catch (error) {
    throw withLatency(await toUpstreamError(UPSTREAM, error), started);
  }
}

/** Marks the order DISAPPEARED. 404 means it is already gone — success. */
export async function removeOrder(orderNumber: string): Promise<CallResult<{ alreadyGone: boolean }>> {
  const api = await client();
  const started = performance.now();
  try {
    const response = await api.post(removePath(orderNumber));
    return { status: response.status, latencyMs: elapsed(started), body: { alreadyGone: false } };
  } catch (error) {
    const upstream = await toUpstreamError(UPSTREAM, error);
    if (upstream.status === 404) return { status: 404, latencyMs: elapsed(started), body: { alreadyGone: true } };
    throw withLatency(upstream, started);
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

export interface TimedUpstreamError extends UpstreamError {
  latencyMs?: number;
}

function withLatency(error: UpstreamError, started: number): TimedUpstreamError {
  (error as TimedUpstreamError).latencyMs = elapsed(started);
  return error;
}
