import { describe, expect, it } from 'vitest';
import { DEFAULT_FEE_SCHEDULE, type FeeRule, type FeeSchedule } from '../../lib/domain/fee-schedule.ts';
import { InvalidMessageError, isPermanent } from '../../lib/domain/errors.ts';
import { berlinCalendarDate, feeFor, UnknownPaymentTypeError } from '../../lib/domain/fees.ts';

const ORDER_DATE = new Date('2024-05-01T10:00:00Z');

function order(overrides: Partial<Parameters<typeof feeFor>[0]> = {}): Parameters<typeof feeFor>[0] {
  return { paymentType: 'paypal', total: 10, currency: 'EUR', orderDate: ORDER_DATE, ...overrides };
}

function schedule(...rules: FeeRule[]): FeeSchedule {
  return { rules };
}

describe('feeFor — amount', () => {
  it('adds fixed and percent, rounding half-up to cents (2.49 % of 10.00 + 0.35 = 0.60)', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0.35, percent: 2.49 });

    // act
    const cost = feeFor(order({ total: 10 }), fees);

    // assess
    expect(cost).toBe(0.6);
  });

  it('computes the default PayPal fee of a typical order', () => {
    // act
    const cost = feeFor(order({ total: 59.9 }), DEFAULT_FEE_SCHEDULE);

    // assess: 0.35 + 59.90 × 2.49 % = 0.35 + 1.49151 = 1.84151
    expect(cost).toBe(1.84);
  });

  it.each([
    // [total, percent, fixed, expected]: cases where naive float maths rounds the wrong way
    [100.5, 1, 0, 1.01], // 1.005 → 1.01 (Math.round(1.005 * 100) / 100 gives 1)
    [1.005, 100, 0, 1.01],
    [0.145, 100, 0, 0.15],
    [10, 0.15, 0, 0.02], // 0.015 → 0.02
    [10, 0.05, 0, 0.01], // 0.005 → 0.01
    [10, 0.04, 0, 0], // 0.004 → 0.00
    [0.1, 0, 0.2, 0.2],
    [1234567.89, 2.49, 0.35, 30741.09], // 30740.740461 + 0.35 → 30741.09
  ])('total %d at %d %% + %d → %d', (total, percent, fixed, expected) => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed, percent });

    // act
    const cost = feeFor(order({ total }), fees);

    // assess
    expect(cost).toBe(expected);
  });

  it('rounds exactly halfway cents up', () => {
    // prepare: 0.25 + 11 × 0.5 % = 0.305 → 0.31
    const fees = schedule({ paymentType: 'paypal', fixed: 0.25, percent: 0.5 });

    // act
    const cost = feeFor(order({ total: 11 }), fees);

    // assess
    expect(cost).toBe(0.31);
  });

  it('clamps to the minimum', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0, percent: 1, min: 0.5 });

    // act
    const cost = feeFor(order({ total: 10 }), fees);

    // assess
    expect(cost).toBe(0.5);
  });

  it('clamps to the maximum', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0.35, percent: 2.49, max: 5 });

    // act
    const cost = feeFor(order({ total: 1000 }), fees);

    // assess
    expect(cost).toBe(5);
  });

  it('clamps before rounding (max 0.305 → 0.31)', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0, percent: 10, max: 0.305 });

    // act
    const cost = feeFor(order({ total: 10 }), fees);

    // assess
    expect(cost).toBe(0.31);
  });

  it('leaves a cost within [min, max] unchanged', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0.35, percent: 2.49, min: 0.1, max: 5 });

    // act
    const cost = feeFor(order({ total: 10 }), fees);

    // assess
    expect(cost).toBe(0.6);
  });

  it('costs 0 for invoice and prepayment in the default schedule', () => {
    // act
    const invoice = feeFor(order({ paymentType: 'invoice', total: 250 }), DEFAULT_FEE_SCHEDULE);
    const prepayment = feeFor(order({ paymentType: 'prepayment', total: 250 }), DEFAULT_FEE_SCHEDULE);

    // assess
    expect(invoice).toBe(0);
    expect(prepayment).toBe(0);
  });

  it('charges the flat Nachnahme fee for cod whatever the total', () => {
    // act
    const small = feeFor(order({ paymentType: 'cod', total: 5 }), DEFAULT_FEE_SCHEDULE);
    const large = feeFor(order({ paymentType: 'cod', total: 500 }), DEFAULT_FEE_SCHEDULE);

    // assess
    expect(small).toBe(2);
    expect(large).toBe(2);
  });

  it.each([0, -10])('costs 0 for a total of %d (no payment transaction), even with a fixed fee and minimum', (total) => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', fixed: 0.35, percent: 2.49, min: 1 });

    // act
    const cost = feeFor(order({ total }), fees);

    // assess
    expect(cost).toBe(0);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY])('rejects a total of %d', (total) => {
    // act
    const act = () => feeFor(order({ total }), DEFAULT_FEE_SCHEDULE);

    // assess
    expect(act).toThrow(InvalidMessageError);
  });

  it('rejects an invalid order date', () => {
    // act
    const act = () => feeFor(order({ orderDate: new Date('nope') }), DEFAULT_FEE_SCHEDULE);

    // assess
    expect(act).toThrow(InvalidMessageError);
  });
});

