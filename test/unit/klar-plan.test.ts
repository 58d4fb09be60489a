import { describe, expect, it } from 'vitest';
import { DEFAULT_FEE_SCHEDULE } from '../../lib/domain/fee-schedule.ts';
import {
  compareStamps,
  needsKlarWorker,
  planAfterLostRace,
  planKlarCost,
  type CostLine,
  type KlarFacts,
  type KlarPlan,
  type KlarPlanContext,
  type KlarStamp,
} from '../../lib/domain/klar-plan.ts';
import { DEFAULT_PAYMENT_TYPE_MAP } from '../../lib/domain/payment-types.ts';
import type { RecordedKlar } from '../../lib/domain/sync-state.ts';
import { buildKlarFacts, buildRecordedKlar } from '../factories/sync-state.ts';

const EARLY = '2024-05-01T10:00:00+02:00';
const LATE = '2024-05-01T12:00:00+02:00';
const ARRIVED = '2024-05-01T08:00:01.000Z';
const ARRIVED_LATER = '2024-05-01T10:00:05.000Z';
/** Default fee schedule: cod costs a flat 2.00, paypal 0.35 + 2.49 %, invoice nothing. */
const CONTEXT: KlarPlanContext = { feeSchedule: DEFAULT_FEE_SCHEDULE, paymentTypes: DEFAULT_PAYMENT_TYPE_MAP, orderIdField: 'id' };

const facts = (overrides: Partial<KlarFacts> = {}) => buildKlarFacts({ updatedAt: EARLY, receivedAt: ARRIVED, ...overrides });
const stampOf = (f: KlarFacts): KlarStamp => ({ sourceUpdatedAt: f.updatedAt, receivedAt: f.receivedAt });
const line = (transactionCosts: number, stamp: KlarStamp, overrides: Partial<CostLine> = {}): CostLine => ({
  orderId: 100,
  orderCode: '196-083-565',
  costs: { orderId: '100', transactionCosts },
  currency: 'EUR',
  stamp,
  ...overrides,
});
/** Klar holds the seed order's cost (2.00 EUR) for the EARLY copy. */
const uploaded = (overrides: Partial<RecordedKlar> = {}) =>
  buildRecordedKlar({ state: 'uploaded', transactionCosts: 2, currency: 'EUR', sourceUpdatedAt: EARLY, receivedAt: ARRIVED, version: 3, ...overrides });

