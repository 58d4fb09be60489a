import { describe, expect, it } from 'vitest';
import { payloadHash, toKomfortkasseOrder } from '../../lib/domain/komfortkasse-mapping.ts';
import {
  VANISHED_REASON,
  isNewer,
  settledReason,
  mayExistUpstream,
  planKomfortkasse,
  type KomfortkassePlan,
  type KomfortkassePlanInput,
  type ShopOrder,
} from '../../lib/domain/komfortkasse-plan.ts';
import { DEFAULT_PAYMENT_TYPE_MAP } from '../../lib/domain/payment-types.ts';
import { MAX_ERROR_LENGTH, type RecordedKomfortkasse } from '../../lib/domain/sync-state.ts';
import type { VersaCommerceOrder } from '../../lib/domain/versacommerce.ts';
import { buildVersaCommerceAddress } from '../factories/orders.ts';
import { buildParsedOrder, buildRecordedKomfortkasse } from '../factories/sync-state.ts';

const EARLY = '2024-05-01T10:00:00+02:00';
const DELETED_AT = '2024-05-01T11:00:00.000Z';
const LATE = '2024-05-01T12:00:00+02:00';
const MAPPING = { paymentTypes: DEFAULT_PAYMENT_TYPE_MAP };

/** The seed order as last changed at EARLY unless told otherwise. */
const order = (overrides: Record<string, unknown> = {}) => buildParsedOrder({ updated_at: EARLY, ...overrides });
/** What the planner hashes for an order (the payload without initialDunningLevel and stopReminder). */
const hashOf = (o: VersaCommerceOrder) => payloadHash(toKomfortkasseOrder(o, { ...MAPPING, firstSubmission: false }));
const HASH = hashOf(order());
const PAID_HASH = hashOf(order({ payment_status: 'paid' }));

const submitted = (overrides: Partial<RecordedKomfortkasse> = {}) =>
  buildRecordedKomfortkasse({ state: 'submitted', everSubmitted: true, payloadHash: HASH, sourceUpdatedAt: EARLY, ...overrides });

interface Row {
  shop: ShopOrder;
  recorded?: RecordedKomfortkasse;
  authoritative?: boolean;
  operator?: boolean;
  mapping?: KomfortkassePlanInput['mapping'];
}
const of = (o: VersaCommerceOrder): ShopOrder => ({ kind: 'order', order: o });
const LONG_ERROR = `order snapshot does not match the schema: ${'x'.repeat(MAX_ERROR_LENGTH + 200)}`;
const noCountry = (o: Record<string, unknown> = {}) =>
  order({ billing_address: buildVersaCommerceAddress('billing', { country: '' }), shipping_address: buildVersaCommerceAddress('shipping', { country: '' }), ...o });

