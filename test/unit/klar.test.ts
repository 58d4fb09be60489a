import { describe, expect, it } from 'vitest';
import { isPermanent } from '../../lib/domain/errors.ts';
import {
  indexOfErrorKey,
  InvalidKlarStateError,
  KLAR_MAX_BATCH,
  klarBody,
  klarInvalidResponseSchema,
  klarResponseSchema,
  klarValidResponseSchema,
  mapInvalidErrors,
  parseKlarState,
  parseKlarTimestamp,
  secondsSince,
  transactionCostsSchema,
  type TransactionCosts,
} from '../../lib/domain/klar.ts';

const SEED_STATE = {
  total: '9',
  lastBatchCount: '4',
  lastSuccess: '2023-03-11 T12:13:31.193Z',
  lastFailure: '2023-03-11 T09:06:50.321Z',
};

function costs(...orderIds: string[]): TransactionCosts[] {
  return orderIds.map((orderId, i) => ({ orderId, transactionCosts: i }));
}

function stateErrorOf(raw: unknown): InvalidKlarStateError {
  try {
    parseKlarState(raw);
  } catch (error) {
    if (error instanceof InvalidKlarStateError) return error;
    throw error;
  }
  throw new Error('expected an InvalidKlarStateError');
}

describe('transactionCostsSchema', () => {
  it('accepts a minimal cost, 0 included', () => {
    // act
    const result = transactionCostsSchema.safeParse({ orderId: '37578', transactionCosts: 0 });

    // assess
    expect(result.success).toBe(true);
  });

  it('accepts all optional fields with valid values', () => {
    // prepare
    const cost = { orderId: '37578', transactionCosts: 1.84, currency: 'EUR', cancelledAt: '2024-05-01T10:00:00.000Z' };

    // act
    const result = transactionCostsSchema.safeParse(cost);

    // assess
    expect(result.success).toBe(true);
    expect(result.data).toEqual(cost);
  });

  it.each([
    ['orderId as a number (the seed error)', { orderId: 1111, transactionCosts: 1 }],
    ['an empty orderId', { orderId: '', transactionCosts: 1 }],
    ['a blank orderId', { orderId: '  ', transactionCosts: 1 }],
    ['missing transactionCosts', { orderId: '1' }],
    ['negative costs', { orderId: '1', transactionCosts: -0.01 }],
    ['infinite costs', { orderId: '1', transactionCosts: Number.POSITIVE_INFINITY }],
    ['costs as a string', { orderId: '1', transactionCosts: '1.00' }],
    ['cancelledAt null', { orderId: '1', transactionCosts: 1, cancelledAt: null }],
    ['cancelledAt 0', { orderId: '1', transactionCosts: 1, cancelledAt: 0 }],
    ['cancelledAt empty', { orderId: '1', transactionCosts: 1, cancelledAt: '' }],
    ['cancelledAt not a datetime', { orderId: '1', transactionCosts: 1, cancelledAt: '2024-05-01' }],
    ['currency null', { orderId: '1', transactionCosts: 1, currency: null }],
    ['currency a symbol', { orderId: '1', transactionCosts: 1, currency: '€' }],
    ['currency lowercase', { orderId: '1', transactionCosts: 1, currency: 'eur' }],
    ['an unknown field', { orderId: '1', transactionCosts: 1, fee: 1 }],
  ])('rejects %s', (_name, value) => {
    // act
    const result = transactionCostsSchema.safeParse(value);

    // assess
    expect(result.success).toBe(false);
  });
});

describe('Klar responses', () => {
  it('parses the seed VALID answer', () => {
    // act
    const result = klarValidResponseSchema.safeParse({ status: 'VALID' });

    // assess
    expect(result.success).toBe(true);
  });

  it('parses the seed INVALID answer and keeps unknown fields', () => {
    // prepare
    const body = {
      status: 'INVALID',
      errors: [{ id: 1111, key: '0.orderId', message: 'orderId must be a string', value: 1111 }],
      traceId: 'abc',
    };

    // act
    const result = klarInvalidResponseSchema.safeParse(body);

    // assess
    expect(result.success).toBe(true);
    expect(result.data).toEqual(body);
  });

  it('discriminates VALID from INVALID and rejects other statuses', () => {
    // act
    const valid = klarResponseSchema.parse({ status: 'VALID' });
    const invalid = klarResponseSchema.parse({ status: 'INVALID', errors: [{ key: '1.transactionCosts', message: 'x' }] });
    const other = klarResponseSchema.safeParse({ status: 'PENDING' });

    // assess
    expect(valid.status).toBe('VALID');
    expect(invalid.status).toBe('INVALID');
    expect(other.success).toBe(false);
  });
});

