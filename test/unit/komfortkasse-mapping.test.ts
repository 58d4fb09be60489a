import { describe, expect, it } from 'vitest';
import { parsePaymentTypeMap } from '../../lib/config/payment-types.ts';
import {
  DEFAULT_PAYMENT_TYPE_MAP,
  paymentTypeVerdict,
  unknownPaymentTypeMessage,
  type PaymentTypeVerdict,
} from '../../lib/domain/payment-types.ts';
import { InvalidMessageError } from '../../lib/domain/errors.ts';
import {
  desiredKomfortkasseState,
  isCanceledInShop,
  isCanceledStatus,
  isPaidInShop,
  payloadHash,
  toKomfortkasseOrder,
  type KomfortkasseMappingContext,
} from '../../lib/domain/komfortkasse-mapping.ts';
import {
  komfortkasseErrorSchema,
  komfortkasseOrderResponseSchema,
  komfortkasseOrderSchema,
  type KomfortkasseOrder,
} from '../../lib/domain/komfortkasse.ts';
import {
  parseVersaCommerceDate,
  versaCommerceOrderSchema,
  type VersaCommerceOrder,
} from '../../lib/domain/versacommerce.ts';
import { buildVersaCommerceAddress, buildVersaCommerceOrder } from '../factories/orders.ts';

const context: KomfortkasseMappingContext = { paymentTypes: DEFAULT_PAYMENT_TYPE_MAP, firstSubmission: true };

function order(overrides: Record<string, unknown> = {}): VersaCommerceOrder {
  return versaCommerceOrderSchema.parse(buildVersaCommerceOrder(overrides));
}

function map(overrides: Record<string, unknown> = {}, ctx: Partial<KomfortkasseMappingContext> = {}): KomfortkasseOrder {
  return toKomfortkasseOrder(order(overrides), { ...context, ...ctx });
}

function invalidMessageFrom(action: () => unknown): InvalidMessageError {
  try {
    action();
  } catch (error) {
    if (error instanceof InvalidMessageError) return error;
    throw error;
  }
  throw new Error('expected an InvalidMessageError');
}

/** Paths of every null, empty array and empty string anywhere in `value`. */
function emptyValuePaths(value: unknown, path = '$'): string[] {
  if (value === null) return [path];
  if (value === '') return [path];
  if (Array.isArray(value)) {
    return value.length === 0 ? [path] : value.flatMap((child, index) => emptyValuePaths(child, `${path}[${index}]`));
  }
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) =>
      child === undefined ? [`${path}.${key}`] : emptyValuePaths(child, `${path}.${key}`),
    );
  }
  return [];
}

const seedBilling = {
  gender: 'male',
  firstName: 'Eduard',
  lastName: 'Siebert',
  company: 'VersaCommerce',
  street: 'Zwischen Den Hölzern 1a',
  postCode: '59514',
  city: 'Welver',
  countryCode: 'DE',
  phone: '+49 511 1659 800',
};

/** The exact payload of the seed order (shipping equals billing, so it is omitted). */
const seedPayload: KomfortkasseOrder = {
  date: '19-03-2013',
  customerEmail: 'support@versacommerce.de',
  customerNumber: '1000',
  type: 'COD',
  paymentMethod: 'cod',
  paymentMethodDescription: 'Nachnahme',
  statusDescription: 'open',
  amount: 15.94,
  currency: 'EUR',
  language: 'de',
  items: [{ number: 'SKU-10000', name: 'T-Shirt' }],
  billing: seedBilling as KomfortkasseOrder['billing'],
};

/** `seedPayload` with `changes` applied; a change to `undefined` removes the key. */
function seedPayloadWith(changes: Partial<Record<keyof KomfortkasseOrder, unknown>>): KomfortkasseOrder {
  const payload: Record<string, unknown> = { ...seedPayload };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete payload[key];
    else payload[key] = value;
  }
  return payload as KomfortkasseOrder;
}