describe('planKlarCost', () => {
  const cases: [string, KlarFacts, RecordedKlar | undefined, Partial<KlarPlanContext>, KlarPlan | ((plan: KlarPlan) => void)][] = [
    // uploads
    ['first upload (no record)', facts(), undefined, {}, { kind: 'upload', line: line(2, stampOf(facts())), why: 'first cost of the order' }],
    ['first upload (pending record without a cost)', facts(), buildRecordedKlar(), {}, { kind: 'upload', line: line(2, stampOf(facts())), why: 'first cost of the order' }],
    ['changed cost → upload', facts({ paymentType: 'paypal', total: 10, updatedAt: LATE }), uploaded(), {}, { kind: 'upload', line: line(0.6, { sourceUpdatedAt: LATE, receivedAt: ARRIVED }), why: 'the cost changed' }],
    ['same amount in another currency → upload', facts({ currency: 'CHF', updatedAt: LATE }), uploaded(), {}, (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { currency: 'CHF', costs: { transactionCosts: 2 } } })],
    ['parked before, now computable → upload', facts({ updatedAt: LATE }), buildRecordedKlar({ state: 'needs-attention', error: 'order 100: old problem', sourceUpdatedAt: EARLY }), {}, (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { costs: { transactionCosts: 2 } } })],
    ['a 0 cost is uploaded (transactionCosts is required)', facts({ paymentType: 'invoice' }), undefined, {}, { kind: 'upload', line: line(0, stampOf(facts())), why: 'first cost of the order' }],
    ['a 0 total costs 0 and is uploaded', facts({ paymentType: 'paypal', total: 0 }), undefined, {}, (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { costs: { orderId: '100', transactionCosts: 0 } } })],
    ['KLAR_ORDER_ID_FIELD=code sends the code', facts(), undefined, { orderIdField: 'code' }, (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { costs: { orderId: '196-083-565', transactionCosts: 2 } } })],

    // nothing to send
    ['same cost → unchanged', facts(), uploaded(), {}, { kind: 'unchanged', why: 'Klar already holds this cost' }],
    ['same cost, newer updated_at → touch (remember the newer copy)', facts({ updatedAt: LATE, receivedAt: ARRIVED_LATER }), uploaded(), {}, { kind: 'touch', stamp: { sourceUpdatedAt: LATE, receivedAt: ARRIVED_LATER } }],
    ['a duplicate (same updated_at and cost, later arrival) → unchanged, never forwarded', facts({ receivedAt: ARRIVED_LATER }), uploaded(), {}, { kind: 'unchanged', why: 'Klar already holds this cost' }],
    ['a duplicate in another zone (the same instant) → unchanged', facts({ updatedAt: '2024-05-01T08:00:00Z', receivedAt: ARRIVED_LATER }), uploaded(), {}, (plan) => expect(plan).toMatchObject({ kind: 'unchanged' })],
    ['same cost, newer only by arrival (no updated_at recorded) → unchanged', facts({ receivedAt: ARRIVED_LATER }), uploaded({ sourceUpdatedAt: undefined }), {}, (plan) => expect(plan).toMatchObject({ kind: 'unchanged' })],
    ['older copy → stale', facts({ paymentType: 'paypal', updatedAt: EARLY }), uploaded({ sourceUpdatedAt: LATE }), {}, { kind: 'stale', why: 'a newer copy of the order was recorded' }],
    ['older copy by arrival, no updated_at on either → stale', facts({ updatedAt: undefined, receivedAt: ARRIVED }), uploaded({ sourceUpdatedAt: undefined, receivedAt: ARRIVED_LATER }), {}, (plan) => expect(plan).toMatchObject({ kind: 'stale' })],
    ['older copy, record pending with a cost → upload the RECORDED cost', facts({ updatedAt: EARLY }), uploaded({ state: 'pending', transactionCosts: 3.5, sourceUpdatedAt: LATE, receivedAt: ARRIVED_LATER }), {}, { kind: 'upload', line: line(3.5, { sourceUpdatedAt: LATE, receivedAt: ARRIVED_LATER }), why: 'the recorded cost may not have reached Klar' }],
    ['older copy, record parked → stale', facts({ updatedAt: EARLY }), buildRecordedKlar({ state: 'needs-attention', error: 'x', sourceUpdatedAt: LATE }), {}, (plan) => expect(plan).toMatchObject({ kind: 'stale' })],
    ['canceled → skipped (Klar has no delete)', facts({ status: 'canceled', updatedAt: LATE }), uploaded(), {}, (plan) => expect(plan).toMatchObject({ kind: 'skipped' })],
    ['returned → skipped', facts({ status: 'returned' }), undefined, {}, (plan) => expect(plan).toMatchObject({ kind: 'skipped' })],
    ['canceled with an unknown payment type → skipped, not parked', facts({ status: 'Cancelled', paymentType: 'rechnung' }), undefined, {}, (plan) => expect(plan).toMatchObject({ kind: 'skipped' })],
    ['canceled while parked → unpark (off the needs-attention list)', facts({ status: 'canceled', updatedAt: LATE }), buildRecordedKlar({ state: 'needs-attention', error: 'order 100: old problem', sourceUpdatedAt: EARLY }), {}, (plan) => expect(plan).toEqual({ kind: 'unpark', why: expect.stringContaining('canceled'), stamp: { sourceUpdatedAt: LATE, receivedAt: ARRIVED } })],

    // needs attention
    ['unknown payment type → needs-attention naming PAYMENT_TYPE_MAP', facts({ paymentType: 'rechnung' }), undefined, {}, (plan) => expect(plan).toEqual({ kind: 'needs-attention', error: expect.stringMatching(/^order 100: payment type "rechnung" .*PAYMENT_TYPE_MAP/), stamp: stampOf(facts()) })],
    ['no payment type → needs-attention', facts({ paymentType: undefined }), undefined, {}, (plan) => expect(plan).toMatchObject({ kind: 'needs-attention', error: expect.stringContaining('has no payment type') })],
    ['known type without a fee rule → needs-attention naming FEE_SCHEDULE', facts({ paymentType: 'barzahlen' }), undefined, { paymentTypes: { ...DEFAULT_PAYMENT_TYPE_MAP, barzahlen: 'SKIP' } }, { kind: 'needs-attention', error: 'order 100: no fee rule for payment type "barzahlen" in EUR on 2024-05-01: add one to FEE_SCHEDULE', stamp: stampOf(facts()) }],
    ['a created_at that does not parse → needs-attention', facts({ createdAt: 'someday' }), undefined, {}, (plan) => expect(plan).toMatchObject({ kind: 'needs-attention', error: expect.stringContaining('order date is not a valid date') })],
    ['KLAR_ORDER_ID_FIELD=code without a code → needs-attention', facts({ orderCode: undefined }), undefined, { orderIdField: 'code' }, { kind: 'needs-attention', error: 'order 100: order has no code, but KLAR_ORDER_ID_FIELD=code', stamp: stampOf(facts()) }],
    ['the same needs-attention error again → unchanged', facts({ paymentType: 'rechnung' }), buildRecordedKlar({ state: 'needs-attention', error: planError(facts({ paymentType: 'rechnung' })), sourceUpdatedAt: EARLY, receivedAt: ARRIVED }), {}, { kind: 'unchanged', why: 'already needs attention for the same reason' }],
    ['a duplicate of a parked order (same updated_at and error, later arrival) → unchanged, never forwarded', facts({ paymentType: 'rechnung', receivedAt: ARRIVED_LATER }), buildRecordedKlar({ state: 'needs-attention', error: planError(facts({ paymentType: 'rechnung' })), sourceUpdatedAt: EARLY, receivedAt: ARRIVED }), {}, { kind: 'unchanged', why: 'already needs attention for the same reason' }],
    ['the same error for a newer copy → needs-attention (records the newer copy)', facts({ paymentType: 'rechnung', updatedAt: LATE }), buildRecordedKlar({ state: 'needs-attention', error: planError(facts({ paymentType: 'rechnung' })), sourceUpdatedAt: EARLY, receivedAt: ARRIVED }), {}, (plan) => expect(plan).toMatchObject({ kind: 'needs-attention', stamp: { sourceUpdatedAt: LATE } })],
    ['another error while parked → needs-attention', facts({ paymentType: 'barzahlen' }), buildRecordedKlar({ state: 'needs-attention', error: planError(facts({ paymentType: 'rechnung' })), sourceUpdatedAt: EARLY, receivedAt: ARRIVED }), { paymentTypes: { ...DEFAULT_PAYMENT_TYPE_MAP, barzahlen: 'SKIP' } }, (plan) => expect(plan).toMatchObject({ kind: 'needs-attention', error: expect.stringContaining('FEE_SCHEDULE') })],
  ];

  it.each(cases)('%s', (_, orderFacts, recorded, context, expected) => {
    // act
    const plan = planKlarCost(orderFacts, recorded, { ...CONTEXT, ...context });

    // assess
    if (typeof expected === 'function') expected(plan);
    else expect(plan).toEqual(expected);
  });

  it('computes the PayPal cost from the fee schedule (0.35 + 2.49 % of 59.90 = 1.84)', () => {
    // act
    const plan = planKlarCost(facts({ paymentType: 'paypal', total: 59.9 }), undefined, CONTEXT);

    // assess
    expect(plan).toMatchObject({ kind: 'upload', line: { costs: { transactionCosts: 1.84 }, currency: 'EUR' } });
  });
});