describe('klarBody', () => {
  it('wraps the costs in an items object', () => {
    // prepare
    const batch = costs('1', '2');

    // act
    const body = klarBody(batch, 'items');

    // assess
    expect(body).toEqual({ items: batch });
  });

  it('sends the bare array', () => {
    // prepare
    const batch = costs('1', '2');

    // act
    const body = klarBody(batch, 'array');

    // assess
    expect(body).toEqual(batch);
  });

  it('refuses more than 1000 costs per request', () => {
    // prepare
    const batch = costs(...Array.from({ length: KLAR_MAX_BATCH + 1 }, (_, i) => String(i)));

    // act
    const act = () => klarBody(batch, 'items');
    const atLimit = klarBody(batch.slice(0, KLAR_MAX_BATCH), 'array');

    // assess
    expect(act).toThrow(RangeError);
    expect(atLimit).toHaveLength(1000);
  });
});

describe('indexOfErrorKey', () => {
  it.each([
    ['0.orderId', { index: 0, field: 'orderId' }],
    ['3.orderId', { index: 3, field: 'orderId' }],
    ['items.3.orderId', { index: 3, field: 'orderId' }],
    ['[3].orderId', { index: 3, field: 'orderId' }],
    ['items[3].orderId', { index: 3, field: 'orderId' }],
    ['12.transactionCosts', { index: 12, field: 'transactionCosts' }],
    ['4', { index: 4, field: '' }],
    [' 5.cancelledAt ', { index: 5, field: 'cancelledAt' }],
  ])('parses %j', (key, expected) => {
    // act
    const parsed = indexOfErrorKey(key);

    // assess
    expect(parsed).toEqual(expected);
  });

  it.each(['orderId', '', 'items', '-1.orderId', '[3.orderId', 'x.3.orderId', '1.5.orderId.', 'a3.orderId'])(
    'rejects %j',
    (key) => {
      // act
      const parsed = indexOfErrorKey(key);

      // assess
      expect(parsed).toBeUndefined();
    },
  );
});

describe('mapInvalidErrors', () => {
  it('maps the seed error to the first order of the request', () => {
    // prepare
    const batch = costs('A-1', 'B-2');
    const errors = [{ id: 1111, key: '0.orderId', message: 'orderId must be a string', value: 1111 }];

    // act
    const { invalid, unmatched } = mapInvalidErrors(batch, errors);

    // assess
    expect([...invalid]).toEqual([['A-1', 'orderId must be a string']]);
    expect(unmatched).toEqual([]);
  });

  it('joins several messages for one order and dedupes repeats', () => {
    // prepare
    const batch = costs('A-1', 'B-2', 'C-3');
    const errors = [
      { key: '2.transactionCosts', message: 'transactionCosts must be a number' },
      { key: 'items.2.cancelledAt', message: 'cancelledAt must be a date' },
      { key: '[2].cancelledAt', message: 'cancelledAt must be a date' },
      { key: '1.currency', message: 'currency is invalid' },
    ];

    // act
    const { invalid } = mapInvalidErrors(batch, errors);

    // assess
    expect(invalid.get('C-3')).toBe('transactionCosts must be a number; cancelledAt must be a date');
    expect(invalid.get('B-2')).toBe('currency is invalid');
    expect(invalid.has('A-1')).toBe(false);
  });

  it('reports keys it cannot place as unmatched', () => {
    // prepare
    const batch = costs('A-1');
    const errors = [
      { key: '7.orderId', message: 'orderId must be a string' },
      { key: 'items', message: 'must contain at most 1000 elements' },
    ];

    // act
    const { invalid, unmatched } = mapInvalidErrors(batch, errors);

    // assess
    expect(invalid.size).toBe(0);
    expect(unmatched).toEqual(['7.orderId: orderId must be a string', 'items: must contain at most 1000 elements']);
  });
});