describe('feeFor — rule choice', () => {
  it('prefers an exact payment type over "*"', () => {
    // prepare
    const fees = schedule(
      { paymentType: '*', fixed: 1, percent: 0 },
      { paymentType: 'paypal', fixed: 2, percent: 0 },
    );

    // act
    const paypal = feeFor(order({ paymentType: 'paypal' }), fees);
    const other = feeFor(order({ paymentType: 'giropay' }), fees);

    // assess
    expect(paypal).toBe(2);
    expect(other).toBe(1);
  });

  it('matches payment type and currency case-insensitively', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', currency: 'EUR', fixed: 2, percent: 0 });

    // act
    const cost = feeFor(order({ paymentType: ' PayPal ', currency: 'eur' }), fees);

    // assess
    expect(cost).toBe(2);
  });

  it('prefers a currency-specific rule over one for any currency', () => {
    // prepare
    const fees = schedule(
      { paymentType: 'paypal', fixed: 0.35, percent: 0 },
      { paymentType: 'paypal', currency: 'CHF', fixed: 0.55, percent: 0 },
    );

    // act
    const eur = feeFor(order({ currency: 'EUR' }), fees);
    const chf = feeFor(order({ currency: 'CHF' }), fees);

    // assess
    expect(eur).toBe(0.35);
    expect(chf).toBe(0.55);
  });

  it('prefers an exact payment type over a currency-specific wildcard', () => {
    // prepare
    const fees = schedule(
      { paymentType: '*', currency: 'EUR', fixed: 1, percent: 0 },
      { paymentType: 'paypal', fixed: 2, percent: 0 },
    );

    // act
    const cost = feeFor(order(), fees);

    // assess
    expect(cost).toBe(2);
  });

  it('ignores rules for another currency', () => {
    // prepare
    const fees = schedule({ paymentType: 'paypal', currency: 'CHF', fixed: 0.55, percent: 0 });

    // act
    const act = () => feeFor(order({ currency: 'EUR' }), fees);

    // assess
    expect(act).toThrow(UnknownPaymentTypeError);
  });

  describe('validity window', () => {
    const fees = schedule(
      { paymentType: 'paypal', fixed: 1, percent: 0, validFrom: '2024-03-01', validTo: '2024-03-31' },
    );

    it.each([
      ['the first day', '2024-03-01T00:00:00+01:00', 1],
      ['the last day', '2024-03-31T23:59:59+02:00', 1],
      ['a day inside', '2024-03-15T12:00:00Z', 1],
    ])('applies on %s (inclusive)', (_name, date, expected) => {
      // act
      const cost = feeFor(order({ orderDate: new Date(date) }), fees);

      // assess
      expect(cost).toBe(expected);
    });

    it.each([
      ['the day before', '2024-02-29T23:59:59+01:00'],
      ['the day after', '2024-04-01T00:00:00+02:00'],
    ])('does not apply on %s', (_name, date) => {
      // act
      const act = () => feeFor(order({ orderDate: new Date(date) }), fees);

      // assess
      expect(act).toThrow(UnknownPaymentTypeError);
    });

    it('uses the Europe/Berlin calendar date, not UTC', () => {
      // prepare: 22:30 UTC on 29 Feb is 23:30 in Berlin (29 Feb); 23:30 UTC on 29 Feb is 00:30 on 1 March in Berlin
      const beforeInBerlin = new Date('2024-02-29T22:30:00Z');
      const insideInBerlin = new Date('2024-02-29T23:30:00Z');

      // act
      const act = () => feeFor(order({ orderDate: beforeInBerlin }), fees);
      const cost = feeFor(order({ orderDate: insideInBerlin }), fees);

      // assess
      expect(act).toThrow(UnknownPaymentTypeError);
      expect(cost).toBe(1);
    });
  });

  it('lets the rule with the latest validFrom win when several match', () => {
    // prepare
    const fees = schedule(
      { paymentType: 'paypal', fixed: 0.35, percent: 1.9 },
      { paymentType: 'paypal', fixed: 0.35, percent: 2.49, validFrom: '2024-01-01' },
      { paymentType: 'paypal', fixed: 0.39, percent: 2.99, validFrom: '2023-01-01' },
    );

    // act
    const old = feeFor(order({ orderDate: new Date('2022-06-01T12:00:00Z') }), fees);
    const middle = feeFor(order({ orderDate: new Date('2023-06-01T12:00:00Z') }), fees);
    const current = feeFor(order({ orderDate: new Date('2024-06-01T12:00:00Z') }), fees);

    // assess: 10 × 1.9 % + 0.35 = 0.54; 10 × 2.99 % + 0.39 = 0.689; 10 × 2.49 % + 0.35 = 0.599
    expect(old).toBe(0.54);
    expect(middle).toBe(0.69);
    expect(current).toBe(0.6);
  });

  it('falls back to an older rule once a newer one has expired', () => {
    // prepare
    const fees = schedule(
      { paymentType: 'paypal', fixed: 0.35, percent: 0 },
      { paymentType: 'paypal', fixed: 0, percent: 0, validFrom: '2024-11-29', validTo: '2024-12-02' },
    );

    // act
    const promotion = feeFor(order({ orderDate: new Date('2024-11-30T12:00:00Z') }), fees);
    const after = feeFor(order({ orderDate: new Date('2024-12-03T12:00:00Z') }), fees);

    // assess
    expect(promotion).toBe(0);
    expect(after).toBe(0.35);
  });
});