describe('toKomfortkasseOrder', () => {
  it('maps the seed order to the exact Komfortkasse payload', () => {
    // prepare
    const seed = order();

    // act
    const payload = toKomfortkasseOrder(seed, context);

    // assess
    expect(payload).toStrictEqual(seedPayload);
    expect(komfortkasseOrderSchema.parse(payload)).toStrictEqual(payload);
    expect(JSON.stringify(payload)).not.toContain('196-083-565');
  });

  it("tolerates the seed's malformed created_at (12 =>39 =>51+01 =>00)", () => {
    // prepare
    const raw = '2013-03-19T12 =>39 =>51+01 =>00';

    // act
    const parsed = parseVersaCommerceDate(raw);
    const payload = map({ created_at: raw });

    // assess
    expect(parsed?.toISOString()).toBe('2013-03-19T11:39:51.000Z');
    expect(payload.date).toBe('19-03-2013');
  });

  it.each([
    ['2013-03-19T23:30:00Z', '20-03-2013'], // 00:30 CET
    ['2013-03-19T22:59:59Z', '19-03-2013'], // 23:59:59 CET
    ['2013-06-30T22:30:00+00:00', '01-07-2013'], // 00:30 CEST
    ['2013-06-30T21:59:59Z', '30-06-2013'], // 23:59:59 CEST
    ['2013-12-31T23:00:00Z', '01-01-2014'],
    ['2016-09-09 00:15', '09-09-2016'], // zone-less: Berlin wall clock
  ])('formats created_at %s as the Berlin calendar day %s', (createdAt, expected) => {
    // act
    const payload = map({ created_at: createdAt });

    // assess
    expect(payload.date).toBe(expected);
  });

  it('rejects an unparseable created_at as a permanent InvalidMessageError', () => {
    // act
    const error = invalidMessageFrom(() => map({ created_at: 'gestern' }));

    // assess
    expect(error.category).toBe('permanent');
    expect(error.message).toContain('created_at');
  });

  it.each([
    ['€', 'EUR'],
    [' € ', 'EUR'],
    ['EUR', 'EUR'],
    ['eur', 'EUR'],
    ['$', 'USD'],
    ['£', 'GBP'],
    ['CHF', 'CHF'],
    ['Fr.', 'CHF'],
    ['usd', 'USD'],
  ])('maps currency %j to %s', (currency, expected) => {
    // act
    const payload = map({ currency });

    // assess
    expect(payload.currency).toBe(expected);
  });

  it.each(['¥', 'Euro-Dollar', 'XYZ', 'E'])('rejects the unknown currency %j with InvalidMessageError', (currency) => {
    // act
    const error = invalidMessageFrom(() => map({ currency }));

    // assess
    expect(error.message).toContain('currency');
  });

  it.each([
    ['15.94', 15.94],
    ['15.945', 15.95],
    ['1.005', 1.01],
    [22.38, 22.38],
    ['0.0', 0],
    ['100', 100],
  ])('turns total %j into the amount %d', (total, expected) => {
    // act
    const payload = map({ total });

    // assess
    expect(payload.amount).toBe(expected);
  });

  it('rejects a negative total', () => {
    // act
    const error = invalidMessageFrom(() => map({ total: '-5.00' }));

    // assess
    expect(error.message).toContain('total');
  });

  it('gives a company address without names the gender company', () => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { firstname: '', lastname: null, title: 'Firma', company: 'Mustermann GmbH' });

    // act
    const payload = map({ billing_address: billing, shipping_address: null });

    // assess
    expect(payload.billing).toStrictEqual({
      gender: 'company',
      company: 'Mustermann GmbH',
      street: 'Zwischen Den Hölzern 1a',
      postCode: '59514',
      city: 'Welver',
      countryCode: 'DE',
      phone: '+49 511 1659 800',
    });
  });

  it.each([
    ['Herr', 'male'],
    ['herr', 'male'],
    ['Mr.', 'male'],
    ['Frau', 'female'],
    ['FRAU', 'female'],
    ['Mrs', 'female'],
    ['Ms.', 'female'],
    ['Dr.', 'unknown'],
    [null, 'unknown'],
  ])('maps title %j to gender %s', (title, gender) => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { title });

    // act
    const payload = map({ billing_address: billing, shipping_address: null });

    // assess
    expect(payload.billing.gender).toBe(gender);
  });

  it.each([
    ['de', 'DE'],
    ['Deutschland', 'DE'],
    ['Germany', 'DE'],
    ['DEU', 'DE'],
    ['Österreich', 'AT'],
    ['AUT', 'AT'],
    ['Schweiz', 'CH'],
    ['CHE', 'CH'],
    [' nl ', 'NL'],
  ])('maps country %j to countryCode %s', (country, expected) => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { country });

    // act
    const payload = map({ billing_address: billing, shipping_address: null });

    // assess
    expect(payload.billing.countryCode).toBe(expected);
  });

  it('rejects an unrecognised billing country instead of falling back', () => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { country: 'Atlantis' });

    // act
    const error = invalidMessageFrom(() => map({ billing_address: billing }, { defaultCountryCode: 'DE' }));

    // assess
    expect(error.message).toBe('order 100: billing address has country "Atlantis", not a 2-letter ISO country code');
  });

  it('rejects a billing address with neither last name nor company', () => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { lastname: '', company: null });

    // act
    const error = invalidMessageFrom(() => map({ billing_address: billing }));

    // assess
    expect(error.message).toContain('neither a last name nor a company');
    expect(error.message).not.toContain('Eduard');
  });

  it('omits the shipping address when it is missing', () => {
    // act
    const withNull = map({ shipping_address: null });
    const absent = map({ shipping_address: undefined });

    // assess
    expect(withNull).not.toHaveProperty('shipping');
    expect(absent).not.toHaveProperty('shipping');
    expect(withNull.billing).toStrictEqual(seedBilling);
  });

  it('omits a shipping address that maps to the same as billing', () => {
    // prepare: differs only in VersaCommerce-only fields (id, category, state)
    const shipping = buildVersaCommerceAddress('shipping', { id: 4711, state: 'NRW', country: 'Deutschland' });

    // act
    const payload = map({ shipping_address: shipping });

    // assess
    expect(payload).not.toHaveProperty('shipping');
  });

  it('sends a shipping address that differs from billing', () => {
    // prepare
    const shipping = buildVersaCommerceAddress('shipping', {
      title: 'Frau',
      firstname: 'Erika',
      lastname: 'Mustermann',
      company: '',
      street: 'Industriestr.',
      streetnumber: 33,
      zipcode: 63073,
      city: 'Offenbach am Main',
      phone: null,
    });

    // act
    const payload = map({ shipping_address: shipping });

    // assess
    expect(payload.billing).toStrictEqual(seedBilling);
    expect(payload.shipping).toStrictEqual({
      gender: 'female',
      firstName: 'Erika',
      lastName: 'Mustermann',
      street: 'Industriestr. 33',
      postCode: '63073',
      city: 'Offenbach am Main',
      countryCode: 'DE',
    });
  });

  it.each([
    ['an unrecognised country', { city: 'Somewhere', country: 'Atlantis' }, 'order 100: shipping address has country "Atlantis", not a 2-letter ISO country code'],
    ['neither a last name nor a company', { lastname: '', company: null }, 'order 100: shipping address has neither a last name nor a company'],
  ])('rejects a shipping address with %s instead of dropping it', (_name, overrides, message) => {
    // prepare
    const shipping = buildVersaCommerceAddress('shipping', overrides);

    // act
    const error = invalidMessageFrom(() => map({ shipping_address: shipping }));

    // assess
    expect(error.message).toBe(message);
  });

  it('uses the shipping address as billing when billing is missing', () => {
    // prepare
    const shipping = buildVersaCommerceAddress('shipping', { city: 'Hamm', zipcode: '59063' });

    // act
    const payload = map({ billing_address: null, shipping_address: shipping });

    // assess
    expect(payload.billing).toStrictEqual({ ...seedBilling, city: 'Hamm', postCode: '59063' });
    expect(payload).not.toHaveProperty('shipping');
  });

  it('rejects an order with neither billing nor shipping address', () => {
    // act
    const error = invalidMessageFrom(() => map({ billing_address: null, shipping_address: undefined }));

    // assess
    expect(error.message).toContain('neither a billing nor a shipping address');
  });

  it('builds street from street and streetnumber, skipping missing parts', () => {
    // prepare
    const cases = [
      { street: ' Bahnhofstr. ', streetnumber: ' 14 ', expected: 'Bahnhofstr. 14' },
      { street: 'Bahnhofstr.', streetnumber: null, expected: 'Bahnhofstr.' },
      { street: 'Bahnhofstr. 14', streetnumber: '14', expected: 'Bahnhofstr. 14' },
      { street: null, streetnumber: '', expected: undefined },
    ];

    // act
    const streets = cases.map(({ street, streetnumber }) =>
      map({ billing_address: buildVersaCommerceAddress('billing', { street, streetnumber }), shipping_address: null }).billing,
    );

    // assess
    cases.forEach(({ expected }, index) => {
      if (expected === undefined) expect(streets[index]).not.toHaveProperty('street');
      else expect(streets[index]?.street).toBe(expected);
    });
  });

  it('omits every absent optional field: no null, no empty array, no empty string anywhere', () => {
    // prepare
    const sparse = {
      customer_email: null,
      customer_id: null,
      checkout_locale: null,
      external_invoicing_id: '',
      origin_id: '',
      origin_name: null,
      customer: { email: null },
      items: [],
      shipments: [],
      shipping_address: null,
      billing_address: { lastname: 'Siebert', firstname: '', company: null, street: '', streetnumber: null, zipcode: '', city: null, country: 'DE', phone: '', title: '' },
    };

    // act
    const payload = map(sparse);

    // assess
    expect(payload).toStrictEqual({
      date: '19-03-2013',
      type: 'COD',
      paymentMethod: 'cod',
      paymentMethodDescription: 'Nachnahme',
      statusDescription: 'open',
      amount: 15.94,
      currency: 'EUR',
      billing: { gender: 'unknown', lastName: 'Siebert', countryCode: 'DE' },
    });
    expect(emptyValuePaths(payload)).toEqual([]);
    expect(emptyValuePaths(map())).toEqual([]);
  });

  it('omits items without any number and shipments without tracking codes', () => {
    // prepare
    const items = [{ title: 'Gutschein' }, { code: '', product_id: null, title: 'Leer' }];
    const shipments = [{ tracking_code: null }, { tracking_number: '' }];

    // act
    const payload = map({ items, shipments, items_count: 2 });

    // assess
    expect(payload).not.toHaveProperty('items');
    expect(payload).not.toHaveProperty('shippingNumbers');
    expect(emptyValuePaths(payload)).toEqual([]);
  });


  it('numbers items by code, then product_id, then id, and names them by title', () => {
    // prepare
    const items = [
      { id: 1, product_id: 10, code: 'SKU-1', title: 'T-Shirt' },
      { id: 2, product_id: 20, code: null, title: 'Jeans' },
      { id: 3, product_id: null, code: '' },
      { id: 4, product_id: '40', code: 7633 },
    ];

    // act
    const payload = map({ items });

    // assess
    expect(payload.items).toStrictEqual([
      { number: 'SKU-1', name: 'T-Shirt' },
      { number: '20', name: 'Jeans' },
      { number: '3' },
      { number: '7633' },
    ]);
  });

  it('sends tracking codes, the invoicing id and the checkout language', () => {
    // prepare
    const shipments = [
      { tracking_code: '897126743438923093287376' },
      { tracking_number: 'JJD0099' },
      { tracking_code: '897126743438923093287376' },
    ];

    // act
    const payload = map({ shipments, external_invoicing_id: 100072533, checkout_locale: 'de_DE' });

    // assess
    expect(payload.shippingNumbers).toStrictEqual(['897126743438923093287376', 'JJD0099']);
    expect(payload.invoiceNumbers).toStrictEqual(['100072533']);
    expect(payload.language).toBe('de');
  });

  it('puts the shop status into statusDescription', () => {
    // act
    const statuses = ['open', 'in_progress', 'closed'].map((status) => map({ status }).statusDescription);

    // assess
    expect(statuses).toEqual(['open', 'in_progress', 'closed']);
  });

  it('sends initialDunningLevel only on the first submission', () => {
    // act
    const first = map({}, { initialDunningLevel: 1, firstSubmission: true });
    const firstZero = map({}, { initialDunningLevel: 0, firstSubmission: true });
    const later = map({}, { initialDunningLevel: 1, firstSubmission: false });
    const unset = map({}, { firstSubmission: true });

    // assess
    expect(first.initialDunningLevel).toBe(1);
    expect(firstZero.initialDunningLevel).toBe(0);
    expect(later).not.toHaveProperty('initialDunningLevel');
    expect(unset).not.toHaveProperty('initialDunningLevel');
  });

  it('rejects a payment type that is not sent to Komfortkasse', () => {
    // act
    const error = invalidMessageFrom(() => map({ payment_type: 'paypal' }));

    // assess
    expect(error.message).toContain('"paypal"');
  });
});

