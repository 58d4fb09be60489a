import * as z from 'zod';
import {
  isJsonContentType,
  json,
  noContent,
  startSimulatorServer,
  cloneJson,
  type SimRequest,
  type SimResponse,
  type Simulator,
  type SimulatorOptions,
} from './server.ts';

/**
 * Komfortkasse API v2 simulator (seeds 000 and 001): submit/update and remove orders, plus
 * the read-only `GET /order/{n}` and `GET /orders?paymentStatus=…&maxAge=…` of the full API v2.
 *
 * Validation is deliberately strict — stricter than the docs spell out — so that anything
 * our client sends which the real service might reject (nulls, unknown or read-only
 * fields, sloppy formats) fails loudly in tests instead of in production.
 */

export interface KomfortkasseSimulatorOptions extends SimulatorOptions {
  apiKey?: string;
  /** requests per second it accepts; see {@link KomfortkasseRateLimit} */
  requestsPerSecond?: number;
}

/**
 * A rate limit like an API gateway's: at most `requestsPerSecond` requests are accepted in
 * any one second (a sliding window; refused ones do not count), every other request is
 * answered 429 `{"error":"Too many requests"}` with `Retry-After: 1`, before anything else
 * is looked at. Set `requestsPerSecond` (or `POST /__sim/rate-limit {"requestsPerSecond":n|null}`
 * from another process); `throttled` counts the 429s.
 */
export interface KomfortkasseRateLimit {
  requestsPerSecond?: number;
  throttled: number;
}

export interface StoredKomfortkasseOrder {
  number: string;
  referenceNumber: string;
  paymentStatus: 'UNPAID' | 'DISAPPEARED' | (string & {});
  /** The last accepted request body. */
  body: KomfortkasseOrderRequest;
  submitCount: number;
  removeCount: number;
  removed: boolean;
  /**
   * Whether automatic reminders are off: the last submit that carried `stopReminder` set it;
   * a submit without the field keeps it (false until one says otherwise).
   */
  remindersStopped: boolean;
  /** initialDunningLevel of the creating submission (honoured only then). */
  initialDunningLevel?: number;
  createdAt: string;
  updatedAt: string;
  removedAt?: string;
}

export interface KomfortkasseSimulator extends Simulator {
  apiKey: string;
  orders: Map<string, StoredKomfortkasseOrder>;
  rateLimit: KomfortkasseRateLimit;
  /**
   * Plants an order as an earlier integration (another shop plugin) would have left it:
   * it exists before Orderbridge ever submits it. `createdAt` drives `GET /orders?maxAge`.
   */
  seedOrder(order: SeededKomfortkasseOrder): StoredKomfortkasseOrder;
}

export interface SeededKomfortkasseOrder {
  number: string;
  /** the body it was created with; must pass the same validation as a submit */
  body: Record<string, unknown>;
  paymentStatus?: StoredKomfortkasseOrder['paymentStatus'];
  referenceNumber?: string;
  createdAt?: Date | string;
}

// ---------------------------------------------------------------------------
// Request schema (seed 000 body, field list of seed 001).

const DATE_PATTERN = /^(\d{2})-(\d{2})-(\d{4})$/;