/** The needs-attention error planKlarCost gives for these facts. */
function planError(orderFacts: KlarFacts): string {
  const plan = planKlarCost(orderFacts, undefined, CONTEXT);
  if (plan.kind !== 'needs-attention') throw new Error(`expected needs-attention, got ${plan.kind}`);
  return plan.error;
}

describe('compareStamps', () => {
  it.each<[string, KlarStamp, KlarStamp, '>' | '<' | '=']>([
    ['a later updated_at', { sourceUpdatedAt: LATE, receivedAt: ARRIVED }, { sourceUpdatedAt: EARLY, receivedAt: ARRIVED }, '>'],
    ['an earlier updated_at', { sourceUpdatedAt: EARLY }, { sourceUpdatedAt: LATE }, '<'],
    ['updated_at decides even against a later arrival', { sourceUpdatedAt: EARLY, receivedAt: ARRIVED_LATER }, { sourceUpdatedAt: LATE, receivedAt: ARRIVED }, '<'],
    ['the same updated_at: the later arrival', { sourceUpdatedAt: EARLY, receivedAt: ARRIVED_LATER }, { sourceUpdatedAt: EARLY, receivedAt: ARRIVED }, '>'],
    ['the same instant in another zone: the arrival', { sourceUpdatedAt: '2024-05-01T08:00:00Z', receivedAt: ARRIVED }, { sourceUpdatedAt: EARLY, receivedAt: ARRIVED_LATER }, '<'],
    ['one side without updated_at: the arrival', { receivedAt: ARRIVED_LATER }, { sourceUpdatedAt: LATE, receivedAt: ARRIVED }, '>'],
    ['an unparsable updated_at: the arrival', { sourceUpdatedAt: 'garbage', receivedAt: ARRIVED }, { sourceUpdatedAt: EARLY, receivedAt: ARRIVED_LATER }, '<'],
    ['the same arrival, no updated_at', { receivedAt: ARRIVED }, { receivedAt: ARRIVED }, '='],
    ['nothing to tell', {}, { sourceUpdatedAt: EARLY }, '='],
  ])('%s', (_, a, b, expected) => {
    // act
    const forward = compareStamps(a, b);
    const backward = compareStamps(b, a);

    // assess
    const sign = (n: number) => (n > 0 ? '>' : n < 0 ? '<' : '=');
    expect(sign(forward)).toBe(expected);
    expect(sign(backward)).toBe(expected === '>' ? '<' : expected === '<' ? '>' : '=');
  });
});

