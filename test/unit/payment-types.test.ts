import { describe, expect, it } from 'vitest';
import { parsePaymentTypeMap } from '../../lib/config/payment-types.ts';
import {
  DEFAULT_PAYMENT_TYPE_MAP,
  komfortkasseTypeFor,
  paymentMethodDescriptionFor,
  paymentTypeMapSchema,
} from '../../lib/domain/payment-types.ts';
import { ConfigError } from '../../lib/domain/errors.ts';

function configErrorFrom(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('DEFAULT_PAYMENT_TYPE_MAP', () => {
  it('maps the Komfortkasse payment types and skips instant methods', () => {
    // prepare
    const expected = {
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
      // API/marketplace orders (seed 002 "Create Order") are paid on the marketplace
      misc: 'SKIP',
    };

    // act
    const table = { ...DEFAULT_PAYMENT_TYPE_MAP };

    // assess
    expect(table).toEqual(expected);
    expect(paymentTypeMapSchema.parse(table)).toEqual(expected);
    expect(Object.isFrozen(DEFAULT_PAYMENT_TYPE_MAP)).toBe(true);
  });
});

describe('parsePaymentTypeMap', () => {
  it('returns the default table when PAYMENT_TYPE_MAP is unset or blank', () => {
    // act
    const unset = parsePaymentTypeMap(undefined);
    const blank = parsePaymentTypeMap('  ');

    // assess
    expect(unset).toEqual(DEFAULT_PAYMENT_TYPE_MAP);
    expect(blank).toEqual(DEFAULT_PAYMENT_TYPE_MAP);
  });

  it("merges the operator's table over the default", () => {
    // prepare
    const json = JSON.stringify({ paypal: 'INVOICE', misc: 'prepayment', ' COD ': 'SKIP' });

    // act
    const map = parsePaymentTypeMap(json);

    // assess
    expect(map.paypal).toBe('INVOICE');
    expect(map.misc).toBe('PREPAYMENT');
    expect(map.cod).toBe('SKIP');
    expect(map.invoice).toBe('INVOICE');
    expect(map.stripe).toBe('SKIP');
    expect(komfortkasseTypeFor('paypal', map)).toBe('INVOICE');
    expect(komfortkasseTypeFor('misc', map)).toBe('PREPAYMENT');
    expect(komfortkasseTypeFor('cod', map)).toBeUndefined();
    expect(DEFAULT_PAYMENT_TYPE_MAP.paypal).toBe('SKIP');
  });

  it.each([
    ['not JSON', '{cod: COD'],
    ['an array', '["cod"]'],
    ['null', 'null'],
    ['a string', '"cod"'],
    ['an unknown target', '{"cod":"CASH"}'],
    ['a non-string target', '{"cod":1}'],
  ])('throws a ConfigError naming PAYMENT_TYPE_MAP for %s', (_label, json) => {
    // act
    const error = configErrorFrom(() => parsePaymentTypeMap(json));

    // assess
    expect(error.variables).toEqual(['PAYMENT_TYPE_MAP']);
    expect(error.message).toContain('PAYMENT_TYPE_MAP');
    expect(error.category).toBe('permanent');
  });

  it('names the offending payment type in the message', () => {
    // act
    const error = configErrorFrom(() => parsePaymentTypeMap('{"cod":"COD","paypal":"MAYBE"}'));

    // assess
    expect(error.message).toContain('"paypal"');
    expect(error.message).toContain('INVOICE, PREPAYMENT, COD, SKIP');
  });
});

describe('komfortkasseTypeFor', () => {
  it.each([
    ['cod', 'COD'],
    ['COD', 'COD'],
    [' invoice ', 'INVOICE'],
    ['prepayment', 'PREPAYMENT'],
    ['bank_deposit', 'PREPAYMENT'],
    ['money_transfer', 'PREPAYMENT'],
  ])('maps %j to %s', (paymentType, expected) => {
    // act
    const type = komfortkasseTypeFor(paymentType, DEFAULT_PAYMENT_TYPE_MAP);

    // assess
    expect(type).toBe(expected);
  });

  it.each(['paypal', 'cc', 'stripe', 'bitcoin', '', 'constructor', '__proto__', null, undefined])(
    'returns undefined for %j (skipped or not in the table)',
    (paymentType) => {
      // act
      const type = komfortkasseTypeFor(paymentType, DEFAULT_PAYMENT_TYPE_MAP);

      // assess
      expect(type).toBeUndefined();
    },
  );
});

describe('paymentMethodDescriptionFor', () => {
  it('describes the Komfortkasse methods in German and nothing else', () => {
    // act & assess
    expect(paymentMethodDescriptionFor('cod')).toBe('Nachnahme');
    expect(paymentMethodDescriptionFor('invoice')).toBe('Rechnung');
    expect(paymentMethodDescriptionFor('Prepayment')).toBe('Vorkasse');
    expect(paymentMethodDescriptionFor('paypal')).toBeUndefined();
    expect(paymentMethodDescriptionFor('toString')).toBeUndefined();
    expect(paymentMethodDescriptionFor(undefined)).toBeUndefined();
  });
});
