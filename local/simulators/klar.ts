import * as z from 'zod';
import {
  cloneJson,
  isJsonContentType,
  json,
  noContent,
  startSimulatorServer,
  type SimRequest,
  type SimResponse,
  type Simulator,
  type SimulatorOptions,
} from './server.ts';

/**
 * Klar transaction-costs simulator (seed 003).
 *
 * Klar validates a whole upload at once: one bad entry rejects the request with a list of
 * `{id, key: "<index>.<field>", message, value}` errors, and nothing is stored. The state
 * endpoint answers in Klar's odd format (numbers as strings, "2023-03-11 T12:13:31.193Z").
 */

export interface KlarSimulatorOptions extends SimulatorOptions {
  token?: string;
  /** API version path segment the simulator accepts. */
  version?: string;
}

export interface StoredKlarCost {
  orderId: string;
  transactionCosts: number;
  currency?: string;
  cancelledAt?: string;
  paymentMethod?: string;
  /** How many accepted uploads carried this orderId. */
  uploadCount: number;
  lastUploadedAt: string;
}

/** The state endpoint's body, already in Klar's wire format; absent fields never happened. */
export interface KlarState {
  total?: string;
  lastBatchCount?: string;
  lastSuccess?: string;
  lastFailure?: string;
}

/** What tests may set: numbers or numeric strings, Dates or timestamp strings; null clears. */
export interface KlarStateInput {
  total?: number | string | null;
  lastBatchCount?: number | string | null;
  lastSuccess?: Date | string | null;
  lastFailure?: Date | string | null;
}

export interface KlarValidationError {
  id: number;
  key: string;
  message: string;
  value?: unknown;
}

export interface KlarSimulator extends Simulator {
  token: string;
  version: string;
  costs: Map<string, StoredKlarCost>;
  /** Accepted POSTs so far. */
  readonly uploads: number;
  /** Current state in wire format (a copy). */
  readonly state: KlarState;
  setState(partial: KlarStateInput): void;
}

export const KLAR_MAX_BATCH = 1000;

// ---------------------------------------------------------------------------
// TransactionCosts schema. Messages name the field, as Klar's do ("orderId must be a string").

/** Builds the type-error message for a field; null gets its own hint (the seed: omit, never null/0). */
const typeError =
  (field: string, expected: string) =>
  (issue: { input: unknown }): string => {
    if (issue.input === undefined) return `${field} is required`;
    if (issue.input === null) return `${field} must not be null (omit it instead)`;
    return `${field} must be ${expected}`;
  };

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/** ISO 8601 date-time with an offset, naming a real instant (2024-02-30T… is rejected). */
function isIsoDateTime(value: string): boolean {
  if (!ISO_DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) return false;
  // Date.parse rolls 2024-02-30 over to March; the calendar part must survive a round trip.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

export const klarTransactionCostsSchema = z.strictObject({
  orderId: z
    .string({ error: typeError('orderId', 'a string') })
    .refine((value) => value.trim().length > 0, 'orderId must not be empty'),
  transactionCosts: z
    .number({ error: typeError('transactionCosts', 'a number') })
    .nonnegative('transactionCosts must not be negative'),
  currency: z
    .string({ error: typeError('currency', 'a string') })
    .regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code like EUR')
    .optional(),
  cancelledAt: z
    .string({ error: typeError('cancelledAt', 'an ISO 8601 date-time string') })
    .refine(isIsoDateTime, 'cancelledAt must be an ISO 8601 date-time string')
    .optional(),
  paymentMethod: z.string({ error: typeError('paymentMethod', 'a string') }).optional(),
});

export type KlarTransactionCosts = z.infer<typeof klarTransactionCostsSchema>;

// ---------------------------------------------------------------------------

/** "2023-03-11T12:13:31.193Z" → "2023-03-11 T12:13:31.193Z", exactly as seed 003 shows. */
export function toKlarTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' T');
}

