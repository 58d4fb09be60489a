import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchLogger, logger, orderLogger } from '../../lib/observability/logger.ts';
import { redact, redactText } from '../../lib/observability/redact.ts';
import { buildVersaCommerceAddress, buildVersaCommerceOrder } from '../factories/orders.ts';

const MASK = '[redacted]';

/** Every leaf string of a value, to assert on what could reach a log line. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

describe('redact: PII keys', () => {
  it('masks names, emails, phones and addresses anywhere in a VersaCommerce order', () => {
    // prepare
    const order = buildVersaCommerceOrder({
      customer_email: 'erika.mustermann@example.org',
      billing_address: buildVersaCommerceAddress('billing', {
        firstname: 'Erika',
        lastname: 'Mustermann',
        phone: '+49 30 98765432',
        street: 'Lindenallee',
        streetnumber: '7b',
        zipcode: '10115',
        city: 'Musterhausen',
        company: 'Mustermann Feinkost GmbH',
        email: 'erika.mustermann@example.org',
      }),
    });
    // act
    const out = redact({ order }) as { order: Record<string, any> };
    // assess
    const billing = out.order.billing_address;
    for (const key of ['firstname', 'lastname', 'phone', 'street', 'streetnumber', 'zipcode', 'city', 'company', 'email', 'title']) {
      expect(billing[key], key).toBe(MASK);
    }
    expect(out.order.customer_email).toBe(MASK);
    expect(out.order.shipping_address.lastname).toBe(MASK);
    expect(out.order.note).toBe(MASK);
    const leaked = strings(out).filter((s) => /Erika|Mustermann|Lindenallee|98765432|10115|Musterhausen|example\.org|Siebert|Eduard|Hölzern/.test(s));
    expect(leaked).toEqual([]);
  });

  it('masks the Komfortkasse payload fields (camelCase) too', () => {
    const payload = {
      customerEmail: 'max@example.org',
      billing: { gender: 'male', firstName: 'Max', lastName: 'Mustermann', street: 'Bahnhofstr. 14', postCode: '63073', city: 'Offenbach', phone: '+49 8033 603 9778', countryCode: 'DE' },
      shipping: { company: 'Mustermann GmbH' },
    };
    const out = redact(payload) as any;
    expect(out.customerEmail).toBe(MASK);
    expect(out.billing).toMatchObject({ firstName: MASK, lastName: MASK, street: MASK, postCode: MASK, city: MASK, phone: MASK, countryCode: 'DE', gender: 'male' });
    expect(out.shipping.company).toBe(MASK);
  });

  it('keeps what operators need: ids, codes, amounts, states, timestamps, correlation ids', () => {
    const fields = {
      orderId: 100,
      orderCode: '196-083-565',
      correlationId: '3f0c2a9e-8d1b-4c55-9a57-0d3e2b1c4f60',
      amount: 15.94,
      currency: 'EUR',
      outcome: 'submitted',
      httpStatus: 201,
      at: '2025-06-01T10:00:00.000+02:00',
      seedDate: '2013-03-19T12 =>39 =>51+01 =>00',
      apiVersion: '06.2024',
    };
    expect(redact(fields)).toEqual(fields);
  });

  it('walks arrays and nested objects, and caps depth', () => {
    const nested = { items: [{ email: 'a@b.de' }, { list: ['call +49 511 1659 800'] }] };
    expect(redact(nested)).toEqual({ items: [{ email: MASK }, { list: [`call ${MASK}`] }] });
    let deep: Record<string, unknown> = { email: 'x@y.de' };
    for (let i = 0; i < 12; i++) deep = { deeper: deep };
    expect(JSON.stringify(redact(deep))).not.toContain('x@y.de');
  });
});

describe('redact: free text', () => {
  it.each([
    ['customerEmail erika.mustermann@example.org rejected', 'customerEmail [redacted] rejected'],
    ['phone +49 (0)30 98765432 invalid', 'phone [redacted] invalid'],
    ['call 0511 1659800 or 0511/1659800', `call ${MASK} or ${MASK}`],
  ])('masks emails and phone numbers in %j', (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it.each(['order 196-083-565 submitted', 'Komfortkasse answered 400: invalid amount', 'latency 1234 ms', '2025-06-01T10:00:00+02:00'])(
    'leaves %j alone',
    (text) => {
      expect(redactText(text)).toBe(text);
    },
  );

  it('turns an Error into name and redacted message (no stack, no cause)', () => {
    const error = new Error('Komfortkasse answered 400: customerEmail max@example.org is invalid', { cause: { email: 'max@example.org' } });
    expect(redact({ error })).toEqual({ error: { name: 'Error', message: `Komfortkasse answered 400: customerEmail ${MASK} is invalid` } });
  });
});

describe('logger: JSON lines through the redaction', () => {
  let lines: string[];
  let restore: () => void;

  beforeEach(() => {
    lines = [];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const capture = (chunk: unknown) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    logger.setLogLevel('INFO');
    restore = () => {
      process.stdout.write = out;
      process.stderr.write = err;
      logger.setLogLevel('WARN');
    };
  });
  afterEach(() => restore());

  it('stamps an order logger line with order and correlation id and masks PII in attributes and message', () => {
    // act
    orderLogger({ orderId: 100, orderCode: '196-083-565', correlationId: 'corr-1' }).warn('rejected: customer max@example.org', {
      billing: { lastName: 'Mustermann', city: 'Offenbach' },
      error: 'UpstreamError: phone +49 8033 603 9778 invalid',
    });
    // assess
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 'WARN', orderId: 100, orderCode: '196-083-565', correlationId: 'corr-1', service: 'orderbridge' });
    expect(line.message).toBe(`rejected: customer ${MASK}`);
    expect(line.billing).toEqual({ lastName: MASK, city: MASK });
    expect(line.error).toBe(`UpstreamError: phone ${MASK} invalid`);
    expect(lines[0]).not.toMatch(/Mustermann|Offenbach|example\.org|8033/);
  });

  it("stamps a batch logger line with every order's correlation id, once each", () => {
    batchLogger(['c-1', 'c-2', 'c-1']).info('klar batch', { uploaded: 2 });
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ message: 'klar batch', correlationIds: ['c-1', 'c-2'], uploaded: 2 });
  });

  it('caps the correlation ids of a huge batch and says how many it left out', () => {
    batchLogger(Array.from({ length: 150 }, (_, i) => `c-${i}`), 100).info('klar batch');
    const line = JSON.parse(lines[0]!);
    expect(line.correlationIds).toHaveLength(100);
    expect(line.correlationIdsOmitted).toBe(50);
  });
});