describe('desiredKomfortkasseState', () => {
  it.each(Object.entries(DEFAULT_PAYMENT_TYPE_MAP))('handles default payment type %s as %s', (paymentType, target) => {
    // prepare
    const vcOrder = order({ payment_type: paymentType });

    // act
    const state = desiredKomfortkasseState(vcOrder, context);

    // assess
    if (target === 'SKIP') {
      expect(state).toStrictEqual({ action: 'skip', reason: `payment type "${paymentType}" is not sent to Komfortkasse` });
    } else {
      expect(state.action).toBe('submit');
      if (state.action === 'submit') {
        expect(state.payload.type).toBe(target);
        expect(state.payload.paymentMethod).toBe(paymentType);
      }
    }
  });

  const unknownTypeMessage =
    'order 100: payment type "rechnung" is not in the payment-type table — add it to PAYMENT_TYPE_MAP (as INVOICE, PREPAYMENT, COD or SKIP)';
  const missingTypeMessage =
    'order 100: has no payment type — PAYMENT_TYPE_MAP maps only named payment types (to INVOICE, PREPAYMENT, COD or SKIP); give the order a payment type in the shop';

  it.each([
    ['rechnung', unknownTypeMessage],
    [' rechnung ', unknownTypeMessage],
    ['bitcoin', unknownTypeMessage.replace('"rechnung"', '"bitcoin"')],
    ['', missingTypeMessage],
    ['   ', missingTypeMessage],
    [null, missingTypeMessage],
    [undefined, missingTypeMessage],
  ])('needs attention for payment type %j (not in the table), naming PAYMENT_TYPE_MAP', (paymentType, message) => {
    // prepare
    const vcOrder = order({ payment_type: paymentType });

    // act
    const error = invalidMessageFrom(() => desiredKomfortkasseState(vcOrder, context));
    const mappingError = invalidMessageFrom(() => toKomfortkasseOrder(vcOrder, context));

    // assess
    expect(error.message).toBe(message);
    expect(error.category).toBe('permanent');
    expect(mappingError.message).toBe(message);
  });

  it.each([
    ['misc', 'payment type "misc" is not sent to Komfortkasse'],
    ['PayPal', 'payment type "PayPal" is not sent to Komfortkasse'],
    [' cc ', 'payment type "cc" is not sent to Komfortkasse'],
  ])('skips payment type %j, which the table maps to SKIP', (paymentType, reason) => {
    // act
    const state = desiredKomfortkasseState(order({ payment_type: paymentType }), context);

    // assess
    expect(state).toStrictEqual({ action: 'skip', reason });
  });

  it('follows an operator table merged over the default', () => {
    // prepare
    const paymentTypes = parsePaymentTypeMap('{"paypal":"PREPAYMENT"}');

    // act
    const state = desiredKomfortkasseState(order({ payment_type: 'paypal' }), { ...context, paymentTypes });

    // assess
    expect(state.action === 'submit' && state.payload.type).toBe('PREPAYMENT');
  });

  it.each([
    ['canceled', 'cod'],
    ['canceled', 'paypal'],
    ['Cancelled', 'invoice'],
    ['returned', 'cod'],
    [' RETURNED ', 'prepayment'],
    ['returned', 'paypal'],
    ['returned', 'rechnung'], // not in the table: a canceled order is removed before the type matters
    ['canceled', null],
  ])('removes an order with status %j (payment type %j)', (status, paymentType) => {
    // act
    const state = desiredKomfortkasseState(order({ status, payment_type: paymentType }), context);

    // assess
    expect(state).toStrictEqual({ action: 'remove' });
  });

  it('submits the seed order', () => {
    // act
    const state = desiredKomfortkasseState(order(), context);

    // assess
    expect(state).toStrictEqual({ action: 'submit', payload: map() });
  });
});