function normalizeTimestamp(value: Date | string): string {
  if (value instanceof Date) return toKlarTimestamp(value);
  // Plain ISO strings are converted; anything else is stored verbatim so tests can feed odd data.
  return /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))
    ? toKlarTimestamp(new Date(value))
    : value;
}

const stateInputSchema = z.strictObject({
  total: z.union([z.number(), z.string()]).nullable().optional(),
  lastBatchCount: z.union([z.number(), z.string()]).nullable().optional(),
  lastSuccess: z.string().nullable().optional(),
  lastFailure: z.string().nullable().optional(),
});

type ValidationResult = { ok: true; items: KlarTransactionCosts[] } | { ok: false; errors: Omit<KlarValidationError, 'id'>[] };

/** Unwraps `{"items":[…]}` or a bare array and validates every entry. */
function validateUpload(body: unknown): ValidationResult {
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  // Only a wrapper that has `items` gets per-key complaints; any other object is "not a list".
  const extraKeys = isObject && 'items' in body ? Object.keys(body).filter((key) => key !== 'items') : [];
  if (extraKeys.length > 0) {
    return {
      ok: false,
      errors: extraKeys.map((key) => ({ key, message: `${key} is not allowed`, value: (body as Record<string, unknown>)[key] })),
    };
  }
  const items: unknown = Array.isArray(body) ? body : isObject ? (body as { items?: unknown }).items : undefined;
  if (!Array.isArray(items)) {
    return { ok: false, errors: [{ key: 'items', message: 'items must be an array of TransactionCosts', value: items ?? null }] };
  }
  if (items.length < 1 || items.length > KLAR_MAX_BATCH) {
    return {
      ok: false,
      errors: [{ key: 'items', message: `items must contain 1 to ${KLAR_MAX_BATCH} entries`, value: items.length }],
    };
  }

  const errors: Omit<KlarValidationError, 'id'>[] = [];
  const valid: KlarTransactionCosts[] = [];
  items.forEach((item, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push({ key: String(index), message: 'must be a TransactionCosts object', value: item });
      return;
    }
    const parsed = klarTransactionCostsSchema.safeParse(item);
    if (parsed.success) {
      valid.push(parsed.data);
      return;
    }
    errors.push(...itemErrors(index, item as Record<string, unknown>, parsed.error.issues));
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, items: valid };
}

/** One error per bad field of entry `index` (zod may report several checks for one field). */
function itemErrors(
  index: number,
  item: Record<string, unknown>,
  issues: z.core.$ZodIssue[],
): Omit<KlarValidationError, 'id'>[] {
  const byField = new Map<string, Omit<KlarValidationError, 'id'>>();
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        byField.set(key, { key: `${index}.${key}`, message: `${key} is not allowed`, value: item[key] });
      }
      continue;
    }
    const field = String(issue.path[0] ?? '');
    if (!byField.has(field)) {
      byField.set(field, { key: `${index}.${field}`, message: issue.message, value: item[field] });
    }
  }
  return [...byField.values()];
}

