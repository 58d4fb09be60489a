import type { KyInstance, RetryOptions } from 'ky';
import { config, forgetSecret, requiredSecret } from '../config/index.ts';
import { UpstreamError } from '../domain/errors.ts';
import {
  komfortkasseOrderListSchema,
  komfortkasseOrderResponseSchema,
  komfortkasseOrderViewSchema,
  type KomfortkasseOrder,
  type KomfortkasseOrderResponse,
  type KomfortkasseOrderView,
} from '../domain/komfortkasse.ts';
import { createUpstreamClient, isHTTPError, toUpstreamError, type CallOptions } from './http.ts';
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

/** Thrown by every call here: an UpstreamError (category decides retry) with the call's latency. */
export interface TimedUpstreamError extends UpstreamError {
  latencyMs?: number;
}

/** One ky instance per container and configuration (timeouts, DESIGN retry policy, API key). */
async function client(): Promise<KyInstance> {
  const env = config();
  const apiKey = await requiredSecret('KOMFORTKASSE_API_KEY');
  return memoized(`komfortkasse:${env.KOMFORTKASSE_BASE_URL}:${apiKey}:${env.KOMFORTKASSE_TIMEOUT_MS}:${env.UPSTREAM_TOTAL_TIMEOUT_MS}:${env.UPSTREAM_RETRY_LIMIT}:${env.UPSTREAM_RETRY_BASE_MS}`, () =>
    createUpstreamClient({
      upstream: UPSTREAM,
      baseUrl: env.KOMFORTKASSE_BASE_URL,
      headers: { 'X-Komfortkasse-API-Key': apiKey, Accept: 'application/json' },
      timeoutMs: env.KOMFORTKASSE_TIMEOUT_MS,
      totalTimeoutMs: env.UPSTREAM_TOTAL_TIMEOUT_MS,
      retryLimit: env.UPSTREAM_RETRY_LIMIT,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
    }),
  );
}

const orderPath = (orderNumber: string) => `order/${encodeURIComponent(orderNumber)}`;
const removePath = (orderNumber: string) => `order/remove/${encodeURIComponent(orderNumber)}`;

/**
 * True when Komfortkasse's answer proves it did not apply the request: it refused it (4xx)
 * or said it is unavailable (503). Timeouts, dropped connections and other 5xx (a gateway
 * may answer after the backend committed) leave it open whether the order was taken.
 */
export function provesNotApplied(error: unknown): boolean {
  const status = error instanceof UpstreamError ? error.status : undefined;
  return status !== undefined && (status < 500 || status === 503);
}

function notAppliedStatus(status: number): boolean {
  return status < 500 || status === 503;
}

/**
 * DESIGN: retry network errors, timeouts, 408/425/429 and every 5xx. A creating submission carries `initialDunningLevel`, which
 * Komfortkasse refuses on an existing order, so it is only retried when the answer proves
 * the try was not applied; otherwise the redelivery re-sends it without the level.
 */
function retryPolicy(creating: boolean): RetryOptions {
  return {
    shouldRetry: ({ error }) => {
      if (isHTTPError(error)) {
        const status = error.response.status;
        if (creating && !notAppliedStatus(status)) return false;
        return undefined; // the shared policy: status list, Retry-After
      }
      return creating ? false : undefined;
    },
  };
}

/** The request a submit would send (dry-run records it; the API key is never part of it). */
export function describeSubmit(orderNumber: string, payload: KomfortkasseOrder): DescribedRequest {
  return { method: 'POST', url: `${config().KOMFORTKASSE_BASE_URL}/${orderPath(orderNumber)}`, body: payload };
}

export function describeRemove(orderNumber: string): DescribedRequest {
  return { method: 'POST', url: `${config().KOMFORTKASSE_BASE_URL}/${removePath(orderNumber)}` };
}

/** A 401/403 means the key was refused: read it again (maybe rotated in SSM) next time. */
const keyRefused = () => forgetSecret('KOMFORTKASSE_API_KEY');