describe('feeFor — unknown payment type', () => {
  it('throws a permanent UnknownPaymentTypeError naming type, currency and Berlin date', () => {
    // prepare
    const orderDate = new Date('2024-04-30T22:30:00Z'); // 1 May in Berlin

    // act
    let caught: unknown;
    try {
      feeFor(order({ paymentType: 'bitcoin', orderDate }), DEFAULT_FEE_SCHEDULE);
    } catch (error) {
      caught = error;
    }

    // assess
    expect(caught).toBeInstanceOf(UnknownPaymentTypeError);
    const error = caught as UnknownPaymentTypeError;
    expect(error.message).toBe('no fee rule for payment type "bitcoin" in EUR on 2024-05-01');
    expect(error.name).toBe('UnknownPaymentTypeError');
    expect(isPermanent(error)).toBe(true);
    expect(error).toMatchObject({ paymentType: 'bitcoin', currency: 'EUR', date: '2024-05-01' });
  });
});

describe('berlinCalendarDate', () => {
  it.each([
    ['2024-01-01T00:30:00+01:00', '2024-01-01'],
    ['2023-12-31T23:30:00Z', '2024-01-01'],
    ['2024-07-01T21:59:59Z', '2024-07-01'],
    ['2024-07-01T22:00:00Z', '2024-07-02'],
  ])('%s is %s in Berlin', (instant, expected) => {
    // act
    const date = berlinCalendarDate(new Date(instant));

    // assess
    expect(date).toBe(expected);
  });
});
