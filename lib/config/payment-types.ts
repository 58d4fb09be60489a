import { ConfigError } from '../domain/errors.ts';
import {
  DEFAULT_PAYMENT_TYPE_MAP,
  PAYMENT_TARGETS,
  normalizePaymentType,
  paymentTypeMapSchema,
  type PaymentTarget,
  type PaymentTypeMap,
} from '../domain/payment-types.ts';

export const PAYMENT_TYPE_MAP_VARIABLE = 'PAYMENT_TYPE_MAP';

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