describe('isCanceledInShop, isCanceledStatus and isPaidInShop', () => {
  it.each([
    ['canceled', true],
    ['cancelled', true],
    [' Canceled ', true],
    ['returned', true],
    ['RETURNED', true],
    ['open', false],
    ['in_progress', false],
    ['closed', false],
    ['returned_partially', false],
  ])('isCanceledInShop / isCanceledStatus(status %j) is %s', (status, expected) => {
    // prepare
    const vcOrder = order({ status });

    // act
    const canceled = isCanceledInShop(vcOrder);
    const canceledStatus = isCanceledStatus(status);

    // assess
    expect(canceled).toBe(expected);
    expect(canceledStatus).toBe(expected);
  });

  it.each([
    ['paid', true],
    [' Paid ', true],
    ['captured', true],
    ['OVERPAID', true],
    ['not_paid', false],
    ['partial_payment', false],
    ['reserved', false],
    ['capture_error', false],
    ['declined', false],
    ['', false],
    [null, false],
    [undefined, false],
  ])('isPaidInShop(payment_status %j) is %s', (paymentStatus, expected) => {
    // prepare
    const vcOrder = order({ payment_status: paymentStatus });

    // act
    const paid = isPaidInShop(vcOrder);

    // assess
    expect(paid).toBe(expected);
  });
});

