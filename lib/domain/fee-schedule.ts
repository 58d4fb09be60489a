import * as z from './schema.ts';

/**
 * The payment fee schedule: what each payment method costs the shop per order, as Klar
 * wants it (seed 003, `transactionCosts`). It is configuration, not code: lib/config fills it
 * from `FEE_SCHEDULE` (a JSON document `{"rules":[…]}`); unset or empty → DEFAULT_FEE_SCHEDULE.
 *
 * A rule costs `fixed + total × percent / 100`, clamped to [min, max], rounded half-up to
 * cents (see lib/domain/fees.ts for how the most specific rule is picked).
 */

const amount = z.number().check(z.gte(0));

export const feeRuleSchema = z
  .strictObject({
    /** VersaCommerce `payment_type` ("paypal", "cod", "invoice", …); "*" matches any. Case-insensitive. */
    paymentType: z.string().check(z.trim(), z.toLowerCase(), z.minLength(1, 'must be a VersaCommerce payment_type or "*"')),
    /** ISO 4217 code; absent = any currency. */
    currency: z.optional(z.string().check(z.trim(), z.toUpperCase(), z.regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'))),
    /** Fixed part in currency units (0.35 = 35 cents). */
    fixed: amount,
    /** Percentage of the order total (2.49 = 2.49 %). */
    percent: z.number().check(z.gte(0), z.lte(100)),
    /** Lower bound of the cost in currency units. */
    min: z.optional(amount),
    /** Upper bound of the cost in currency units (≥ min). */
    max: z.optional(amount),
    /** First day the rule applies (Europe/Berlin calendar date of the order), inclusive. */
    validFrom: z.optional(z.iso.date('must be a date YYYY-MM-DD')),
    /** Last day the rule applies, inclusive (≥ validFrom). */
    validTo: z.optional(z.iso.date('must be a date YYYY-MM-DD')),
  })
  .check(
    z.superRefine((rule, ctx) => {
      if (rule.min !== undefined && rule.max !== undefined && rule.max < rule.min) {
        ctx.addIssue({ code: 'custom', path: ['max'], message: `must be ≥ min (${rule.min})` });
      }
      if (rule.validFrom !== undefined && rule.validTo !== undefined && rule.validTo < rule.validFrom) {
        ctx.addIssue({ code: 'custom', path: ['validTo'], message: `must be on or after validFrom (${rule.validFrom})` });
      }
    }),
  );

export const feeScheduleSchema = z
  .strictObject({
    rules: z.array(feeRuleSchema).check(z.minLength(1, 'needs at least one rule')),
  })
  .check(
    z.superRefine((schedule, ctx) => {
      // Two rules with the same payment type, currency and start date would tie in
      // feeFor's "most specific, then latest validFrom" choice: reject the ambiguity.
      const seen = new Map<string, number>();
      schedule.rules.forEach((rule, index) => {
        const key = `${rule.paymentType}|${rule.currency ?? '*'}|${rule.validFrom ?? '-'}`;
        const first = seen.get(key);
        if (first === undefined) {
          seen.set(key, index);
          return;
        }
        ctx.addIssue({
          code: 'custom',
          path: ['rules', index],
          message: `duplicates rules.${first} (same paymentType, currency and validFrom); give it a different validFrom`,
        });
      });
    }),
  );

export type FeeRule = z.infer<typeof feeRuleSchema>;
export type FeeSchedule = z.infer<typeof feeScheduleSchema>;

/**
 * A documented starting point for common German payment methods, in any currency.
 * The numbers are public list prices as assumptions; every shop negotiates its own,
 * so operators override the whole schedule with `FEE_SCHEDULE`.
 */
export const DEFAULT_FEE_SCHEDULE: FeeSchedule = deepFreeze({
  rules: [
    // PayPal Germany standard rate for domestic commercial transactions: 2.49 % + 0.35 €.
    { paymentType: 'paypal', fixed: 0.35, percent: 2.49 },
    { paymentType: 'paypal_plus', fixed: 0.35, percent: 2.49 },
    { paymentType: 'paypal_express', fixed: 0.35, percent: 2.49 },
    // Credit cards via a typical PSP (EU consumer cards, interchange-capped): 1.4 % + 0.25 €;
    // wallets settle as card payments.
    { paymentType: 'cc', fixed: 0.25, percent: 1.4 },
    { paymentType: 'credit_card', fixed: 0.25, percent: 1.4 },
    { paymentType: 'creditcard', fixed: 0.25, percent: 1.4 },
    { paymentType: 'apple_pay', fixed: 0.25, percent: 1.4 },
    { paymentType: 'google_pay', fixed: 0.25, percent: 1.4 },
    // Stripe standard EU cards: 1.5 % + 0.25 €.
    { paymentType: 'stripe', fixed: 0.25, percent: 1.5 },
    // Sofort (Klarna Pay now) bank transfer: 0.9 % + 0.25 €.
    { paymentType: 'sofort', fixed: 0.25, percent: 0.9 },
    { paymentType: 'instant_transfer', fixed: 0.25, percent: 0.9 },
    { paymentType: 'klarna', fixed: 0.25, percent: 0.9 },
    // Amazon Pay Germany standard rate: 2.9 % + 0.35 €.
    { paymentType: 'amazon_pay', fixed: 0.35, percent: 2.9 },
    // Cash on delivery: the carrier's Nachnahme fee, a flat 2.00 € per parcel, no percentage.
    { paymentType: 'cod', fixed: 2, percent: 0 },
    // Invoice (Kauf auf Rechnung) handled by the shop itself: no payment provider fee.
    { paymentType: 'invoice', fixed: 0, percent: 0 },
    // Prepayment / bank transfer to the shop's account: no payment provider fee.
    { paymentType: 'prepayment', fixed: 0, percent: 0 },
    { paymentType: 'bank_deposit', fixed: 0, percent: 0 },
    { paymentType: 'money_transfer', fixed: 0, percent: 0 },
    // API/marketplace orders (VersaCommerce "misc"): the marketplace collected the payment,
    // its fees are not a payment cost of the shop's.
    { paymentType: 'misc', fixed: 0, percent: 0 },
  ],
});

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
