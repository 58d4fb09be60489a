import { describe, expect, it } from 'vitest';
import { parseFeeSchedule } from '../../lib/config/fee-schedule.ts';
import { DEFAULT_FEE_SCHEDULE, feeScheduleSchema } from '../../lib/domain/fee-schedule.ts';
import { DEFAULT_PAYMENT_TYPE_MAP } from '../../lib/domain/payment-types.ts';
import { ConfigError } from '../../lib/domain/errors.ts';

function configErrorOf(json: string): ConfigError {
  try {
    parseFeeSchedule(json);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseFeeSchedule', () => {
  it('returns the default schedule when FEE_SCHEDULE is unset or blank', () => {
    // prepare
    const inputs = [undefined, '', '   \n'];

    // act
    const schedules = inputs.map((input) => parseFeeSchedule(input));

    // assess
    for (const schedule of schedules) expect(schedule).toBe(DEFAULT_FEE_SCHEDULE);
  });

  it('parses a valid schedule, normalising payment type and currency case', () => {
    // prepare
    const json = JSON.stringify({
      rules: [
        { paymentType: 'PayPal', currency: 'eur', fixed: 0.35, percent: 2.49, min: 0.1, max: 5 },
        { paymentType: '*', fixed: 0, percent: 0, validFrom: '2024-01-01', validTo: '2024-12-31' },
      ],
    });

    // act
    const schedule = parseFeeSchedule(json);

    // assess
    expect(schedule.rules).toEqual([
      { paymentType: 'paypal', currency: 'EUR', fixed: 0.35, percent: 2.49, min: 0.1, max: 5 },
      { paymentType: '*', fixed: 0, percent: 0, validFrom: '2024-01-01', validTo: '2024-12-31' },
    ]);
  });

  it('accepts validTo equal to validFrom and max equal to min', () => {
    // prepare
    const json = JSON.stringify({
      rules: [{ paymentType: 'cod', fixed: 2, percent: 0, min: 2, max: 2, validFrom: '2024-05-01', validTo: '2024-05-01' }],
    });

    // act
    const schedule = parseFeeSchedule(json);

    // assess
    expect(schedule.rules).toHaveLength(1);
  });

  it('rejects invalid JSON with a ConfigError naming FEE_SCHEDULE', () => {
    // prepare
    const json = '{"rules": [';

    // act
    const error = configErrorOf(json);

    // assess
    expect(error.variables).toEqual(['FEE_SCHEDULE']);
    expect(error.message).toMatch(/FEE_SCHEDULE: not valid JSON/);
    expect(error.category).toBe('permanent');
  });

  it.each([
    ['negative fixed', { paymentType: 'paypal', fixed: -1, percent: 1 }, 'rules.0.fixed'],
    ['percent over 100', { paymentType: 'paypal', fixed: 0, percent: 101 }, 'rules.0.percent'],
    ['percent as a string', { paymentType: 'paypal', fixed: 0, percent: '2.49' }, 'rules.0.percent'],
    ['empty payment type', { paymentType: ' ', fixed: 0, percent: 1 }, 'rules.0.paymentType'],
    ['bad currency', { paymentType: 'paypal', currency: 'EURO', fixed: 0, percent: 1 }, 'rules.0.currency'],
    ['max below min', { paymentType: 'paypal', fixed: 0, percent: 1, min: 2, max: 1 }, 'rules.0.max'],
    ['bad date', { paymentType: 'paypal', fixed: 0, percent: 1, validFrom: '2024-02-30' }, 'rules.0.validFrom'],
    ['date with time', { paymentType: 'paypal', fixed: 0, percent: 1, validTo: '2024-02-01T00:00:00Z' }, 'rules.0.validTo'],
    [
      'validTo before validFrom',
      { paymentType: 'paypal', fixed: 0, percent: 1, validFrom: '2024-02-01', validTo: '2024-01-31' },
      'rules.0.validTo',
    ],
    ['unknown key', { paymentType: 'paypal', fixed: 0, percent: 1, percentage: 2 }, 'rules.0'],
    ['missing fixed', { paymentType: 'paypal', percent: 1 }, 'rules.0.fixed'],
  ])('rejects %s with the failing path in the message', (_name, rule, path) => {
    // prepare
    const json = JSON.stringify({ rules: [rule] });

    // act
    const error = configErrorOf(json);

    // assess
    expect(error.variables).toEqual(['FEE_SCHEDULE']);
    expect(error.message).toContain('FEE_SCHEDULE');
    expect(error.message).toContain(`${path}:`);
  });

  it('names every failing path at once', () => {
    // prepare
    const json = JSON.stringify({
      rules: [
        { paymentType: 'paypal', fixed: -1, percent: 1 },
        { paymentType: 'cod', fixed: 2, percent: 200 },
      ],
    });

    // act
    const error = configErrorOf(json);

    // assess
    expect(error.message).toContain('rules.0.fixed:');
    expect(error.message).toContain('rules.1.percent:');
  });

  it.each([
    ['an array', '[]', '(root)'],
    ['an empty rule list', '{"rules":[]}', 'rules:'],
    ['a missing rule list', '{}', 'rules:'],
    ['an extra top-level key', '{"rules":[{"paymentType":"cod","fixed":2,"percent":0}],"extra":1}', '(root)'],
  ])('rejects %s', (_name, json, expected) => {
    // act
    const error = configErrorOf(json);

    // assess
    expect(error.variables).toEqual(['FEE_SCHEDULE']);
    expect(error.message).toContain(expected);
  });

  it('rejects two rules that would tie (same type, currency and validFrom)', () => {
    // prepare
    const json = JSON.stringify({
      rules: [
        { paymentType: 'paypal', currency: 'EUR', fixed: 0.35, percent: 2.49 },
        { paymentType: 'PAYPAL', currency: 'eur', fixed: 0.39, percent: 2.99 },
      ],
    });

    // act
    const error = configErrorOf(json);

    // assess
    expect(error.message).toContain('rules.1: duplicates rules.0');
  });
});

describe('DEFAULT_FEE_SCHEDULE', () => {
  it('is itself a valid schedule', () => {
    // act
    const result = feeScheduleSchema.safeParse(DEFAULT_FEE_SCHEDULE);

    // assess
    expect(result.success).toBe(true);
  });

  it('covers the common German payment methods', () => {
    // prepare
    const types = DEFAULT_FEE_SCHEDULE.rules.map((rule) => rule.paymentType);

    // assess
    expect(types).toEqual(
      expect.arrayContaining([
        'paypal',
        'cc',
        'credit_card',
        'sofort',
        'klarna',
        'amazon_pay',
        'cod',
        'invoice',
        'prepayment',
        'bank_deposit',
        'money_transfer',
      ]),
    );
    expect(types).not.toContain('*');
  });

  it('prices every payment type of the default payment-type table, so a known type never parks a Klar cost', () => {
    // prepare
    const priced = new Set(DEFAULT_FEE_SCHEDULE.rules.map((rule) => rule.paymentType));

    // act
    const unpriced = Object.keys(DEFAULT_PAYMENT_TYPE_MAP).filter((type) => !priced.has(type));

    // assess
    expect(unpriced).toEqual([]);
  });

  it('cannot be mutated by a caller', () => {
    // act
    const mutate = () => {
      (DEFAULT_FEE_SCHEDULE.rules[0] as { fixed: number }).fixed = 99;
    };

    // assess
    expect(mutate).toThrow(TypeError);
    expect(DEFAULT_FEE_SCHEDULE.rules[0]?.fixed).toBe(0.35);
  });
});