describe('paymentTypeVerdict', () => {
  const operatorTable = parsePaymentTypeMap('{"rechnung":"INVOICE"}');
  const rechnungMessage =
    'payment type "rechnung" is not in the payment-type table — add it to PAYMENT_TYPE_MAP (as INVOICE, PREPAYMENT, COD or SKIP)';
  const noTypeMessage =
    'has no payment type — PAYMENT_TYPE_MAP maps only named payment types (to INVOICE, PREPAYMENT, COD or SKIP); give the order a payment type in the shop';

  it.each<[string, string | null | undefined, typeof DEFAULT_PAYMENT_TYPE_MAP, PaymentTypeVerdict]>([
    ['a Komfortkasse type', 'cod', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'komfortkasse', paymentType: 'cod', type: 'COD' }],
    ['a type in other case, trimmed', ' Invoice ', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'komfortkasse', paymentType: 'Invoice', type: 'INVOICE' }],
    ['a SKIP type', 'paypal', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'skip', paymentType: 'paypal' }],
    ['marketplace orders (misc)', 'misc', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'skip', paymentType: 'misc' }],
    ['a type not in the table', 'rechnung', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'unknown', paymentType: 'rechnung', message: rechnungMessage }],
    ['the same type in an operator table', 'rechnung', operatorTable, { kind: 'komfortkasse', paymentType: 'rechnung', type: 'INVOICE' }],
    ['an inherited property name', 'constructor', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'unknown', paymentType: 'constructor', message: rechnungMessage.replace('"rechnung"', '"constructor"') }],
    ['an empty type', ' ', DEFAULT_PAYMENT_TYPE_MAP, { kind: 'unknown', message: noTypeMessage }],
    ['no type', null, DEFAULT_PAYMENT_TYPE_MAP, { kind: 'unknown', message: noTypeMessage }],
  ])('judges %s (%j)', (_name, paymentType, table, expected) => {
    // act
    const verdict = paymentTypeVerdict(paymentType, table);

    // assess
    expect(verdict).toStrictEqual(expected);
  });

  it('words the message the same for both sides', () => {
    // act
    const named = unknownPaymentTypeMessage(' rechnung ');
    const missing = unknownPaymentTypeMessage(undefined);

    // assess
    expect(named).toBe(rechnungMessage);
    expect(missing).toBe(noTypeMessage);
  });
});