describe('planAfterLostRace', () => {
  // We posted the cost of our copy (cost 2.00 of the EARLY copy) and lost the compare-and-set.
  const ours = facts();
  const posted = line(2, stampOf(ours));

  const cases: [string, KlarFacts, RecordedKlar | undefined, KlarPlan | ((plan: KlarPlan) => void)][] = [
    ['the record holds what we sent → unchanged', ours, uploaded({ sourceUpdatedAt: LATE }), { kind: 'unchanged', why: 'the record holds what we sent' }],
    ['the record is newer with another cost → upload the recorded cost', ours, uploaded({ transactionCosts: 3.5, sourceUpdatedAt: LATE, receivedAt: ARRIVED_LATER }), { kind: 'upload', line: line(3.5, { sourceUpdatedAt: LATE, receivedAt: ARRIVED_LATER }), why: 'our older upload may have overwritten the recorded cost' }],
    ['the record is newer, pending with another cost → upload the recorded cost', ours, uploaded({ state: 'pending', transactionCosts: 3.5, sourceUpdatedAt: LATE }), (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { costs: { transactionCosts: 3.5 }, stamp: { sourceUpdatedAt: LATE } } })],
    ['our message is newer than the record → upload the message\'s cost', facts({ paymentType: 'paypal', total: 10, updatedAt: LATE }), uploaded({ transactionCosts: 3.5, sourceUpdatedAt: EARLY }), { kind: 'upload', line: line(0.6, { sourceUpdatedAt: LATE, receivedAt: ARRIVED }), why: 'the cost changed' }],
    ['the record vanished → upload the message\'s cost', ours, undefined, (plan) => expect(plan).toMatchObject({ kind: 'upload', line: { costs: { transactionCosts: 2 } } })],
    ['the record is newer and parked, without a cost → stale', ours, buildRecordedKlar({ state: 'needs-attention', error: 'x', sourceUpdatedAt: LATE }), (plan) => expect(plan).toMatchObject({ kind: 'stale' })],
  ];

  it.each(cases)('%s', (_, message, recorded, expected) => {
    // act
    const plan = planAfterLostRace(message, recorded, message === ours ? posted : line(0.6, stampOf(message)), CONTEXT);

    // assess
    if (typeof expected === 'function') expected(plan);
    else expect(plan).toEqual(expected);
  });
});

describe('needsKlarWorker', () => {
  it.each<[KlarPlan, boolean]>([
    [{ kind: 'upload', line: line(2, {}), why: 'x' }, true],
    [{ kind: 'touch', stamp: {} }, true],
    [{ kind: 'needs-attention', error: 'x', stamp: {} }, true],
    [{ kind: 'unchanged', why: 'x' }, false],
    [{ kind: 'stale', why: 'x' }, false],
    [{ kind: 'skipped', why: 'x' }, false],
    [{ kind: 'unpark', why: 'x', stamp: {} }, true],
  ])('%o → %s', (plan, expected) => {
    // act + assess
    expect(needsKlarWorker(plan)).toBe(expected);
  });
});
