import * as z from 'zod';

/**
 * VersaCommerce order shapes (seed 002). Real payloads are loose: ids arrive as numbers
 * or numeric strings, money as decimal strings, optional fields as null. The schemas keep
 * unknown keys so a snapshot round-trips through the queue unchanged.
 */
const numericId = z.union([
  z.number().int().nonnegative(),
  z.string().trim().regex(/^\d+$/, 'must be a numeric id').transform(Number),
]);

const optionalText = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));

export const moneySchema = z.union([
  z.number().finite(),
  z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, 'must be a decimal amount like "15.94"')
    .transform(Number)
    // 400 digits parse as Infinity: no amount any upstream could take.
    .pipe(z.number().finite('must be a finite amount')),
]);

export const versaCommerceAddressSchema = z.looseObject({
  title: optionalText,
  firstname: optionalText,
  lastname: optionalText,
  company: optionalText,
  street: optionalText,
  streetnumber: optionalText,
  extension: optionalText,
  zipcode: optionalText,
  city: optionalText,
  country: optionalText,
  phone: optionalText,
  email: optionalText,
});

export const versaCommerceItemSchema = z.looseObject({
  id: numericId.optional(),
  code: optionalText,
  product_id: optionalText,
  title: optionalText,
  subtitle: optionalText,
  quantity: z.union([z.number(), z.string()]).nullish(),
});

export const versaCommerceShipmentSchema = z.looseObject({
  tracking_code: optionalText,
  tracking_number: optionalText,
});

/** The order's nested customer (seed 002); only the email is read, the rest is kept as is. */
export const versaCommerceCustomerSchema = z.looseObject({
  email: optionalText,
});

export const ORDER_STATUSES = ['open', 'in_progress', 'canceled', 'closed', 'returned'] as const;

export const versaCommerceOrderSchema = z.looseObject({
  id: numericId,
  code: z.string().trim().min(1, 'order code must not be empty'),
  status: z.string().trim().min(1).optional().default('open'),
  payment_type: z.string().trim().nullish(),
  payment_status: z.string().nullish(),
  total: moneySchema,
  currency: z.string().trim().min(1),
  created_at: z.string().trim().min(1),
  updated_at: z.string().nullish(),
  checkout_locale: optionalText,
  customer_email: optionalText,
  customer_id: optionalText,
  external_invoicing_id: optionalText,
  shop_id: optionalText,
  /** Marketplace the order came from (e.g. amazon) and its order number there (seed 002 create parameters). */
  origin_name: optionalText,
  origin_id: optionalText,
  customer: versaCommerceCustomerSchema.nullish(),
  billing_address: versaCommerceAddressSchema.nullish(),
  shipping_address: versaCommerceAddressSchema.nullish(),
  items: z.array(versaCommerceItemSchema).nullish(),
  shipments: z.array(versaCommerceShipmentSchema).nullish(),
});

export type VersaCommerceOrder = z.infer<typeof versaCommerceOrderSchema>;
export type VersaCommerceAddress = z.infer<typeof versaCommerceAddressSchema>;

/** `{"order": {...}}` — the order webhook and GET /api/orders/{id}.json body. */
export const orderEnvelopeSchema = z.object({ order: versaCommerceOrderSchema });

/** The list endpoint answers an array of `{"order": …}`. */
export const orderListSchema = z.array(orderEnvelopeSchema);

/** VersaCommerce notification: `subject` names the order id; `body` is not trusted. */
export const notificationSubjectPattern = /^\s*(create|update|cancel|delete|destroy)\s+order\s*:\s*(\d+)\s*$/i;

export const notificationEnvelopeSchema = z.looseObject({
  from: z.string().optional(),
  to: z.string().optional(),
  subject: z
    .string()
    .regex(notificationSubjectPattern, 'subject must look like "create order: 37578"'),
  shop_id: z.union([z.string(), z.number()]).optional(),
  subscription_id: z.union([z.string(), z.number()]).optional(),
  domain: z.string().optional(),
  body: z.unknown().optional(),
});

export type NotificationEnvelope = z.infer<typeof notificationEnvelopeSchema>;

export function orderIdFromSubject(subject: string): number | undefined {
  const match = notificationSubjectPattern.exec(subject);
  return match?.[2] === undefined ? undefined : Number(match[2]);
}

/**
 * Parses VersaCommerce timestamps, including the seed's malformed
 * `2013-03-19T12 =>39 =>51+01 =>00` (a YAML-ish `:` → ` =>` mangling), the Rails forms
 * `2013-03-19 12:39:51 +0100` / `… UTC`, and RFC 2822 dates. A timestamp without a zone
 * (`2016-09-09 12:32`, `2013-03-19`) is the shop's wall-clock time in Europe/Berlin,
 * never the host's zone. Impossible dates (`2013-02-30`) and garbage give `undefined`.
 */
export function parseVersaCommerceDate(value: string): Date | undefined {
  const repaired = value
    .trim()
    .replace(/\s*=>\s*/g, ':')
    .replace(/^(\d{4}-\d{2}-\d{2})[ Tt]+/, '$1T');
  const iso = ISO_LIKE.exec(repaired);
  if (iso) return fromIsoParts(iso);
  // RFC 2822 and similar, only when a month name and a 4-digit year are spelled out.
  if (/\b\d{4}\b/.test(repaired) && MONTH_NAME.test(repaired)) {
    const date = new Date(repaired);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  return undefined;
}

const ISO_LIKE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i;
const MONTH_NAME = /\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b/i;

function fromIsoParts(match: RegExpExecArray): Date | undefined {
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = fraction === '' ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const wallClock = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (new Date(wallClock).getUTCDate() !== day) return undefined; // e.g. 2013-02-30
  let utc: number;
  if (zone === undefined) {
    utc = berlinWallClockToUtc(wallClock);
  } else if (/^(z|utc|gmt)$/i.test(zone)) {
    utc = wallClock;
  } else {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMinutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (offsetHours > 14 || offsetMinutes > 59) return undefined;
    utc = wallClock - sign * (offsetHours * 60 + offsetMinutes) * 60_000;
  }
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const berlinParts = new Intl.DateTimeFormat('en-US', {
  timeZone: 'Europe/Berlin',
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

/** Berlin's UTC offset in ms at the instant `utc`. */
function berlinOffsetMs(utc: number): number {
  const parts: Record<string, number> = {};
  for (const part of berlinParts.formatToParts(new Date(utc))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const asUtc = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return asUtc - (utc - (((utc % 1000) + 1000) % 1000));
}

/** Converts a Berlin wall-clock time (encoded as if it were UTC) to the real instant. */
function berlinWallClockToUtc(wallClock: number): number {
  const first = wallClock - berlinOffsetMs(wallClock);
  const second = wallClock - berlinOffsetMs(first);
  return second;
}

/**
 * Orders two VersaCommerce timestamps (e.g. `updated_at`): negative when `a` is earlier,
 * positive when later, undefined when either is absent or unparseable.
 */
export function compareVersaCommerceDates(a: string | null | undefined, b: string | null | undefined): number | undefined {
  const da = a ? parseVersaCommerceDate(a) : undefined;
  const db = b ? parseVersaCommerceDate(b) : undefined;
  return da && db ? da.getTime() - db.getTime() : undefined;
}
