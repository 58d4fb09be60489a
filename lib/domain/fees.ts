import type { FeeRule, FeeSchedule } from './fee-schedule.ts';
import { InvalidMessageError, OrderbridgeError } from './errors.ts';
import { toIsoCurrency } from './currency.ts';
import { parseVersaCommerceDate } from './shop-dates.ts';
import { berlinCalendarDate } from './berlin-time.ts';

export { berlinCalendarDate };

/** No rule of the fee schedule covers this payment type/currency/date: fix the configuration. */
export class UnknownPaymentTypeError extends OrderbridgeError {
  readonly paymentType: string;
  readonly currency: string;
  /** Europe/Berlin calendar date of the order, YYYY-MM-DD. */
  readonly date: string;
  constructor(paymentType: string, currency: string, date: string) {
    super(`no fee rule for payment type "${paymentType}" in ${currency} on ${date}`, 'permanent');
    this.paymentType = paymentType;
    this.currency = currency;
    this.date = date;
  }
}

export interface FeeInput {
  /** VersaCommerce `payment_type`; matched case-insensitively. */
  paymentType: string;
  /** Order total in currency units. */
  total: number;
  /** ISO 4217 code. */
  currency: string;
  orderDate: Date;
}

/**
 * The payment/transaction cost of one order in currency units, rounded half-up to cents.
 *
 * Rule choice: among the rules whose paymentType (exact or "*"), currency (exact or unset)
 * and validity window (inclusive, on the order's Europe/Berlin calendar date) match, the
 * most specific wins — an exact paymentType beats "*", then an exact currency beats an
 * unset one — and among equally specific rules the latest validFrom (unset = oldest).
 *
 * Cost: fixed + total × percent / 100, clamped to [min, max], rounded half-up to cents.
 * Computed with exact decimal arithmetic on the numbers' shortest decimal forms, so
 * 1 % of 100.50 is 1.01 (not 1.00 as `Math.round(1.005 * 100) / 100` would give).
 *
 * total ≤ 0 → 0, without looking for a rule: a zero total (e.g. fully paid by voucher)
 * means no payment transaction took place, and a negative total is a refund/credit, whose
 * cost (if any) belongs to the original order — Klar has no negative costs (≥ 0) and no
 * separate refund orders, so charging the fixed fee or the minimum there would invent a cost.
 *
 * @throws UnknownPaymentTypeError when no rule matches (permanent: fix FEE_SCHEDULE).
 * @throws InvalidMessageError when total is not a finite number or orderDate is invalid.
 */
export function feeFor(input: FeeInput, schedule: FeeSchedule): number {
  if (!Number.isFinite(input.total)) {
    throw new InvalidMessageError(`order total must be a finite number, got ${String(input.total)}`);
  }
  if (Number.isNaN(input.orderDate.getTime())) {
    throw new InvalidMessageError('order date is not a valid date');
  }
  if (input.total <= 0) return 0;

  const paymentType = input.paymentType.trim().toLowerCase();
  const currency = input.currency.trim().toUpperCase();
  const date = berlinCalendarDate(input.orderDate);
  const rule = pickRule(schedule.rules, paymentType, currency, date);
  if (rule === undefined) throw new UnknownPaymentTypeError(paymentType, currency, date);
  return costOf(rule, input.total);
}

/** The rule feeFor would use, or undefined. Exported for diagnostics (CLI, history). */
export function pickRule(
  rules: readonly FeeRule[],
  paymentType: string,
  currency: string,
  date: string,
): FeeRule | undefined {
  let best: FeeRule | undefined;
  let bestRank: [number, number, string] | undefined;
  for (const rule of rules) {
    const ruleType = rule.paymentType.trim().toLowerCase();
    const ruleCurrency = rule.currency?.trim().toUpperCase();
    if (ruleType !== paymentType && ruleType !== '*') continue;
    if (ruleCurrency !== undefined && ruleCurrency !== currency) continue;
    if (rule.validFrom !== undefined && date < rule.validFrom) continue;
    if (rule.validTo !== undefined && date > rule.validTo) continue;
    // '' sorts before every YYYY-MM-DD: an open start is the oldest.
    const rank: [number, number, string] = [
      ruleType === paymentType ? 1 : 0,
      ruleCurrency !== undefined ? 1 : 0,
      rule.validFrom ?? '',
    ];
    if (bestRank === undefined || isBetter(rank, bestRank)) {
      best = rule;
      bestRank = rank;
    }
  }
  return best;
}

function isBetter(a: [number, number, string], b: [number, number, string]): boolean {
  if (a[0] !== b[0]) return a[0] > b[0];
  if (a[1] !== b[1]) return a[1] > b[1];
  return a[2] > b[2]; // ties keep the earlier rule
}

/** An exact non-negative decimal: value = units / 10^scale. */
interface Decimal {
  units: bigint;
  scale: number;
}

function decimal(value: number): Decimal {
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/i.exec(String(Math.abs(value)));
  if (match === null) throw new RangeError(`not a finite number: ${value}`);
  const [, int = '0', frac = '', exp = '0'] = match;
  let units = BigInt(int + frac);
  let scale = frac.length - Number(exp);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units, scale };
}

/** units rescaled to `scale` (≥ d.scale). */
function at(d: Decimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

function costOf(rule: FeeRule, total: number): number {
  const fixed = decimal(rule.fixed);
  const amount = decimal(total);
  const percent = decimal(rule.percent);
  const min = rule.min === undefined ? undefined : decimal(rule.min);
  const max = rule.max === undefined ? undefined : decimal(rule.max);

  // Everything in cents over 10^scale: fixed × 100 + total × percent (the /100 and ×100 cancel).
  const productScale = amount.scale + percent.scale;
  const scale = Math.max(fixed.scale, productScale, min?.scale ?? 0, max?.scale ?? 0);
  let cents = at(fixed, scale) * 100n + amount.units * percent.units * 10n ** BigInt(scale - productScale);
  if (min !== undefined && cents < at(min, scale) * 100n) cents = at(min, scale) * 100n;
  if (max !== undefined && cents > at(max, scale) * 100n) cents = at(max, scale) * 100n;

  // Half-up to whole cents (all values are ≥ 0).
  const denominator = 10n ** BigInt(scale);
  const rounded = (cents * 2n + denominator) / (denominator * 2n);
  return Number(rounded) / 100;
}

/**
 * An order's Klar cost as the workers and reconcile see it: the currency as ISO 4217 (`€`
 * → EUR) and the fee for its payment type on its creation date. Throws as feeFor does.
 */
export function orderCost(
  order: { paymentType: string; total: number; currency: string; createdAt: string },
  schedule: FeeSchedule,
): { transactionCosts: number; currency: string } {
  const currency = toIsoCurrency(order.currency) ?? order.currency;
  const orderDate = parseVersaCommerceDate(order.createdAt) ?? new Date(NaN);
  return { currency, transactionCosts: feeFor({ paymentType: order.paymentType, total: order.total, currency, orderDate }, schedule) };
}