describe('planKomfortkasse', () => {
  const cases: [string, Row, KomfortkassePlan | ((plan: KomfortkassePlan) => void)][] = [
    // a late snapshot
    ['stale: a newer snapshot was applied already', { shop: of(order({ updated_at: EARLY })), recorded: submitted({ sourceUpdatedAt: LATE }) }, { kind: 'none', outcome: 'stale', why: 'a newer snapshot was already applied' }],
    ['stale even when the older snapshot is canceled', { shop: of(order({ status: 'canceled' })), recorded: submitted({ sourceUpdatedAt: LATE }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'stale' })],

    // unusable
    ['unusable, first time → invalid', { shop: { kind: 'unusable', error: 'E1' } }, { kind: 'invalid', error: 'E1' }],
    ['unusable, parked for the same error → unchanged', { shop: { kind: 'unusable', error: 'E1' }, recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'E1' }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['unusable, parked for the same (truncated) long error → unchanged', { shop: { kind: 'unusable', error: LONG_ERROR }, recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: LONG_ERROR.slice(0, MAX_ERROR_LENGTH) }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['unusable, parked for the same error, operator → invalid again', { shop: { kind: 'unusable', error: 'E1' }, recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'E1' }), operator: true }, { kind: 'invalid', error: 'E1' }],
    ['unusable, parked for another error → invalid', { shop: { kind: 'unusable', error: 'E2' }, recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'E1' }) }, { kind: 'invalid', error: 'E2' }],
    ['unusable, submitted before → invalid', { shop: { kind: 'unusable', error: 'E1' }, recorded: submitted() }, { kind: 'invalid', error: 'E1' }],

    // vanished from the shop
    ['vanished, never recorded → forget', { shop: { kind: 'vanished' } }, { kind: 'forget', reason: VANISHED_REASON }],
    ['vanished, never submitted → forget', { shop: { kind: 'vanished' }, recorded: buildRecordedKomfortkasse({ state: 'skipped' }) }, { kind: 'forget', reason: VANISHED_REASON }],
    ['vanished, submitted → remove with the vanished reason', { shop: { kind: 'vanished' }, recorded: submitted() }, { kind: 'remove', reason: VANISHED_REASON }],
    ['vanished, an attempt of unknown fate → remove', { shop: { kind: 'vanished' }, recorded: buildRecordedKomfortkasse({ firstAttemptedAt: '2024-05-01T08:00:00.000Z' }) }, { kind: 'remove', reason: VANISHED_REASON }],
    ['vanished, already removed as deleted → none', { shop: { kind: 'vanished' }, recorded: submitted({ state: 'removed', vanishedAt: DELETED_AT }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['vanished, removed as canceled before → forget (records the deletion, no call)', { shop: { kind: 'vanished' }, recorded: submitted({ state: 'removed' }) }, { kind: 'forget', reason: VANISHED_REASON }],

    // payment types Komfortkasse does not handle
    ['skip type, first time → skip', { shop: of(order({ payment_type: 'paypal' })) }, { kind: 'skip', reason: 'payment type "paypal" is not sent to Komfortkasse' }],
    ['skip type, already skipped → none', { shop: of(order({ payment_type: 'paypal' })), recorded: buildRecordedKomfortkasse({ state: 'skipped' }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['skip type, but it may exist upstream → remove (stops its reminders)', { shop: of(order({ payment_type: 'PayPal' })), recorded: submitted() }, { kind: 'remove', reason: 'payment type "PayPal" is not sent to Komfortkasse' }],
    ['unknown type → invalid naming PAYMENT_TYPE_MAP (never a silent skip)', { shop: of(order({ payment_type: 'rechnung' })) }, (plan) => expect(plan).toEqual({ kind: 'invalid', error: expect.stringMatching(/^order 100: payment type "rechnung" .*PAYMENT_TYPE_MAP/) })],
    ['no payment type → invalid', { shop: of(order({ payment_type: null })) }, (plan) => expect(plan).toEqual({ kind: 'invalid', error: expect.stringContaining('has no payment type') })],

    // canceled and returned
    ['canceled, submitted → remove', { shop: of(order({ status: 'canceled' })), recorded: submitted() }, { kind: 'remove' }],
    ['returned, submitted → remove', { shop: of(order({ status: 'returned' })), recorded: submitted() }, { kind: 'remove' }],
    ['canceled, an attempt of unknown fate → remove', { shop: of(order({ status: 'Cancelled' })), recorded: buildRecordedKomfortkasse({ firstAttemptedAt: '2024-05-01T08:00:00.000Z' }) }, { kind: 'remove' }],
    ['canceled, never submitted → forget', { shop: of(order({ status: 'canceled' })) }, { kind: 'forget', reason: 'canceled before it reached Komfortkasse' }],
    ['canceled with a skipped payment type, never submitted → forget', { shop: of(order({ status: 'canceled', payment_type: 'paypal' })), recorded: buildRecordedKomfortkasse({ state: 'skipped' }) }, { kind: 'forget', reason: 'canceled before it reached Komfortkasse' }],
    ['canceled, already removed → none', { shop: of(order({ status: 'canceled' })), recorded: submitted({ state: 'removed' }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],

    // submit and update
    ['first time → submit (no stopReminder)', { shop: of(order()) }, { kind: 'submit', hash: HASH, remindersStopped: false }],
    ['pending after an earlier failure → submit', { shop: of(order()), recorded: buildRecordedKomfortkasse() }, { kind: 'submit', hash: HASH, remindersStopped: false }],
    ['submitted with the same hash → unchanged', { shop: of(order()), recorded: submitted() }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['submitted with the same hash, newer snapshot → unchanged', { shop: of(order({ updated_at: LATE })), recorded: submitted() }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['submitted with another hash → submit', { shop: of(order({ status: 'in_progress' })), recorded: submitted() }, { kind: 'submit', hash: hashOf(order({ status: 'in_progress' })), remindersStopped: false }],
    ['skipped before, now a Komfortkasse type → submit', { shop: of(order()), recorded: buildRecordedKomfortkasse({ state: 'skipped' }) }, { kind: 'submit', hash: HASH, remindersStopped: false }],

    // reminders
    ['paid → submit with stopReminder true', { shop: of(order({ payment_status: 'paid' })), recorded: submitted() }, { kind: 'submit', hash: PAID_HASH, stopReminder: true, remindersStopped: true }],
    ['captured, already submitted → submit with stopReminder true', { shop: of(order({ payment_status: 'captured' })), recorded: submitted() }, { kind: 'submit', hash: hashOf(order({ payment_status: 'captured' })), stopReminder: true, remindersStopped: true }],
    ['closed, already submitted → closed counts as paid: stopReminder true', { shop: of(order({ status: 'closed' })), recorded: submitted() }, { kind: 'submit', hash: hashOf(order({ status: 'closed' })), stopReminder: true, remindersStopped: true }],
    ['closed, an attempt of unknown fate → submit with stopReminder true', { shop: of(order({ status: 'closed' })), recorded: buildRecordedKomfortkasse({ firstAttemptedAt: '2024-05-01T08:00:00.000Z' }) }, { kind: 'submit', hash: hashOf(order({ status: 'closed' })), stopReminder: true, remindersStopped: true }],
    ['paid again, same content → unchanged', { shop: of(order({ payment_status: 'paid' })), recorded: submitted({ payloadHash: PAID_HASH, remindersStopped: true }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
    ['back to not_paid after stopped → stopReminder false, once', { shop: of(order()), recorded: submitted({ remindersStopped: true }) }, { kind: 'submit', hash: HASH, stopReminder: false, remindersStopped: false }],
    ['not paid, told so before → unchanged', { shop: of(order()), recorded: submitted({ remindersStopped: false }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],

    // removed orders come back only on proof
    ['removed, late duplicate of the same snapshot → stale', { shop: of(order()), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY }) }, { kind: 'none', outcome: 'stale', why: 'the order was removed; this snapshot is not newer' }],
    ['removed without a recorded time (vanished), snapshot → stale', { shop: of(order({ updated_at: LATE })), recorded: submitted({ state: 'removed', sourceUpdatedAt: undefined }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'stale' })],
    ['removed, provably newer snapshot → submit', { shop: of(order({ updated_at: LATE })), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY }) }, { kind: 'submit', hash: hashOf(order({ updated_at: LATE })), remindersStopped: false }],
    ['removed, fetched from the shop (authoritative) → submit', { shop: of(order()), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY }), authoritative: true }, { kind: 'submit', hash: HASH, remindersStopped: false }],
    ['removed, operator → submit', { shop: of(order()), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY }), operator: true }, { kind: 'submit', hash: HASH, remindersStopped: false }],

    // parked after Komfortkasse refused the content
    ['needs-attention, same hash → unchanged', { shop: of(order()), recorded: submitted({ state: 'needs-attention', error: 'Komfortkasse 400: Invalid request' }) }, { kind: 'none', outcome: 'unchanged', why: 'Komfortkasse rejected this content before' }],
    ['needs-attention, same hash, operator → submit', { shop: of(order()), recorded: submitted({ state: 'needs-attention' }), operator: true }, { kind: 'submit', hash: HASH, remindersStopped: false }],
    ['needs-attention, same hash, but paid since → submit with stopReminder', { shop: of(order({ payment_status: 'paid' })), recorded: submitted({ state: 'needs-attention' }) }, { kind: 'submit', hash: HASH, stopReminder: true, remindersStopped: true }],
    ['needs-attention, changed content → submit', { shop: of(order({ status: 'in_progress' })), recorded: submitted({ state: 'needs-attention' }) }, { kind: 'submit', hash: hashOf(order({ status: 'in_progress' })), remindersStopped: false }],

    // settled before first sight: Komfortkasse would mail payment instructions for a paid order
    ...(['paid', 'captured', 'overpaid', ' Paid '] as const).map((paymentStatus): [string, Row, KomfortkassePlan] => [
      `payment_status ${JSON.stringify(paymentStatus)}, first seen → skip`,
      { shop: of(order({ payment_status: paymentStatus })) },
      { kind: 'skip', reason: `settled in the shop (payment_status ${paymentStatus.trim().toLowerCase()}) before it reached Komfortkasse: not submitted` },
    ]),
    ['closed, first seen → skip', { shop: of(order({ status: 'closed' })) }, { kind: 'skip', reason: 'settled in the shop (status closed) before it reached Komfortkasse: not submitted' }],
    ['closed and paid, first seen → skip, the payment named', { shop: of(order({ status: 'closed', payment_status: 'paid' })) }, { kind: 'skip', reason: 'settled in the shop (payment_status paid) before it reached Komfortkasse: not submitted' }],
    ['paid, pending after a failure that proved nothing was sent → skip', { shop: of(order({ payment_status: 'paid' })), recorded: buildRecordedKomfortkasse() }, (plan) => expect(plan).toMatchObject({ kind: 'skip' })],
    ['paid, parked (never submitted) → skip, which unparks it', { shop: of(order({ payment_status: 'paid' })), recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'E1' }) }, (plan) => expect(plan).toMatchObject({ kind: 'skip' })],
    ['paid, already skipped as settled → none', { shop: of(order({ payment_status: 'paid' })), recorded: buildRecordedKomfortkasse({ state: 'skipped', error: settledReason(order({ payment_status: 'paid' })) }) }, { kind: 'none', outcome: 'unchanged', why: 'already skipped as settled' }],
    ['closed, skipped before as paid → skip with the new reason', { shop: of(order({ status: 'closed' })), recorded: buildRecordedKomfortkasse({ state: 'skipped', error: settledReason(order({ payment_status: 'paid' })) }) }, (plan) => expect(plan).toMatchObject({ kind: 'skip', reason: expect.stringContaining('status closed') })],
    ['skipped as paid, back to not_paid → first submission', { shop: of(order()), recorded: buildRecordedKomfortkasse({ state: 'skipped', error: settledReason(order({ payment_status: 'paid' })) }) }, { kind: 'submit', hash: HASH, remindersStopped: false }],
    ['paid, canceled before it reached Komfortkasse (removed) → none', { shop: of(order({ payment_status: 'paid', updated_at: LATE })), recorded: buildRecordedKomfortkasse({ state: 'removed', sourceUpdatedAt: EARLY }) }, (plan) => expect(plan).toMatchObject({ kind: 'none' })],
    ['paid with a skipped payment type → skip for the payment type', { shop: of(order({ payment_status: 'captured', payment_type: 'paypal' })) }, { kind: 'skip', reason: 'payment type "paypal" is not sent to Komfortkasse' }],
    ['paid with an unknown payment type → skip as settled, not needs-attention', { shop: of(order({ payment_status: 'paid', payment_type: 'rechnung' })) }, (plan) => expect(plan).toMatchObject({ kind: 'skip', reason: expect.stringContaining('settled') })],
    ['closed, no country anywhere → skip as settled, not needs-attention', { shop: of(noCountry({ status: 'closed' })) }, (plan) => expect(plan).toMatchObject({ kind: 'skip', reason: expect.stringContaining('settled') })],
    ['paid and canceled, first seen → forget (canceled wins)', { shop: of(order({ status: 'canceled', payment_status: 'paid' })) }, { kind: 'forget', reason: 'canceled before it reached Komfortkasse' }],

    // deleted stays deleted: a deleted order cannot change, so every snapshot predates it
    ['deleted, a late snapshot with a newer updated_at → stale', { shop: of(order({ updated_at: LATE })), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY, vanishedAt: DELETED_AT }) }, { kind: 'none', outcome: 'stale', why: 'the order was deleted in the shop; only a fetch from the shop brings it back' }],
    ['deleted before it was ever submitted, a newer snapshot → stale', { shop: of(order({ updated_at: LATE })), recorded: buildRecordedKomfortkasse({ state: 'removed', vanishedAt: DELETED_AT }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'stale' })],
    ['deleted, a snapshot an operator sent (console: not from the shop) → stale all the same', { shop: of(order({ updated_at: LATE })), recorded: submitted({ state: 'removed', vanishedAt: DELETED_AT }), operator: true }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'stale' })],
    ['deleted, a snapshot that fails the schema → stale, not needs-attention', { shop: { kind: 'unusable', error: 'E1' }, recorded: submitted({ state: 'removed', vanishedAt: DELETED_AT }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'stale' })],
    ['deleted, but the shop gives the order again (fetched) → submit', { shop: of(order({ updated_at: LATE })), recorded: submitted({ state: 'removed', sourceUpdatedAt: EARLY, vanishedAt: DELETED_AT }), authoritative: true }, { kind: 'submit', hash: hashOf(order({ updated_at: LATE })), remindersStopped: false }],

    // mapping problems
    ['no country anywhere, no DEFAULT_COUNTRY_CODE → invalid naming it', { shop: of(noCountry()) }, (plan) => expect(plan).toEqual({ kind: 'invalid', error: expect.stringContaining('DEFAULT_COUNTRY_CODE') })],
    ['no country anywhere, DEFAULT_COUNTRY_CODE=AT → submit', { shop: of(noCountry()), mapping: { ...MAPPING, defaultCountryCode: 'AT' } }, (plan) => expect(plan).toMatchObject({ kind: 'submit', hash: expect.stringMatching(/^[0-9a-f]{64}$/) })],
    ['mapping error, parked for the same reason → unchanged', { shop: of(noCountry()), recorded: buildRecordedKomfortkasse({ state: 'needs-attention', error: 'order 100: billing address has no country (nor has the shipping address); set DEFAULT_COUNTRY_CODE to use a default' }) }, (plan) => expect(plan).toMatchObject({ kind: 'none', outcome: 'unchanged' })],
  ];

  it.each(cases)('%s', (_, row, expected) => {
    // prepare
    const input: KomfortkassePlanInput = {
      shop: row.shop,
      recorded: row.recorded,
      mapping: row.mapping ?? MAPPING,
      authoritative: row.authoritative ?? false,
      operator: row.operator ?? false,
    };

    // act
    const plan = planKomfortkasse(input);

    // assess
    if (typeof expected === 'function') expected(plan);
    else expect(plan).toEqual(expected);
  });

  it('leaves the reminder flag out of the hash: paid and unpaid differ only in stopReminder', () => {
    // act
    const unpaid = planKomfortkasse({ shop: of(order()), recorded: submitted({ payloadHash: 'another' }), mapping: MAPPING, authoritative: false, operator: false });
    const paid = planKomfortkasse({ shop: of(order({ payment_status: 'paid' })), recorded: submitted({ payloadHash: 'another' }), mapping: MAPPING, authoritative: false, operator: false });

    // assess
    expect(unpaid).toMatchObject({ kind: 'submit' });
    expect(paid).toMatchObject({ kind: 'submit', stopReminder: true });
    expect(PAID_HASH).toBe(HASH);
  });

  it('walks paid → paid again → unpaid → unpaid again with one call each time the flag changes', () => {
    // prepare
    const states = ['paid', 'paid', 'not_paid', 'not_paid', 'overpaid'];
    let recorded: RecordedKomfortkasse | undefined = submitted();
    const sent: (boolean | undefined | 'none')[] = [];

    // act: record what each submit leaves behind, as the worker's settle does
    for (const payment_status of states) {
      const plan = planKomfortkasse({ shop: of(order({ payment_status })), recorded, mapping: MAPPING, authoritative: false, operator: false });
      if (plan.kind === 'submit') {
        sent.push(plan.stopReminder);
        recorded = submitted({ payloadHash: plan.hash, remindersStopped: plan.remindersStopped });
      } else sent.push('none');
    }

    // assess
    expect(sent).toEqual([true, 'none', false, 'none', true]);
  });
});

