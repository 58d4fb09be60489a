import * as z from 'zod';
import { ConfigError } from '../domain/errors.ts';

/**
 * Which VersaCommerce `payment_type` becomes which Komfortkasse order `type`. This is
 * configuration: the operator's `PAYMENT_TYPE_MAP` (JSON object) is merged over the
 * default below. `SKIP` — and any payment type absent from the table — is never sent.
 */
export const PAYMENT_TARGETS = ['INVOICE', 'PREPAYMENT', 'COD', 'SKIP'] as const;
export type PaymentTarget = (typeof PAYMENT_TARGETS)[number];
export type KomfortkassePaymentType = Exclude<PaymentTarget, 'SKIP'>;

export const paymentTargetSchema = z
  .string()
  .trim()
  .toUpperCase()
  .pipe(z.enum(PAYMENT_TARGETS, { error: `must be one of ${PAYMENT_TARGETS.join(', ')}` }));

export const paymentTypeMapSchema = z.record(z.string().trim().min(1, 'payment type must not be empty'), paymentTargetSchema);
export type PaymentTypeMap = Readonly<Record<string, PaymentTarget>>;

export const PAYMENT_TYPE_MAP_VARIABLE = 'PAYMENT_TYPE_MAP';

export const DEFAULT_PAYMENT_TYPE_MAP: PaymentTypeMap = Object.freeze({
  cod: 'COD',
  invoice: 'INVOICE',
  prepayment: 'PREPAYMENT',
  bank_deposit: 'PREPAYMENT',
  money_transfer: 'PREPAYMENT',
  paypal: 'SKIP',
  paypal_plus: 'SKIP',
  paypal_express: 'SKIP',
  cc: 'SKIP',
  credit_card: 'SKIP',
  creditcard: 'SKIP',
  sofort: 'SKIP',
  instant_transfer: 'SKIP',
  klarna: 'SKIP',
  amazon_pay: 'SKIP',
  apple_pay: 'SKIP',
  google_pay: 'SKIP',
  stripe: 'SKIP',
});

/** Payment types are compared trimmed and case-insensitively. */
export function normalizePaymentType(paymentType: string): string {
  return paymentType.trim().toLowerCase();
}

/**
 * Parses the operator's `PAYMENT_TYPE_MAP` and merges it over the default table.
 * Unset or blank → the default. Invalid JSON, a non-object or an unknown target value →
 * `ConfigError` naming the variable.
 */
export function parsePaymentTypeMap(json: string | undefined): PaymentTypeMap {
  if (json === undefined || json.trim() === '') return DEFAULT_PAYMENT_TYPE_MAP;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(
      `${PAYMENT_TYPE_MAP_VARIABLE} is not valid JSON: expected an object like {"cod":"COD","paypal":"SKIP"}`,
      [PAYMENT_TYPE_MAP_VARIABLE],
      { cause: error },
    );
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      `${PAYMENT_TYPE_MAP_VARIABLE} must be a JSON object mapping payment types to ${PAYMENT_TARGETS.join(', ')}`,
      [PAYMENT_TYPE_MAP_VARIABLE],
    );
  }
  const result = paymentTypeMapSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.length > 0 ? `"${issue.path.map(String).join('.')}"` : 'value';
      return `${key}: ${issue.message}`;
    });
    throw new ConfigError(`${PAYMENT_TYPE_MAP_VARIABLE} is invalid — ${problems.join('; ')}`, [PAYMENT_TYPE_MAP_VARIABLE], {
      cause: result.error,
    });
  }
  const merged: Record<string, PaymentTarget> = { ...DEFAULT_PAYMENT_TYPE_MAP };
  for (const [paymentType, target] of Object.entries(result.data)) {
    merged[normalizePaymentType(paymentType)] = target;
  }
  return Object.freeze(merged);
}

/** The Komfortkasse order type for a payment type, or `undefined` when it is not sent. */
export function komfortkasseTypeFor(
  paymentType: string | null | undefined,
  map: PaymentTypeMap = DEFAULT_PAYMENT_TYPE_MAP,
): KomfortkassePaymentType | undefined {
  if (paymentType === null || paymentType === undefined) return undefined;
  const key = normalizePaymentType(paymentType);
  if (key === '' || !Object.hasOwn(map, key)) return undefined;
  const target = map[key];
  return target === undefined || target === 'SKIP' ? undefined : target;
}

/** Readable payment method names for Komfortkasse's informational `paymentMethodDescription`. */
export const PAYMENT_METHOD_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  cod: 'Nachnahme',
  invoice: 'Rechnung',
  prepayment: 'Vorkasse',
  bank_deposit: 'Vorkasse (Überweisung)',
  money_transfer: 'Vorkasse (Überweisung)',
});

export function paymentMethodDescriptionFor(paymentType: string | null | undefined): string | undefined {
  if (paymentType === null || paymentType === undefined) return undefined;
  const key = normalizePaymentType(paymentType);
  return Object.hasOwn(PAYMENT_METHOD_DESCRIPTIONS, key) ? PAYMENT_METHOD_DESCRIPTIONS[key] : undefined;
}
