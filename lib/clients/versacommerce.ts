import type { KyInstance } from 'ky';
import { config, forgetSecret, requiredSecret } from '../config/index.ts';
import { ConfigError, OrderVanishedError, UpstreamError } from '../domain/errors.ts';
import { orderCountSchema, orderEnvelopeSchema, orderListSchema, type VersaCommerceOrder } from '../domain/versacommerce.ts';
import { createUpstreamClient, toUpstreamError, type CallOptions } from './http.ts';
import { memoized } from './registry.ts';

const UPSTREAM = 'VersaCommerce';

async function client(): Promise<KyInstance> {
  const env = config();
  if (!env.VERSACOMMERCE_BASE_URL) {
    throw new ConfigError('VERSACOMMERCE_BASE_URL is not set: cannot fetch orders from the shop', ['VERSACOMMERCE_BASE_URL']);
  }
  const [key, password] = await Promise.all([requiredSecret('VERSACOMMERCE_API_KEY'), requiredSecret('VERSACOMMERCE_API_PASSWORD')]);
  const baseUrl = `${env.VERSACOMMERCE_BASE_URL}/api`;
  return memoized(`versacommerce:${baseUrl}:${key}:${password}:${env.UPSTREAM_TOTAL_TIMEOUT_MS}`, () =>
    createUpstreamClient({
      upstream: UPSTREAM,
      baseUrl,
      headers: {
        Authorization: `Basic ${Buffer.from(`${key}:${password}`).toString('base64')}`,
        Accept: 'application/json',
      },
      timeoutMs: 10_000,
      totalTimeoutMs: env.UPSTREAM_TOTAL_TIMEOUT_MS,
      retryLimit: env.UPSTREAM_RETRY_LIMIT,
      retryBaseMs: env.UPSTREAM_RETRY_BASE_MS,
    }),
  );
}

export interface FetchedOrder {
  order: VersaCommerceOrder;
  raw: Record<string, unknown>;
}

/** A 401/403 means the key or password was refused: read both again next time. */
const credentialsRefused = () => forgetSecret('VERSACOMMERCE_API_KEY', 'VERSACOMMERCE_API_PASSWORD');

/**
 * GET /api/orders/{id}.json with items and shipments; the answer is validated here.
 * A 404 means the order vanished from the shop (e.g. after "delete order: <id>").
 */
export async function fetchOrder(orderId: number, options: CallOptions = {}): Promise<FetchedOrder> {
  const api = await client();
  let json: unknown;
  try {
    json = await api.get(`orders/${orderId}.json`, { searchParams: { include: 'items,shipments' }, signal: options.signal }).json();
  } catch (error) {
    const upstream = toUpstreamError(UPSTREAM, error, credentialsRefused);
    if (upstream.status === 404) throw new OrderVanishedError(orderId, { cause: upstream });
    throw upstream;
  }
  const parsed = orderEnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    throw new UpstreamError(UPSTREAM, `order ${orderId} from the shop does not match the schema: ${parsed.error.issues[0]?.message}`, 'permanent');
  }
  return { order: parsed.data.order, raw: (json as { order: Record<string, unknown> }).order };
}

/**
 * GET /api/orders/count.json: proves the shop API answers with these credentials (a 404 for
 * one order then means that order is gone, not that the URL or a proxy is wrong).
 */
export async function countOrders(options: CallOptions = {}): Promise<number> {
  const api = await client();
  let json: unknown;
  try {
    json = await api.get('orders/count.json', { signal: options.signal }).json();
  } catch (error) {
    throw toUpstreamError(UPSTREAM, error, credentialsRefused);
  }
  const parsed = orderCountSchema.safeParse(json);
  if (!parsed.success) throw new UpstreamError(UPSTREAM, 'orders/count.json did not answer a count', 'transient');
  return parsed.data.count;
}

export interface ListOrdersQuery {
  limit: number;
  /** only orders with an id at or above this one (`id_min`): how reconcile pages */
  idMin?: number;
  offset?: number;
  createdAtMin?: string;
  /** only the order with this code (the order number Komfortkasse knows it by) */
  code?: string;
  include?: string;
}

export interface OrderPage {
  orders: FetchedOrder[];
  invalid: { raw: unknown; reason: string }[];
  /** entries on the page, valid or not: fewer than `limit` means the last page */
  pageSize: number;
  /** the highest order id on the page, invalid entries included: the next page starts above it */
  lastId?: number;
}

/**
 * One page of GET /api/orders.json (the shop lists by ascending id). Orders that fail the
 * schema are returned separately so one bad order cannot hide the rest of the page.
 */
export async function listOrders(query: ListOrdersQuery, options: CallOptions = {}): Promise<OrderPage> {
  const api = await client();
  const searchParams: Record<string, string | number> = { limit: query.limit };
  if (query.idMin !== undefined) searchParams.id_min = query.idMin;
  if (query.offset !== undefined) searchParams.offset = query.offset;
  if (query.createdAtMin) searchParams.created_at_min = query.createdAtMin;
  if (query.code !== undefined) searchParams.code = query.code;
  if (query.include) searchParams.include = query.include;
  let json: unknown;
  try {
    json = await api.get('orders.json', { searchParams, signal: options.signal }).json();
  } catch (error) {
    throw toUpstreamError(UPSTREAM, error, credentialsRefused);
  }
  if (!Array.isArray(json)) throw new UpstreamError(UPSTREAM, 'orders.json did not answer a list', 'permanent');
  const orders: FetchedOrder[] = [];
  const invalid: { raw: unknown; reason: string }[] = [];
  let lastId: number | undefined;
  for (const entry of json) {
    const rawId = (entry as { order?: { id?: unknown } } | null)?.order?.id;
    const id = typeof rawId === 'number' ? rawId : typeof rawId === 'string' && /^\d{1,15}$/.test(rawId) ? Number(rawId) : undefined;
    if (id !== undefined && Number.isSafeInteger(id) && (lastId === undefined || id > lastId)) lastId = id;
    const parsed = orderListSchema.element.safeParse(entry);
    if (parsed.success) orders.push({ order: parsed.data.order, raw: (entry as { order: Record<string, unknown> }).order });
    else invalid.push({ raw: entry, reason: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
  }
  return { orders, invalid, pageSize: json.length, ...(lastId === undefined ? {} : { lastId }) };
}