describe('mayExistUpstream', () => {
  it.each<[string, RecordedKomfortkasse | undefined, boolean]>([
    ['no record', undefined, false],
    ['pending, never attempted', buildRecordedKomfortkasse(), false],
    ['pending, an attempt of unknown fate', buildRecordedKomfortkasse({ firstAttemptedAt: '2024-05-01T08:00:00.000Z' }), true],
    ['submitted', submitted(), true],
    ['needs-attention after a submission', submitted({ state: 'needs-attention' }), true],
    ['needs-attention, never submitted', buildRecordedKomfortkasse({ state: 'needs-attention' }), false],
    ['skipped, never submitted', buildRecordedKomfortkasse({ state: 'skipped' }), false],
    ['removed (after a submission)', submitted({ state: 'removed' }), false],
    ['removed, with an attempt mark left', buildRecordedKomfortkasse({ state: 'removed', firstAttemptedAt: '2024-05-01T08:00:00.000Z' }), false],
  ])('%s → %s', (_, recorded, expected) => {
    // act
    const result = mayExistUpstream(recorded);

    // assess
    expect(result).toBe(expected);
  });
});

describe('isNewer', () => {
  it.each<[string, string | undefined, string | undefined, boolean]>([
    ['later than', LATE, EARLY, true],
    ['earlier than', EARLY, LATE, false],
    ['the same instant', EARLY, EARLY, false],
    ['the same instant in another zone', '2024-05-01T08:00:00Z', EARLY, false],
    ['later by zone, though the wall clock is earlier', '2024-05-01T09:00:00Z', EARLY, true],
    ['the seed\'s malformed form, later', '2013-03-19T12 =>39 =>51+01 =>00', '2013-03-19T11:00:00Z', true],
    ['a missing first value', undefined, EARLY, false],
    ['a missing second value', LATE, undefined, false],
    ['an unparsable value', 'yesterday', EARLY, false],
    ['against an unparsable value', LATE, 'soon', false],
  ])('%s: isNewer(%j, %j) → %s', (_, a, b, expected) => {
    // act
    const result = isNewer(a, b);

    // assess
    expect(result).toBe(expected);
  });
});