/** `POST /order/{number}`: submit or update (Komfortkasse upserts by order number). */
export async function submitOrder(orderNumber: string, payload: KomfortkasseOrder, options: CallOptions = {}): Promise<CallResult<KomfortkasseOrderResponse>> {
  const api = await client();
  const started = performance.now();
  try {
    const response = await api.post(orderPath(orderNumber), { json: payload, retry: retryPolicy(payload.initialDunningLevel !== undefined), signal: options.signal });
    return { status: response.status, latencyMs: elapsed(started), body: parseOrderResponse(await readJson(response), orderNumber) };
  } catch (error) {
    throw withLatency(toUpstreamError(UPSTREAM, error, keyRefused), started);
  }
}

/** `POST /order/remove/{number}`: marks the order DISAPPEARED. 404 means already gone — success. */
export async function removeOrder(orderNumber: string, options: CallOptions = {}): Promise<CallResult<{ alreadyGone: boolean; order?: KomfortkasseOrderResponse }>> {
  const api = await client();
  const started = performance.now();
  try {
    const response = await api.post(removePath(orderNumber), { retry: retryPolicy(false), signal: options.signal });
    return { status: response.status, latencyMs: elapsed(started), body: { alreadyGone: false, order: parseOrderResponse(await readJson(response), orderNumber) } };
  } catch (error) {
    const upstream = toUpstreamError(UPSTREAM, error, keyRefused);
    if (upstream.status === 404) return { status: 404, latencyMs: elapsed(started), body: { alreadyGone: true } };
    throw withLatency(upstream, started);
  }
}

/**
 * `GET /order/{number}`: the order as Komfortkasse holds it, or undefined when it holds none
 * (404). Read-only; 401/403 throw an UpstreamAuthError like every call here.
 */
export async function getKomfortkasseOrder(orderNumber: string, options: CallOptions = {}): Promise<KomfortkasseOrderView | undefined> {
  const api = await client();
  let json: unknown;
  try {
    json = await api.get(orderPath(orderNumber), { signal: options.signal }).json();
  } catch (error) {
    const upstream = toUpstreamError(UPSTREAM, error, keyRefused);
    if (upstream.status === 404) return undefined;
    throw upstream;
  }
  const parsed = komfortkasseOrderViewSchema.safeParse(json);
  if (!parsed.success) throw new UpstreamError(UPSTREAM, `GET order ${orderNumber} answered an unreadable order`, 'transient');
  return parsed.data;
}

/** Payment statuses Komfortkasse still dunns: what reconcile re-checks against the shop. */
export const OPEN_PAYMENT_STATUSES = ['UNPAID', 'PAID_PARTIAL'] as const;

/**
 * `GET /orders?paymentStatus=UNPAID,PAID_PARTIAL&maxAge=<days>`: every open order, at once
 * (the API does not page; `maxAge` defaults to 120 days there). An entry without a
 * number is passed over: there is nothing to re-check it by.
 */
export async function listOpenKomfortkasseOrders(query: { maxAgeDays?: number } = {}, options: CallOptions = {}): Promise<KomfortkasseOrderView[]> {
  const api = await client();
  const searchParams: Record<string, string> = { paymentStatus: OPEN_PAYMENT_STATUSES.join(',') };
  if (query.maxAgeDays !== undefined) searchParams.maxAge = String(query.maxAgeDays);
  let json: unknown;
  try {
    json = await api.get('orders', { searchParams, signal: options.signal }).json();
  } catch (error) {
    throw toUpstreamError(UPSTREAM, error, keyRefused);
  }
  const list = komfortkasseOrderListSchema.safeParse(json);
  if (!list.success) throw new UpstreamError(UPSTREAM, 'GET orders did not answer a list', 'transient');
  return list.data.flatMap((entry) => {
    const order = komfortkasseOrderViewSchema.safeParse(entry);
    return order.success ? [order.data] : [];
  });
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/**
 * Komfortkasse answered 2xx, so the call took effect: an odd body must not turn that into
 * a failure (which would repeat the call), so it falls back to the order number alone.
 */
function parseOrderResponse(json: unknown, orderNumber: string): KomfortkasseOrderResponse {
  const parsed = komfortkasseOrderResponseSchema.safeParse(json);
  return parsed.success ? parsed.data : komfortkasseOrderResponseSchema.parse({ number: orderNumber });
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

function withLatency(error: UpstreamError, started: number): TimedUpstreamError {
  (error as TimedUpstreamError).latencyMs = elapsed(started);
  return error;
}
