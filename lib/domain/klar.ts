import * as z from './schema.ts';
import { OrderbridgeError } from './errors.ts';

/**
 * Klar transaction costs API (seed 003): request/response shapes, INVALID error mapping
 * and the state endpoint's reading.
 */

/** Klar accepts up to this many TransactionCosts per POST. */
export const KLAR_MAX_BATCH = 1000;

/**
 * One order's cost as uploaded. Optional fields are omitted when unknown: Klar rejects
 * them when present with an invalid value (e.g. `cancelledAt: 0`), so null/0/"" fail here.
 */
export const transactionCostsSchema = z.strictObject({
  orderId: z.string().check(z.regex(/\S/, 'orderId must be a non-empty string')),
  transactionCosts: z.number().check(z.gte(0)),
  currency: z.optional(z.string().check(z.regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code such as EUR'))),
  cancelledAt: z.optional(z.iso.datetime({ offset: true })),
});
export type TransactionCosts = z.infer<typeof transactionCostsSchema>;

/** 201 answer. */
export const klarValidResponseSchema = z.looseObject({ status: z.literal('VALID') });
export type KlarValidResponse = z.infer<typeof klarValidResponseSchema>;

export const klarErrorSchema = z.looseObject({
  id: z.optional(z.union([z.number(), z.string()])),
  /** `"<index>.<field>"` into the request array, e.g. `"0.orderId"`. */
  key: z.string(),
  message: z.string(),
  value: z.optional(z.unknown()),
});
export type KlarError = z.infer<typeof klarErrorSchema>;

/** 400 answer: the whole request was rejected. */
export const klarInvalidResponseSchema = z.looseObject({
  status: z.literal('INVALID'),
  errors: z.array(klarErrorSchema),
});
export type KlarInvalidResponse = z.infer<typeof klarInvalidResponseSchema>;

export const klarResponseSchema = z.discriminatedUnion('status', [klarValidResponseSchema, klarInvalidResponseSchema]);
export type KlarResponse = z.infer<typeof klarResponseSchema>;

export type KlarBodyWrapper = 'items' | 'array';

/**
 * The POST body. The seed says "a JSON object containing an array", without naming the
 * key, so the shape is configuration (KLAR_BODY_WRAPPER): `{items:[…]}` or the bare array.
 */
export function klarBody(costs: TransactionCosts[], wrapper: 'items'): { items: TransactionCosts[] };
export function klarBody(costs: TransactionCosts[], wrapper: 'array'): TransactionCosts[];
export function klarBody(
  costs: TransactionCosts[],
  wrapper: KlarBodyWrapper,
): { items: TransactionCosts[] } | TransactionCosts[];
export function klarBody(
  costs: TransactionCosts[],
  wrapper: KlarBodyWrapper,
): { items: TransactionCosts[] } | TransactionCosts[] {
  if (costs.length > KLAR_MAX_BATCH) {
    throw new RangeError(`Klar accepts at most ${KLAR_MAX_BATCH} transaction costs per request, got ${costs.length}`);
  }
  return wrapper === 'items' ? { items: costs } : costs;
}

/**
 * Parses an INVALID error key back to the request array position: `"3.orderId"`, and
 * tolerantly `"items.3.orderId"`, `"[3].orderId"`, `"items[3].orderId"`, `"3"` (field "").
 */
export function indexOfErrorKey(key: string): { index: number; field: string } | undefined {
  const match = /^(?:items(?:\.|(?=\[)))?(?:\[(\d+)\]|(\d+))(?:\.([\w$]+(?:\.[\w$]+)*))?$/.exec(key.trim());
  if (match === null) return undefined;
  const index = Number(match[1] ?? match[2]);
  if (!Number.isSafeInteger(index)) return undefined;
  return { index, field: match[3] ?? '' };
}

/**
 * Maps INVALID errors back to the orders of the request: `invalid` holds each rejected
 * orderId with its message(s) joined by "; "; `unmatched` the errors whose key names no
 * position of `costs` (as `"<key>: <message>"`). Error values are never copied (they
 * may echo data), only Klar's messages.
 */
export function mapInvalidErrors(
  costs: readonly TransactionCosts[],
  errors: readonly Pick<KlarError, 'key' | 'message'>[],
): { invalid: Map<string, string>; unmatched: string[] } {
  const messages = new Map<string, string[]>();
  const unmatched: string[] = [];
  for (const error of errors) {
    const position = indexOfErrorKey(error.key);
    const cost = position === undefined ? undefined : costs[position.index];
    if (cost === undefined) {
      unmatched.push(`${error.key}: ${error.message}`);
      continue;
    }
    const list = messages.get(cost.orderId) ?? [];
    if (!list.includes(error.message)) list.push(error.message);
    messages.set(cost.orderId, list);
  }
  const invalid = new Map<string, string>();
  for (const [orderId, list] of messages) invalid.set(orderId, list.join('; '));
  return { invalid, unmatched };
}

// ---------------------------------------------------------------------------------------
// GET /transaction-costs/state

/** The state reading is unusable (not an object, or a field that is neither absent nor parseable). */
export class InvalidKlarStateError extends OrderbridgeError {
  readonly fields: string[];
  constructor(message: string, fields: string[], options?: { cause?: unknown }) {
    super(message, 'permanent', options);
    this.fields = fields;
  }
}

/** null and "" read as absent. */
const absent = z.pipe(z.union([z.null(), z.literal('')]), z.transform(() => undefined));

/** A count sent as a number or as a numeric string ("9"). */
const count = z.union([
  absent,
  z.number().check(z.int('must be a whole number'), z.gte(0)),
  z.pipe(z.string().check(z.regex(/^\s*\d+\s*$/, 'must be a whole number')), z.transform((s: string) => Number(s))),
]);

const TIMESTAMP =
  /^(\d{4}-\d{2}-\d{2})(?:\s*[T\s]\s*(\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;
const isoDate = z.iso.date();

/**
 * Reads Klar's timestamps: `"2023-03-11 T12:13:31.193Z"` (the seed's space before T),
 * normal ISO 8601, `"2023-03-11 12:13:31"` (no zone → UTC), a bare date (UTC midnight),
 * or epoch milliseconds as a number. Undefined when unparseable.
 */
export function parseKlarTimestamp(value: string | number): Date | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? new Date(value) : undefined;
  }
  const match = TIMESTAMP.exec(value.trim());
  if (match === null) return undefined;
  const [, day = '', time = '00:00:00', fraction = '', zone = 'Z'] = match;
  if (!isoDate.safeParse(day).success) return undefined; // Date.parse would roll 02-30 over
  const millis = fraction === '' ? '' : `.${fraction.slice(0, 3).padEnd(3, '0')}`;
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : normaliseOffset(zone);
  const parsed = new Date(`${day}T${time.length === 5 ? `${time}:00` : time}${millis}${offset}`);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

function normaliseOffset(zone: string): string {
  const digits = zone.slice(1).replace(':', '');
  return `${zone[0]}${digits.slice(0, 2)}:${digits.length > 2 ? digits.slice(2) : '00'}`;
}

const timestamp = z.union([
  absent,
  z.pipe(
    z.union([z.string(), z.number()]),
    z.transform((value: string | number, ctx) => {
      const parsed = parseKlarTimestamp(value);
      if (parsed === undefined) {
        // (what classic zod's ctx.addIssue pushed; a zod/mini transform's ctx has no addIssue)
        ctx.issues.push({ code: 'custom', message: 'must be a timestamp', input: value });
        return z.NEVER;
      }
      return parsed;
    }),
  ),
]);

/** The state endpoint's raw fields; unknown fields are dropped. */
export const klarStateSchema = z.object({
  total: z.optional(count),
  lastBatchCount: z.optional(count),
  lastSuccess: z.optional(timestamp),
  lastFailure: z.optional(timestamp),
});

export type KlarState = {
  total?: number;
  lastBatchCount?: number;
  lastSuccess?: Date;
  lastFailure?: Date;
  /** lastFailure is newer than lastSuccess, or there is a failure and no success at all. */
  failing: boolean;
  /** Whole seconds from lastSuccess to `now` (0 if the clocks disagree); absent without lastSuccess. */
  secondsSinceLastSuccess?: number;
};

/** Whole seconds from `date` to `now`, never negative (clock skew reads as 0). */
export function secondsSince(date: Date, now: Date): number {
  return Math.max(0, Math.floor((now.getTime() - date.getTime()) / 1000));
}

/**
 * Parses a `GET /transaction-costs/state` body. Missing (or null/"") fields → undefined.
 * @throws InvalidKlarStateError naming the fields that cannot be read.
 */
export function parseKlarState(raw: unknown, now: Date = new Date()): KlarState {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const kind = raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw;
    throw new InvalidKlarStateError(`Klar state is not a JSON object (got ${kind})`, []);
  }
  const result = klarStateSchema.safeParse(raw);
  if (!result.success) {
    const fields = [...new Set(result.error.issues.map((issue) => String(issue.path[0] ?? '(root)')))];
    throw new InvalidKlarStateError(`Klar state has unreadable fields: ${fields.join(', ')}`, fields, {
      cause: result.error,
    });
  }
  const { total, lastBatchCount, lastSuccess, lastFailure } = result.data;
  const state: KlarState = {
    failing: lastFailure !== undefined && (lastSuccess === undefined || lastFailure.getTime() > lastSuccess.getTime()),
  };
  if (total !== undefined) state.total = total;
  if (lastBatchCount !== undefined) state.lastBatchCount = lastBatchCount;
  if (lastSuccess !== undefined) {
    state.lastSuccess = lastSuccess;
    state.secondsSinceLastSuccess = secondsSince(lastSuccess, now);
  }
  if (lastFailure !== undefined) state.lastFailure = lastFailure;
  return state;
}