/** dd-MM-yyyy naming a day that exists (31-02-2018 matches the pattern but is no date). */
function isCalendarDate(value: string): boolean {
  const match = DATE_PATTERN.exec(value);
  if (!match) return false;
  const [day, month, year] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const dateField = z.string().refine(isCalendarDate, 'must be dd-MM-yyyy');

/** "Format: 0.00" — at most two decimals, i.e. the value survives rounding to cents. */
const hasAtMostTwoDecimals = (value: number) => Number(value.toFixed(2)) === value;

const addressSchema = z
  .strictObject({
    gender: z.enum(['male', 'female', 'company', 'unknown']).optional(),
    firstName: z.string().optional(),
    lastName: z.string().optional(),
    company: z.string().optional(),
    street: z.string().optional(),
    postCode: z.string().optional(),
    city: z.string().optional(),
    countryCode: z.string().regex(/^[A-Z]{2}$/, 'must be a 2-letter ISO country code'),
    phone: z.string().optional(),
  })
  .refine((address) => Boolean(address.lastName?.trim() || address.company?.trim()), {
    message: 'needs lastName or company',
  });

const stringList = z.array(z.string());

export const komfortkasseOrderRequestSchema = z.strictObject({
  date: dateField,
  dueDate: dateField.optional(),
  customerEmail: z.string().regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address').optional(),
  customerNumber: z.string().optional(),
  type: z.enum(['INVOICE', 'PREPAYMENT', 'COD', 'OTHER']),
  marketplaceNumber: z.string().optional(),
  paymentMethod: z.string().optional(),
  paymentMethodDescription: z.string().optional(),
  statusDescription: z.string().optional(),
  amount: z
    .number()
    .nonnegative('must not be negative')
    .refine(hasAtMostTwoDecimals, 'must have at most 2 decimals'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like EUR'),
  exchangeRate: z.number().positive('must be greater than 0').optional(),
  language: z.string().regex(/^[a-z]{2}(-[A-Z]{2})?$/, 'must be an ISO language like de or de-DE').optional(),
  itemNumbers: stringList.optional(),
  items: z
    .array(
      z.strictObject({
        number: z.string().refine((value) => value.trim().length > 0, 'must not be empty'),
        name: z.string().optional(),
      }),
    )
    .optional(),
  invoiceNumbers: stringList.optional(),
  shippingNumbers: stringList.optional(),
  proformaNumbers: stringList.optional(),
  billing: addressSchema,
  shipping: addressSchema.optional(),
  initialDunningLevel: z.number().int('must be an integer').nonnegative('must not be negative').optional(),
  // A real boolean only: "true" or null would be a client bug the real service may misread.
  stopReminder: z.boolean().optional(),
});

export type KomfortkasseOrderRequest = z.infer<typeof komfortkasseOrderRequestSchema>;

/** Response-only fields (seed 001 marks them read-only); sending one is a client bug. */
const READ_ONLY_FIELDS = [
  'number',
  'referenceNumber',
  'paymentStatus',
  'bankAccount',
  'dunningLevel',
  'amountPaid',
  'postings',
  'collectionPartner',
  'collectionFile',
  'collectionStatus',
  'collectionHistory',
  'paymentReminders',
  'refunds',
  'hasBankDetailsForRefund',
] as const;

/** The seed's include* query flags; anything but true/false is a client bug. */
const includeFlag = z.enum(['true', 'false']).optional();
const includeQuerySchema = z.object({
  includePostings: includeFlag,
  includeCollectionHistory: includeFlag,
  includePaymentReminders: includeFlag,
  includeRefunds: includeFlag,
});

// ---------------------------------------------------------------------------
// Error messages in the upstream's shape: {"error":"Invalid request: <reason>"}.

/** Turns zod's generic messages into short "<path> <reason>" phrases. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'unrecognized_keys' && issue.input === undefined) return 'is required';
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === null) return 'must not be null (omit the field instead)';
      return `must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'unrecognized_keys':
      return `has unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    default:
      return undefined;
  }
};

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'} ${issue.message}`)
    .join('; ');
}

const invalid = (reason?: string): SimResponse =>
  json(400, { error: reason ? `Invalid request: ${reason}` : 'Invalid request' });

const notFound = (): SimResponse => json(404, { error: 'Not found' });

// ---------------------------------------------------------------------------

type Route = { kind: 'submit' | 'remove'; orderNumber: string } | { kind: 'list' };

/** `GET /orders` filters: a comma-separated status list and an age in days (default 120). */
const listQuerySchema = z.object({
  paymentStatus: z.string().regex(/^[A-Z_]+(,[A-Z_]+)*$/, 'must be a comma-separated list like UNPAID,PAID_PARTIAL').optional(),
  maxAge: z.string().regex(/^\d+$/, 'must be a whole number of days').optional(),
});

/** Maps a path to a route; undefined means 404. The base path is /api/v2 as in production. */
function matchRoute(path: string): Route | undefined {
  if (path === '/api/v2/orders') return { kind: 'list' };
  const match = /^\/api\/v2\/order\/(?:(remove)\/)?([^/]+)$/.exec(path);
  if (!match?.[2]) return undefined;
  let orderNumber: string;
  try {
    orderNumber = decodeURIComponent(match[2]);
  } catch {
    return undefined;
  }
  // "/order/remove" alone is the remove endpoint without a number, not an order called "remove".
  if (!match[1] && orderNumber === 'remove') return undefined;
  return { kind: match[1] ? 'remove' : 'submit', orderNumber };
}

export async function startKomfortkasseSimulator(
  options: KomfortkasseSimulatorOptions = {},
): Promise<KomfortkasseSimulator> {
  const apiKey = options.apiKey ?? 'local-komfortkasse-key';
  const orders = new Map<string, StoredKomfortkasseOrder>();
  let referenceSequence = 0;

  const checkApiKey = (req: SimRequest): SimResponse | undefined => {
    const given = req.headers['x-komfortkasse-api-key'];
    if (given === undefined || given === '') return json(401, { error: 'API Key missing' });
    if (given !== apiKey) return json(401, { error: 'Invalid API Key' });
    return undefined;
  };

  /** The order as the API returns it: last body plus read-only fields (and requested lists). */
  const present = (order: StoredKomfortkasseOrder, req: SimRequest): Record<string, unknown> => {
    const view: Record<string, unknown> = {
      ...cloneJson(order.body),
      number: order.number,
      referenceNumber: order.referenceNumber,
      paymentStatus: order.paymentStatus,
    };
    // The simulator never books payments, so requested lists are present but empty.
    if (req.query.includePostings === 'true') {
      view.postings = [];
      view.hasBankDetailsForRefund = false;
    }
    if (req.query.includePaymentReminders === 'true') view.paymentReminders = [];
    if (req.query.includeRefunds === 'true') view.refunds = [];
    // includeCollectionHistory only applies while a collection is active, which never happens here.
    return view;
  };

  const submit = (req: SimRequest, orderNumber: string): SimResponse => {
    if (!isJsonContentType(req.headers)) return invalid('Content-Type must be application/json');
    if (!req.isJson) return invalid('body must be valid JSON');
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return invalid('body must be a JSON object');
    }
    const readOnly = READ_ONLY_FIELDS.filter((field) => field in body);
    if (readOnly.length > 0) return invalid(`${readOnly.join(', ')} ${readOnly.length > 1 ? 'are' : 'is'} read-only`);

    const parsed = komfortkasseOrderRequestSchema.safeParse(body, { error: errorMap });
    if (!parsed.success) return invalid(describeIssues(parsed.error.issues));
    const request = parsed.data;

    const now = new Date().toISOString();
    const existing = orders.get(orderNumber);
    if (existing) {
      // Seed 000: honoured only on the first submission; on updates it must be omitted or 0.
      if ((request.initialDunningLevel ?? 0) > 0) {
        return invalid('initialDunningLevel only allowed when creating an order');
      }
      existing.body = request;
      existing.remindersStopped = request.stopReminder ?? existing.remindersStopped;
      existing.submitCount += 1;
      existing.updatedAt = now;
      // Re-submitting a removed order brings it back under management; an update of one it
      // manages keeps what it knows of the payment (an earlier integration's PAID stays PAID).
      if (existing.removed) existing.paymentStatus = 'UNPAID';
      existing.removed = false;
      delete existing.removedAt;
      return json(200, present(existing, req));
    }

    referenceSequence += 1;
    const created: StoredKomfortkasseOrder = {
      number: orderNumber,
      referenceNumber: `K${String(100000 + referenceSequence)}`,
      paymentStatus: 'UNPAID',
      body: request,
      submitCount: 1,
      removeCount: 0,
      removed: false,
      remindersStopped: request.stopReminder ?? false,
      ...(request.initialDunningLevel !== undefined ? { initialDunningLevel: request.initialDunningLevel } : {}),
      createdAt: now,
      updatedAt: now,
    };
    orders.set(orderNumber, created);
    return json(200, present(created, req));
  };

  const remove = (req: SimRequest, orderNumber: string): SimResponse => {
    const order = orders.get(orderNumber);
    if (!order) return json(404, { error: 'Order not found' });
    const now = new Date().toISOString();
    order.removed = true;
    order.removeCount += 1;
    order.paymentStatus = 'DISAPPEARED';
    order.removedAt ??= now;
    order.updatedAt = now;
    return json(200, present(order, req));
  };

  /** `GET /order/{n}`: the order with its read-only fields, or 404. Changes nothing. */
  const read = (req: SimRequest, orderNumber: string): SimResponse => {
    const order = orders.get(orderNumber);
    return order ? json(200, present(order, req)) : json(404, { error: 'Order not found' });
  };

  /** `GET /orders?paymentStatus=…&maxAge=…`: every match at once (the API does not page). */
  const list = (req: SimRequest): SimResponse => {
    const query = listQuerySchema.safeParse(req.query);
    if (!query.success) return invalid(describeIssues(query.error.issues));
    const statuses = query.data.paymentStatus?.split(',');
    const maxAgeDays = query.data.maxAge === undefined ? 120 : Number(query.data.maxAge);
    const oldest = Date.now() - maxAgeDays * 86_400_000;
    const matches = [...orders.values()].filter(
      (order) => (!statuses || statuses.includes(order.paymentStatus)) && Date.parse(order.createdAt) >= oldest,
    );
    return json(200, matches.map((order) => present(order, req)));
  };

  const rateLimit: KomfortkasseRateLimit = { requestsPerSecond: options.requestsPerSecond, throttled: 0 };
  /** arrival times (ms) of the requests accepted in the last second */
  let accepted: number[] = [];
  const overRateLimit = (): boolean => {
    const limit = rateLimit.requestsPerSecond;
    if (limit === undefined) return false;
    const now = performance.now();
    accepted = accepted.filter((at) => at > now - 1000);
    if (accepted.length >= limit) {
      rateLimit.throttled += 1;
      return true;
    }
    accepted.push(now);
    return false;
  };

  const handle = (req: SimRequest): SimResponse => {
    if (overRateLimit()) return json(429, { error: 'Too many requests' }, { 'retry-after': '1' });
    const route = matchRoute(req.path);
    if (!route) return notFound();
    const allowed = route.kind === 'list' ? ['GET'] : route.kind === 'remove' ? ['POST'] : ['GET', 'POST'];
    if (!allowed.includes(req.method)) return json(405, { error: 'Method not allowed' }, { allow: allowed.join(', ') });
    const authError = checkApiKey(req);
    if (authError) return authError;
    if (route.kind === 'list') return list(req);
    const query = includeQuerySchema.safeParse(req.query, { error: errorMap });
    if (!query.success) return invalid(describeIssues(query.error.issues));
    if (route.kind === 'remove') return remove(req, route.orderNumber);
    return req.method === 'GET' ? read(req, route.orderNumber) : submit(req, route.orderNumber);
  };

  const seedOrder = (seed: SeededKomfortkasseOrder): StoredKomfortkasseOrder => {
    const body = komfortkasseOrderRequestSchema.parse(seed.body);
    const createdAt = seed.createdAt === undefined ? new Date().toISOString() : new Date(seed.createdAt).toISOString();
    referenceSequence += 1;
    const order: StoredKomfortkasseOrder = {
      number: seed.number,
      referenceNumber: seed.referenceNumber ?? `K${String(100000 + referenceSequence)}`,
      paymentStatus: seed.paymentStatus ?? 'UNPAID',
      body,
      // Orderbridge never sent these: the counts start at zero.
      submitCount: 0,
      removeCount: 0,
      removed: seed.paymentStatus === 'DISAPPEARED',
      remindersStopped: body.stopReminder ?? false,
      ...(body.initialDunningLevel !== undefined ? { initialDunningLevel: body.initialDunningLevel } : {}),
      createdAt,
      updatedAt: createdAt,
    };
    orders.set(seed.number, order);
    return order;
  };

  const rateLimitInputSchema = z.strictObject({ requestsPerSecond: z.number().positive().nullable() });
  /** `POST /__sim/rate-limit {"requestsPerSecond": n | null}` sets or lifts the limit from another process. */
  const control = (req: SimRequest): SimResponse | undefined => {
    if (req.method !== 'POST' || req.path !== '/__sim/rate-limit') return undefined;
    const parsed = rateLimitInputSchema.safeParse(req.body);
    if (!parsed.success) return json(400, { error: `Invalid rate limit: ${z.prettifyError(parsed.error)}` });
    rateLimit.requestsPerSecond = parsed.data.requestsPerSecond ?? undefined;
    return noContent();
  };

  const simulator = await startSimulatorServer({
    name: 'Komfortkasse',
    host: options.host,
    port: options.port,
    basePath: '/api/v2',
    handle,
    control,
    dumpState: () => ({ orders: Object.fromEntries(orders), rateLimit }),
    resetState: () => {
      orders.clear();
      referenceSequence = 0;
      // Back to the limit it was started with; the window and the count start afresh.
      rateLimit.requestsPerSecond = options.requestsPerSecond;
      rateLimit.throttled = 0;
      accepted = [];
    },
  });

  return { ...simulator, apiKey, orders, rateLimit, seedOrder };
}
