import * as z from 'zod';
import {
  cloneJson,
  json,
  noContent,
  startSimulatorServer,
  type SimRequest,
  type SimResponse,
  type Simulator,
  type SimulatorOptions,
} from './server.ts';

/**
 * VersaCommerce order API simulator (seed 002): list, count and fetch orders (read-only,
 * as the shop API is by default). Orders are whatever tests or the local stack put in via
 * `addOrder` / `POST /__sim/orders`; they are served back verbatim, malformed dates included.
 */

export interface VersaCommerceSimulatorOptions extends SimulatorOptions {
  apiKey?: string;
  password?: string;
}

export type VersaCommerceOrderData = Record<string, unknown>;

export interface VersaCommerceSimulator extends Simulator {
  apiKey: string;
  password: string;
  orders: Map<number, VersaCommerceOrderData>;
  /** Upserts by id; accepts a bare order or `{"order":{…}}`. Returns the id. */
  addOrder(order: Record<string, unknown>): number;
  removeOrder(id: number): boolean;
}

export const DEFAULT_LIMIT = 150;
export const MAX_LIMIT = 250;

/** Nested associations the API only returns when asked for with `include=`. */
const ASSOCIATIONS = ['items', 'shipments', 'payments', 'histories'] as const;

/** The single-order endpoint always carries these (the sync worker needs them). */
const SINGLE_ORDER_ASSOCIATIONS = ['items', 'shipments'];

/** String filters compared verbatim against the order's field (seed 002 "Available Filters"). */
const EXACT_FILTERS = [
  'code',
  'status',
  'payment_status',
  'payment_type',
  'items_status',
  'shipping_type',
  'external_invoicing_id',
  'note',
  'coupon_value',
] as const;

/**
 * Parses VersaCommerce timestamps, tolerating the malformed form real shops send
 * ("2013-03-19T12 =>39 =>51+01 =>00" is "2013-03-19T12:39:51+01:00"). Returns epoch ms.
 */
export function parseVersaCommerceDate(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const ms = Date.parse(value.replace(/\s*=>\s*/g, ':'));
  return Number.isNaN(ms) ? undefined : ms;
}

// ---------------------------------------------------------------------------
// Query parameters (all arrive as strings).