describe('parseKlarState', () => {
  const now = new Date('2023-03-11T13:13:31.193Z');

  it('parses the seed response: string numbers, space before T, failure older than success', () => {
    // act
    const state = parseKlarState(SEED_STATE, now);

    // assess
    expect(state.total).toBe(9);
    expect(state.lastBatchCount).toBe(4);
    expect(state.lastSuccess?.toISOString()).toBe('2023-03-11T12:13:31.193Z');
    expect(state.lastFailure?.toISOString()).toBe('2023-03-11T09:06:50.321Z');
    expect(state.failing).toBe(false);
    expect(state.secondsSinceLastSuccess).toBe(3600);
  });

  it('is failing when the last failure is newer than the last success', () => {
    // prepare
    const raw = { ...SEED_STATE, lastFailure: '2023-03-11 T12:13:31.194Z' };

    // act
    const state = parseKlarState(raw, now);

    // assess
    expect(state.failing).toBe(true);
  });

  it('is failing when there is a failure and never a success', () => {
    // act
    const state = parseKlarState({ total: 0, lastFailure: '2023-03-11T09:06:50.321Z' }, now);

    // assess
    expect(state.failing).toBe(true);
    expect(state.lastSuccess).toBeUndefined();
    expect(state.secondsSinceLastSuccess).toBeUndefined();
  });

  it('is not failing when success and failure are at the same instant', () => {
    // act
    const state = parseKlarState({ lastSuccess: 1678536811193, lastFailure: '2023-03-11T12:13:31.193Z' }, now);

    // assess
    expect(state.failing).toBe(false);
  });

  it('leaves missing, null and empty fields undefined', () => {
    // act
    const empty = parseKlarState({}, now);
    const nulls = parseKlarState({ total: null, lastBatchCount: '', lastSuccess: null, lastFailure: '' }, now);

    // assess
    expect(empty).toEqual({ failing: false });
    expect(nulls).toEqual({ failing: false });
  });

  it('accepts plain numbers and ignores unknown fields', () => {
    // act
    const state = parseKlarState({ total: 12, lastBatchCount: 0, somethingNew: true }, now);

    // assess
    expect(state).toEqual({ total: 12, lastBatchCount: 0, failing: false });
  });

  it('never reports a negative age when clocks disagree', () => {
    // act
    const state = parseKlarState({ lastSuccess: '2023-03-11T13:14:00Z' }, now);

    // assess
    expect(state.secondsSinceLastSuccess).toBe(0);
  });

  it.each([
    ['a string', 'OK', []],
    ['null', null, []],
    ['an array', [SEED_STATE], []],
    ['a number', 9, []],
  ])('rejects %s as a whole', (_name, raw, fields) => {
    // act
    const error = stateErrorOf(raw);

    // assess
    expect(error.fields).toEqual(fields);
    expect(error.message).toMatch(/not a JSON object/);
    expect(isPermanent(error)).toBe(true);
  });

  it.each([
    ['a non-numeric total', { total: 'nine' }, ['total']],
    ['a negative count', { lastBatchCount: -1 }, ['lastBatchCount']],
    ['a fractional count', { total: '9.5' }, ['total']],
    ['an unparseable date', { lastSuccess: 'yesterday' }, ['lastSuccess']],
    ['an impossible date', { lastFailure: '2023-02-30 T12:00:00Z' }, ['lastFailure']],
    ['a boolean date', { lastSuccess: true }, ['lastSuccess']],
    ['several bad fields', { total: {}, lastSuccess: 'x', lastFailure: '2023-03-11T09:06:50Z' }, ['total', 'lastSuccess']],
  ])('rejects %s, naming the fields', (_name, raw, fields) => {
    // act
    const error = stateErrorOf(raw);

    // assess
    expect(error).toBeInstanceOf(InvalidKlarStateError);
    expect(error.fields).toEqual(fields);
    for (const field of fields) expect(error.message).toContain(field);
    expect(error.category).toBe('permanent');
  });
});

describe('parseKlarTimestamp', () => {
  it.each([
    ['2023-03-11 T12:13:31.193Z', '2023-03-11T12:13:31.193Z'],
    ['2023-03-11T12:13:31.193Z', '2023-03-11T12:13:31.193Z'],
    ['2023-03-11 12:13:31', '2023-03-11T12:13:31.000Z'],
    ['2023-03-11T12:13:31+01:00', '2023-03-11T11:13:31.000Z'],
    ['2023-03-11T12:13:31.5+0100', '2023-03-11T11:13:31.500Z'],
    ['2023-03-11T12:13:31.123456Z', '2023-03-11T12:13:31.123Z'],
    ['2023-03-11 12:13', '2023-03-11T12:13:00.000Z'],
    ['2023-03-11', '2023-03-11T00:00:00.000Z'],
  ])('reads %j', (value, expected) => {
    // act
    const date = parseKlarTimestamp(value);

    // assess
    expect(date?.toISOString()).toBe(expected);
  });

  it('reads epoch milliseconds', () => {
    // act
    const date = parseKlarTimestamp(1678536811193);

    // assess
    expect(date?.toISOString()).toBe('2023-03-11T12:13:31.193Z');
  });

  it.each(['', 'soon', '2023-13-01T00:00:00Z', '2023-03-11T25:00:00Z', '11.03.2023 12:13'])('rejects %j', (value) => {
    // act
    const date = parseKlarTimestamp(value);

    // assess
    expect(date).toBeUndefined();
  });

  it.each([Number.NaN, -1])('rejects the number %d', (value) => {
    // act
    const date = parseKlarTimestamp(value);

    // assess
    expect(date).toBeUndefined();
  });
});

describe('secondsSince', () => {
  it('counts whole seconds', () => {
    // act
    const seconds = secondsSince(new Date('2024-01-01T00:00:00.000Z'), new Date('2024-01-01T00:01:01.999Z'));

    // assess
    expect(seconds).toBe(61);
  });
});