export async function startKlarSimulator(options: KlarSimulatorOptions = {}): Promise<KlarSimulator> {
  const token = options.token ?? 'local-klar-token';
  const version = options.version ?? '06.2024';
  const costs = new Map<string, StoredKlarCost>();
  let state: KlarState = {};
  let uploads = 0;
  let totalCount = 0;
  let errorSequence = 0;

  const setState = (partial: KlarStateInput): void => {
    const next: KlarState = { ...state };
    for (const key of ['total', 'lastBatchCount'] as const) {
      const value = partial[key];
      if (value === null) delete next[key];
      else if (value !== undefined) next[key] = String(value);
    }
    for (const key of ['lastSuccess', 'lastFailure'] as const) {
      const value = partial[key];
      if (value === null) delete next[key];
      else if (value !== undefined) next[key] = normalizeTimestamp(value);
    }
    state = next;
    // Keep the running total consistent with a total set from outside.
    const total = Number(state.total);
    if (partial.total !== undefined) totalCount = Number.isFinite(total) ? total : 0;
  };

  const unauthorized = (message: string): SimResponse => json(401, { status: 'UNAUTHORIZED', message });

  const checkToken = (req: SimRequest): SimResponse | undefined => {
    const header = req.headers.authorization;
    if (!header) return unauthorized('Missing bearer token');
    const match = /^Bearer (.+)$/i.exec(header);
    if (!match) return unauthorized('Authorization must be a bearer token');
    if (match[1] !== token) return unauthorized('Invalid bearer token');
    return undefined;
  };

  const rejectUpload = (errors: Omit<KlarValidationError, 'id'>[]): SimResponse => {
    state = { ...state, lastFailure: toKlarTimestamp(new Date()) };
    return json(400, {
      status: 'INVALID',
      errors: errors.map((error) => ({ id: ++errorSequence, ...error })),
    });
  };

  const upload = (req: SimRequest): SimResponse => {
    if (!isJsonContentType(req.headers)) {
      return rejectUpload([
        { key: 'body', message: 'Content-Type must be application/json', value: req.headers['content-type'] ?? null },
      ]);
    }
    if (!req.isJson) {
      return rejectUpload([{ key: 'body', message: 'body must be valid JSON', value: req.rawBody.slice(0, 200) }]);
    }
    const result = validateUpload(req.body);
    if (!result.ok) return rejectUpload(result.errors);

    const now = new Date();
    for (const item of result.items) {
      const previous = costs.get(item.orderId);
      costs.set(item.orderId, {
        ...item,
        uploadCount: (previous?.uploadCount ?? 0) + 1,
        lastUploadedAt: now.toISOString(),
      });
    }
    uploads += 1;
    totalCount += result.items.length;
    state = {
      ...state,
      total: String(totalCount),
      lastBatchCount: String(result.items.length),
      lastSuccess: toKlarTimestamp(now),
    };
    return json(201, { status: 'VALID' });
  };

  const handle = (req: SimRequest): SimResponse => {
    const authError = checkToken(req);
    if (authError) return authError;

    const uploadRoute = /^\/([^/]+)\/transaction-costs\/json$/.exec(req.path);
    if (uploadRoute) {
      if (uploadRoute[1] !== version) {
        return json(404, { status: 'NOT_FOUND', message: `Unknown API version ${uploadRoute[1]}` });
      }
      if (req.method !== 'POST') return json(405, { status: 'METHOD_NOT_ALLOWED', message: 'Use POST' }, { allow: 'POST' });
      return upload(req);
    }
    // Seed 003 names both /transaction-costs/state and /transaction-costs/status, without a version.
    if (req.path === '/transaction-costs/state' || req.path === '/transaction-costs/status') {
      if (req.method !== 'GET') return json(405, { status: 'METHOD_NOT_ALLOWED', message: 'Use GET' }, { allow: 'GET' });
      return json(200, state);
    }
    return json(404, { status: 'NOT_FOUND', message: `No route for ${req.method} ${req.path}` });
  };

  /** `POST /__sim/state` sets the state from another process. */
  const control = (req: SimRequest): SimResponse | undefined => {
    if (req.method !== 'POST' || req.path !== '/__sim/state') return undefined;
    const parsed = stateInputSchema.safeParse(req.body);
    if (!parsed.success) return json(400, { error: `Invalid state: ${z.prettifyError(parsed.error)}` });
    setState(parsed.data);
    return noContent();
  };

  const simulator = await startSimulatorServer({
    name: 'Klar',
    host: options.host,
    port: options.port,
    handle,
    control,
    dumpState: () => ({ state, uploads, costs: Object.fromEntries(costs) }),
    resetState: () => {
      costs.clear();
      state = {};
      uploads = 0;
      totalCount = 0;
      errorSequence = 0;
    },
  });

  return {
    ...simulator,
    token,
    version,
    costs,
    get uploads() {
      return uploads;
    },
    get state() {
      return cloneJson(state);
    },
    setState,
  };
}