const integerParam = (name: string) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a non-negative integer`)
    .transform(Number);

const decimalParam = (name: string) =>
  z
    .string()
    .regex(/^-?\d+(\.\d+)?$/, `${name} must be a decimal number`)
    .transform(Number);

const dateParam = (name: string) =>
  z
    .string()
    .refine((value) => parseVersaCommerceDate(value) !== undefined, `${name} must be a date or date-time`)
    .transform((value) => parseVersaCommerceDate(value) as number);

const querySchema = z.object({
  limit: integerParam('limit')
    .pipe(z.number().min(1, 'limit must be at least 1').max(MAX_LIMIT, `limit must be at most ${MAX_LIMIT}`))
    .optional(),
  offset: integerParam('offset').optional(),
  include: z.string().optional(),
  id_min: integerParam('id_min').optional(),
  id_max: integerParam('id_max').optional(),
  created_at_min: dateParam('created_at_min').optional(),
  created_at_max: dateParam('created_at_max').optional(),
  subtotal: decimalParam('subtotal').optional(),
  total: decimalParam('total').optional(),
  total_min: decimalParam('total_min').optional(),
  total_max: decimalParam('total_max').optional(),
  coupon_value_min: decimalParam('coupon_value_min').optional(),
  coupon_value_max: decimalParam('coupon_value_max').optional(),
  code: z.string().optional(),
  status: z.string().optional(),
  payment_status: z.string().optional(),
  payment_type: z.string().optional(),
  items_status: z.string().optional(),
  shipping_type: z.string().optional(),
  external_invoicing_id: z.string().optional(),
  note: z.string().optional(),
  coupon_value: z.string().optional(),
} satisfies Record<(typeof EXACT_FILTERS)[number], z.ZodType> & Record<string, z.ZodType>);

type OrderQuery = z.infer<typeof querySchema>;

// ---------------------------------------------------------------------------
// Filtering and shaping.

const numberOf = (value: unknown): number | undefined => {
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(number) ? number : undefined;
};

function withinRange(value: number | undefined, min: number | undefined, max: number | undefined): boolean {
  if (min === undefined && max === undefined) return true;
  if (value === undefined) return false;
  return (min === undefined || value >= min) && (max === undefined || value <= max);
}

function matchesExact(order: VersaCommerceOrderData, field: string, wanted: string): boolean {
  const actual = order[field];
  // "open_or_in_progress" is the shop's own shorthand for both unfinished states.
  if (field === 'status' && wanted === 'open_or_in_progress') return actual === 'open' || actual === 'in_progress';
  return actual !== null && actual !== undefined && String(actual) === wanted;
}

function matchesQuery(order: VersaCommerceOrderData, query: OrderQuery): boolean {
  for (const field of EXACT_FILTERS) {
    const wanted = query[field];
    if (wanted !== undefined && !matchesExact(order, field, wanted)) return false;
  }
  const id = numberOf(order.id);
  const total = numberOf(order.total);
  const couponValue = numberOf(order.coupon_value);
  if (query.subtotal !== undefined && numberOf(order.subtotal) !== query.subtotal) return false;
  if (query.total !== undefined && total !== query.total) return false;
  return (
    withinRange(id, query.id_min, query.id_max) &&
    withinRange(total, query.total_min, query.total_max) &&
    withinRange(couponValue, query.coupon_value_min, query.coupon_value_max) &&
    // created_at_min = created at or after; created_at_max = at or before.
    withinRange(parseVersaCommerceDate(order.created_at), query.created_at_min, query.created_at_max)
  );
}

function parseInclude(include: string | undefined): string[] {
  return (include ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}

/** A copy of the order with only the requested associations nested (missing ones as []). */
function project(order: VersaCommerceOrderData, include: string[]): VersaCommerceOrderData {
  const view = cloneJson(order);
  for (const association of ASSOCIATIONS) {
    if (include.includes(association)) view[association] ??= [];
    else delete view[association];
  }
  return view;
}

/** Accepts `{…order}` or `{"order":{…}}`; the id must be a non-negative integer (or numeric string). */
function unwrapOrder(input: unknown): { id: number; order: VersaCommerceOrderData } {
  const candidate =
    typeof input === 'object' && input !== null && 'order' in input && !('id' in input)
      ? (input as { order: unknown }).order
      : input;
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    throw new TypeError('order must be an object');
  }
  const order = candidate as VersaCommerceOrderData;
  const id = numberOf(order.id);
  if (id === undefined || !Number.isSafeInteger(id) || id < 0) {
    throw new TypeError('order.id must be a non-negative integer');
  }
  // The data is kept verbatim (a string id stays a string); only the map key is numeric.
  return { id, order: cloneJson(order) };
}

function firstMessage(error: z.ZodError): string {
  return error.issues.map((issue) => issue.message).join('; ');
}

// ---------------------------------------------------------------------------

export async function startVersaCommerceSimulator(
  options: VersaCommerceSimulatorOptions = {},
): Promise<VersaCommerceSimulator> {
  const apiKey = options.apiKey ?? 'local-vc-key';
  const password = options.password ?? 'local-vc-password';
  const orders = new Map<number, VersaCommerceOrderData>();

  const addOrder = (input: Record<string, unknown>): number => {
    const { id, order } = unwrapOrder(input);
    orders.set(id, order);
    return id;
  };
  const removeOrder = (id: number): boolean => orders.delete(id);

  const isAuthorized = (req: SimRequest): boolean => {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) return false;
    return Buffer.from(match[1], 'base64').toString('utf8') === `${apiKey}:${password}`;
  };

  const sortedMatches = (query: OrderQuery): VersaCommerceOrderData[] =>
    [...orders.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, order]) => order)
      .filter((order) => matchesQuery(order, query));

  const parseQuery = (req: SimRequest): { ok: true; query: OrderQuery } | { ok: false; response: SimResponse } => {
    const parsed = querySchema.safeParse(req.query);
    if (!parsed.success) return { ok: false, response: json(400, { error: firstMessage(parsed.error) }) };
    return { ok: true, query: parsed.data };
  };

  const listOrders = (req: SimRequest): SimResponse => {
    const parsed = parseQuery(req);
    if (!parsed.ok) return parsed.response;
    const { query } = parsed;
    const offset = query.offset ?? 0;
    const limit = query.limit ?? DEFAULT_LIMIT;
    const include = parseInclude(query.include);
    const page = sortedMatches(query).slice(offset, offset + limit);
    return json(
      200,
      page.map((order) => ({ order: project(order, include) })),
    );
  };

  const countOrders = (req: SimRequest): SimResponse => {
    const parsed = parseQuery(req);
    if (!parsed.ok) return parsed.response;
    // A count covers every match; limit/offset only page the list.
    return json(200, { count: sortedMatches(parsed.query).length });
  };

  const getOrder = (req: SimRequest, id: number): SimResponse => {
    const order = orders.get(id);
    if (!order) return json(404, { error: 'Not found' });
    const include = [...SINGLE_ORDER_ASSOCIATIONS, ...parseInclude(req.query.include)];
    return json(200, { order: project(order, include) });
  };

  const handle = (req: SimRequest): SimResponse => {
    if (!req.path.startsWith('/api/')) return json(404, { error: 'Not found' });
    if (!isAuthorized(req)) {
      return json(401, { error: 'Unauthorized' }, { 'www-authenticate': 'Basic realm="VersaCommerce"' });
    }

    const single = /^\/api\/orders\/(\d+)\.json$/.exec(req.path);
    const route =
      req.path === '/api/orders.json'
        ? () => listOrders(req)
        : req.path === '/api/orders/count.json'
          ? () => countOrders(req)
          : single
            ? () => getOrder(req, Number(single[1]))
            : undefined;
    if (!route) return json(404, { error: 'Not found' });
    // Order resources are read-only by default (seed 002), so only GET is served.
    if (req.method !== 'GET') return json(405, { error: 'Method not allowed' }, { allow: 'GET' });
    return route();
  };

  /** `POST /__sim/orders` upserts one order, `{"order":{…}}` or an array; `DELETE /__sim/orders/:id`. */
  const control = (req: SimRequest): SimResponse | undefined => {
    if (req.method === 'POST' && req.path === '/__sim/orders') {
      const inputs: unknown[] = Array.isArray(req.body) ? req.body : [req.body];
      try {
        const parsed = inputs.map(unwrapOrder);
        for (const { id, order } of parsed) orders.set(id, order);
      } catch (error) {
        return json(400, { error: (error as Error).message });
      }
      return noContent();
    }
    const remove = /^\/__sim\/orders\/(\d+)$/.exec(req.path);
    if (req.method === 'DELETE' && remove) {
      return removeOrder(Number(remove[1])) ? noContent() : json(404, { error: 'Not found' });
    }
    return undefined;
  };

  const simulator = await startSimulatorServer({
    name: 'VersaCommerce',
    host: options.host,
    port: options.port,
    handle,
    control,
    dumpState: () => ({ orders: [...orders.entries()].sort(([a], [b]) => a - b).map(([, order]) => order) }),
    resetState: () => orders.clear(),
  });

  return { ...simulator, apiKey, password, orders, addOrder, removeOrder };
}