describe('toKomfortkasseOrder: filling every field the shop can fill', () => {
  it.each([
    ['true', true, seedPayloadWith({ stopReminder: true })],
    ['false', false, seedPayloadWith({ stopReminder: false })],
    ['undefined (omitted)', undefined, seedPayload],
  ])('sends stopReminder %s as the caller decides', (_name, stopReminder, expected) => {
    // prepare
    const ctx: KomfortkasseMappingContext = { ...context, stopReminder };

    // act
    const payload = toKomfortkasseOrder(order({ payment_status: 'paid' }), ctx);

    // assess
    expect(payload).toStrictEqual(expected);
  });

  it.each([
    ['customer_email first', { customer_email: 'a@example.org', billingEmail: 'b@example.org', customer: { email: 'c@example.org' } }, 'a@example.org'],
    ['customer_email trimmed', { customer_email: ' a@example.org ', billingEmail: 'b@example.org', customer: null }, 'a@example.org'],
    ['billing email when customer_email is missing', { customer_email: null, billingEmail: 'b@example.org', customer: { email: 'c@example.org' } }, 'b@example.org'],
    ['billing email when customer_email is no email', { customer_email: 'kein-email', billingEmail: 'b@example.org', customer: null }, 'b@example.org'],
    ['customer.email last', { customer_email: '', billingEmail: '', customer: { email: 'c@example.org' } }, 'c@example.org'],
    ['customer.email when the others have no @', { customer_email: 'x', billingEmail: 'y', customer: { email: 'c@example.org', id: 1000 } }, 'c@example.org'],
    ['nothing when none looks like an email', { customer_email: 'kein-email', billingEmail: 'max @example.org', customer: { email: 'c.example.org' } }, undefined],
    ['nothing when all are absent', { customer_email: null, billingEmail: null, customer: null }, undefined],
  ])('takes customerEmail from %s', (_name, { customer_email, billingEmail, customer }, customerEmail) => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { email: billingEmail });
    const shipping = buildVersaCommerceAddress('shipping', { email: null });

    // act
    const payload = map({ customer_email, billing_address: billing, shipping_address: shipping, customer });

    // assess
    expect(payload).toStrictEqual(seedPayloadWith({ customerEmail }));
  });

  it.each([
    ['street, number and extension', 'Bahnhofstr.', '14', 'Hinterhaus', 'Bahnhofstr. 14, Hinterhaus'],
    ['no extension', 'Bahnhofstr.', '14', '', 'Bahnhofstr. 14'],
    ['a blank extension', 'Bahnhofstr.', 14, '  ', 'Bahnhofstr. 14'],
    ['no number', 'Bahnhofstr.', null, 'c/o Müller', 'Bahnhofstr., c/o Müller'],
    ['only an extension', null, '', 'Packstation 105', 'Packstation 105'],
    ['a number already in the street, padded parts', ' Bahnhofstr. 14 ', '14', ' 2. OG ', 'Bahnhofstr. 14, 2. OG'],
    ['nothing at all', null, null, null, undefined],
  ])('keeps the extension with the street: %s', (_name, street, streetnumber, extension, expected) => {
    // prepare
    const billing = buildVersaCommerceAddress('billing', { street, streetnumber, extension });

    // act
    const payload = map({ billing_address: billing, shipping_address: null });

    // assess
    const expectedBilling: Record<string, unknown> = { ...seedBilling, street: expected };
    if (expected === undefined) delete expectedBilling.street;
    expect(payload).toStrictEqual(seedPayloadWith({ billing: expectedBilling }));
  });

  it.each([
    ['a marketplace order number', { origin_name: 'amazon', origin_id: '1234-123435-124243' }, '1234-123435-124243'],
    ['a numeric origin_id', { origin_name: 'ebay', origin_id: 987654 }, '987654'],
    ['a padded origin_id without origin_name', { origin_id: ' 028-1 ', origin_name: null }, '028-1'],
    ['an empty origin_id', { origin_name: 'amazon', origin_id: '' }, undefined],
    ['a null origin_id', { origin_id: null }, undefined],
    ['no origin at all', {}, undefined],
  ])('maps %s to marketplaceNumber', (_name, overrides, marketplaceNumber) => {
    // act
    const payload = map(overrides);

    // assess
    expect(payload).toStrictEqual(seedPayloadWith({ marketplaceNumber }));
  });

  it('maps an API/marketplace order the shop created without countries (seed 002 "Create Order")', () => {
    // prepare
    const address = { firstname: 'my firstname', lastname: 'my lastname', zipcode: 12345, city: 'Hannover' };
    const apiOrder = order({
      id: 37578,
      code: 'API-1',
      payment_type: 'invoice',
      payment_status: 'paid',
      total: 0.0,
      customer_email: null,
      customer_id: null,
      checkout_locale: null,
      origin_name: 'amazon',
      origin_id: '1234-123435-124243',
      customer: { email: 'kunde@example.org', birthday: '1970-01-01' },
      items: [{ product_id: 1, quantity: 1 }],
      billing_address: { ...address, street: 'my street', streetnumber: 1, extension: 'Hinterhaus' },
      shipping_address: { ...address, street: 'mystreet', streetnumber: 1 },
    });

    // act
    const payload = toKomfortkasseOrder(apiOrder, { ...context, defaultCountryCode: 'DE', stopReminder: true });

    // assess
    expect(payload).toStrictEqual({
      date: '19-03-2013',
      customerEmail: 'kunde@example.org',
      type: 'INVOICE',
      marketplaceNumber: '1234-123435-124243',
      paymentMethod: 'invoice',
      paymentMethodDescription: 'Rechnung',
      statusDescription: 'open',
      amount: 0,
      currency: 'EUR',
      items: [{ number: '1' }],
      billing: {
        gender: 'unknown',
        firstName: 'my firstname',
        lastName: 'my lastname',
        street: 'my street 1, Hinterhaus',
        postCode: '12345',
        city: 'Hannover',
        countryCode: 'DE',
      },
      shipping: {
        gender: 'unknown',
        firstName: 'my firstname',
        lastName: 'my lastname',
        street: 'mystreet 1',
        postCode: '12345',
        city: 'Hannover',
        countryCode: 'DE',
      },
      stopReminder: true,
    });
    expect(komfortkasseOrderSchema.parse(payload)).toStrictEqual(payload);
  });
});

describe('toKomfortkasseOrder: countries', () => {
  /** A shipping address that differs from billing (another city), so it is sent. */
  const otherShipping = (country: unknown) => buildVersaCommerceAddress('shipping', { city: 'Hamm', zipcode: '59063', country });
  const shippingTo = (countryCode: string) => ({ ...seedBilling, city: 'Hamm', postCode: '59063', countryCode });

  it.each([
    ['both countries given', { billing: 'DE', shipping: otherShipping('AT') }, undefined, { billing: 'DE', shipping: shippingTo('AT') }],
    ['billing without country takes the shipping country', { billing: null, shipping: otherShipping('Österreich') }, undefined, { billing: 'AT', shipping: shippingTo('AT') }],
    ['the shipping country wins over the default', { billing: '', shipping: otherShipping('AT') }, 'CH', { billing: 'AT', shipping: shippingTo('AT') }],
    ['neither has one: the default for both', { billing: null, shipping: otherShipping(null) }, 'CH', { billing: 'CH', shipping: shippingTo('CH') }],
    ['a default given by name', { billing: null, shipping: otherShipping('') }, ' Schweiz ', { billing: 'CH', shipping: shippingTo('CH') }],
    ['shipping without country takes the billing country', { billing: 'Deutschland', shipping: otherShipping(null) }, 'CH', { billing: 'DE', shipping: shippingTo('DE') }],
    ['no shipping address: the default', { billing: null, shipping: null }, 'AT', { billing: 'AT', shipping: undefined }],
    [
      'a shipping address equal to billing once it has the country is omitted',
      { billing: null, shipping: buildVersaCommerceAddress('shipping', { country: null }) },
      'DE',
      { billing: 'DE', shipping: undefined },
    ],
  ])('%s', (_name, { billing, shipping }, defaultCountryCode, expected) => {
    // prepare
    const billingAddress = buildVersaCommerceAddress('billing', { country: billing });

    // act
    const payload = map({ billing_address: billingAddress, shipping_address: shipping }, { defaultCountryCode });

    // assess
    expect(payload).toStrictEqual(
      seedPayloadWith({ billing: { ...seedBilling, countryCode: expected.billing }, shipping: expected.shipping }),
    );
  });

  it('uses the default for a shipping address standing in for a blank billing address', () => {
    // prepare
    const shipping = buildVersaCommerceAddress('shipping', { country: undefined });

    // act
    const payload = map({ billing_address: { country: '', city: null }, shipping_address: shipping }, { defaultCountryCode: 'LU' });

    // assess
    expect(payload).toStrictEqual(seedPayloadWith({ billing: { ...seedBilling, countryCode: 'LU' } }));
  });

  it.each([
    [
      'neither address has a country',
      { billing_address: buildVersaCommerceAddress('billing', { country: null }), shipping_address: otherShipping('') },
      undefined,
      'order 100: billing address has no country (nor has the shipping address); set DEFAULT_COUNTRY_CODE to use a default',
    ],
    [
      'the default is blank',
      { billing_address: buildVersaCommerceAddress('billing', { country: '' }), shipping_address: otherShipping(null) },
      '  ',
      'order 100: billing address has no country (nor has the shipping address); set DEFAULT_COUNTRY_CODE to use a default',
    ],
    [
      'there is no shipping address',
      { billing_address: buildVersaCommerceAddress('billing', { country: null }), shipping_address: null },
      undefined,
      'order 100: billing address has no country (and there is no shipping address); set DEFAULT_COUNTRY_CODE to use a default',
    ],
    [
      'the shipping address stands in for billing',
      { billing_address: null, shipping_address: otherShipping(null) },
      undefined,
      'order 100: shipping address (used as billing) has no country; set DEFAULT_COUNTRY_CODE to use a default',
    ],
    [
      'the default is no country',
      { billing_address: buildVersaCommerceAddress('billing', { country: null }), shipping_address: otherShipping(null) },
      'Atlantis',
      'order 100: billing address has no country (nor has the shipping address), and DEFAULT_COUNTRY_CODE "Atlantis" is not a 2-letter ISO country code',
    ],
    [
      'billing has none and the shipping country is unrecognised',
      { billing_address: buildVersaCommerceAddress('billing', { country: null }), shipping_address: otherShipping('Atlantis') },
      'DE',
      'order 100: shipping address has country "Atlantis", not a 2-letter ISO country code',
    ],
  ])('needs attention when %s', (_name, overrides, defaultCountryCode, message) => {
    // act
    const error = invalidMessageFrom(() => map(overrides, { defaultCountryCode }));

    // assess
    expect(error.message).toBe(message);
  });
});

describe('payloadHash', () => {
  it('ignores stopReminder, which the planner tracks on its own', () => {
    // prepare
    const payloads = [true, false, undefined].map((stopReminder) => map({}, { stopReminder }));

    // act
    const hashes = payloads.map(payloadHash);

    // assess
    expect(payloads[0]).toHaveProperty('stopReminder', true);
    expect(new Set(hashes).size).toBe(1);
  });

  it('is the same with and without initialDunningLevel', () => {
    // prepare
    const first = map({}, { initialDunningLevel: 2, firstSubmission: true });
    const later = map({}, { initialDunningLevel: 2, firstSubmission: false });

    // act
    const firstHash = payloadHash(first);
    const laterHash = payloadHash(later);

    // assess
    expect(first).toHaveProperty('initialDunningLevel', 2);
    expect(firstHash).toMatch(/^[0-9a-f]{64}$/);
    expect(firstHash).toBe(laterHash);
  });

  it('does not depend on key order', () => {
    // prepare
    const payload = map();
    const reordered = Object.fromEntries(Object.entries(payload).reverse()) as KomfortkasseOrder;
    reordered.billing = Object.fromEntries(Object.entries(payload.billing).reverse()) as KomfortkasseOrder['billing'];

    // act & assess
    expect(payloadHash(reordered)).toBe(payloadHash(payload));
  });

  it('changes when the amount changes', () => {
    // act
    const before = payloadHash(map({ total: '15.94' }));
    const after = payloadHash(map({ total: '15.95' }));

    // assess
    expect(after).not.toBe(before);
  });
});

describe('Komfortkasse schemas', () => {
  it('rejects null, unknown keys and an address without lastName or company', () => {
    // prepare
    const valid = map();

    // act
    const withNull = komfortkasseOrderSchema.safeParse({ ...valid, customerEmail: null });
    const withNumber = komfortkasseOrderSchema.safeParse({ ...valid, number: '196-083-565' });
    const withEmptyList = komfortkasseOrderSchema.safeParse({ ...valid, invoiceNumbers: [] });
    const nameless = komfortkasseOrderSchema.safeParse({ ...valid, billing: { countryCode: 'DE', firstName: 'Eduard' } });
    const badCountry = komfortkasseOrderSchema.safeParse({ ...valid, billing: { ...valid.billing, countryCode: 'DEU' } });

    // assess
    expect(komfortkasseOrderSchema.safeParse(valid).success).toBe(true);
    expect(withNull.success).toBe(false);
    expect(withNumber.success).toBe(false);
    expect(withEmptyList.success).toBe(false);
    expect(nameless.success).toBe(false);
    expect(badCountry.success).toBe(false);
  });

  it('reads a Komfortkasse response loosely and an error body', () => {
    // prepare
    const body = { ...map(), number: '196-083-565', referenceNumber: 'K1234A', paymentStatus: 'UNPAID', bankAccount: null, dunningLevel: null };

    // act
    const response = komfortkasseOrderResponseSchema.parse(body);
    const error = komfortkasseErrorSchema.parse({ error: 'Order not found' });

    // assess
    expect(response.number).toBe('196-083-565');
    expect(response.referenceNumber).toBe('K1234A');
    expect(response.paymentStatus).toBe('UNPAID');
    expect(response.dunningLevel).toBeUndefined();
    expect(error.error).toBe('Order not found');
  });
});
