import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_BODY_BYTES,
  seedKlarCost,
  seedKomfortkasseOrder,
  seedOrder,
  startKlarSimulator,
  startKomfortkasseSimulator,
  startVersaCommerceSimulator,
  type KlarSimulator,
  type KomfortkasseSimulator,
  type RecordedRequest,
  type VersaCommerceSimulator,
} from '../../local/simulators/index.ts';

/** Sends a request and returns status, headers and the parsed JSON body (undefined if empty). */
async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method: init.method ?? 'GET', headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** Origin (scheme://host:port) of a simulator's base URL, for the control endpoints. */
const originOf = (url: string) => new URL(url).origin;

const without = (object: Record<string, unknown>, key: string) => {
  const copy = { ...object };
  delete copy[key];
  return copy;
};

// ===========================================================================
describe('Komfortkasse simulator', () => {
  let sim: KomfortkasseSimulator;
  const auth = { 'X-Komfortkasse-API-Key': 'local-komfortkasse-key' };
  const submit = (orderNumber: string, body: unknown, headers: Record<string, string> = auth, query = '') =>
    call(`${sim.url}/order/${orderNumber}${query}`, { method: 'POST', headers, body });

  beforeAll(async () => {
    sim = await startKomfortkasseSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('exposes a base URL that includes /api/v2 on a free loopback port', () => {
    // assess
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}/api/v2`);
    expect(sim.port).toBeGreaterThan(0);
  });

  it('accepts the seed example and echoes it with number, referenceNumber and UNPAID', async () => {
    // prepare
    const order = seedKomfortkasseOrder();

    // act
    const response = await submit('123456', order);

    // assess
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      ...order,
      number: '123456',
      referenceNumber: expect.stringMatching(/^K\d+$/),
      paymentStatus: 'UNPAID',
    });
    const stored = sim.orders.get('123456');
    expect(stored).toMatchObject({ submitCount: 1, removed: false, remindersStopped: false, paymentStatus: 'UNPAID', body: order });
    expect(stored?.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('updates an existing order on resubmission, keeping its reference number', async () => {
    // prepare
    const first = await submit('123456', seedKomfortkasseOrder());

    // act
    const second = await submit('123456', seedKomfortkasseOrder({ amount: 30, customerEmail: 'new@example.org' }));

    // assess
    expect(second.status).toBe(200);
    expect(second.body.referenceNumber).toBe(first.body.referenceNumber);
    expect(second.body.amount).toBe(30);
    expect(sim.orders.get('123456')).toMatchObject({ submitCount: 2, body: { amount: 30 } });
  });

  it('accepts a minimal order (only required fields, company instead of lastName)', async () => {
    // prepare
    const order = { date: '29-02-2024', type: 'COD', amount: 0, currency: 'EUR', billing: { company: 'ACME', countryCode: 'AT' } };

    // act
    const response = await submit('A-1', order);

    // assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ ...order, number: 'A-1', paymentStatus: 'UNPAID' });
  });

  it('adds the requested (empty) lists for include* query flags', async () => {
    // act
    const response = await submit('1', seedKomfortkasseOrder(), auth, '?includePostings=true&includeRefunds=true');

    // assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ postings: [], refunds: [] });
    expect(response.body).not.toHaveProperty('paymentReminders');
  });

  it('rejects a missing API key with 401 "API Key missing"', async () => {
    // act
    const response = await submit('1', seedKomfortkasseOrder(), {});

    // assess
    expect(response).toMatchObject({ status: 401, body: { error: 'API Key missing' } });
    expect(sim.orders.size).toBe(0);
  });

  it('rejects a wrong API key with 401 "Invalid API Key"', async () => {
    // act
    const response = await submit('1', seedKomfortkasseOrder(), { 'X-Komfortkasse-API-Key': 'nope' });

    // assess
    expect(response).toMatchObject({ status: 401, body: { error: 'Invalid API Key' } });
  });

  it('accepts a custom API key', async () => {
    // prepare
    const custom = await startKomfortkasseSimulator({ apiKey: 'secret' });

    try {
      // act
      const response = await call(`${custom.url}/order/1`, {
        method: 'POST',
        headers: { 'X-Komfortkasse-API-Key': 'secret' },
        body: seedKomfortkasseOrder(),
      });

      // assess
      expect(response.status).toBe(200);
    } finally {
      await custom.close();
    }
  });

  it('rejects a non-JSON content type with 400', async () => {
    // act
    const response = await call(`${sim.url}/order/1`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      rawBody: JSON.stringify(seedKomfortkasseOrder()),
    });

    // assess
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^Invalid request: .*Content-Type/);
  });

  it.each([
    ['malformed JSON', '{"date":'],
    ['an array', '[]'],
    ['null', 'null'],
    ['no body', undefined],
  ])('rejects %s as body with 400', async (_name, rawBody) => {
    // act
    const response = await call(`${sim.url}/order/1`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      rawBody,
    });

    // assess
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^Invalid request/);
  });

  const base = seedKomfortkasseOrder();
  const billing = base.billing as Record<string, unknown>;
  const invalidOrders: Array<[string, Record<string, unknown>, RegExp]> = [
    ['date missing', without(base, 'date'), /date is required/],
    ['date in ISO format', { ...base, date: '2018-04-25' }, /date must be dd-MM-yyyy/],
    ['date not in the calendar', { ...base, date: '31-02-2018' }, /date must be dd-MM-yyyy/],
    ['dueDate malformed', { ...base, dueDate: '1-5-2018' }, /dueDate must be dd-MM-yyyy/],
    ['type missing', without(base, 'type'), /type is required/],
    ['type unknown', { ...base, type: 'PAYPAL' }, /type must be one of INVOICE, PREPAYMENT, COD, OTHER/],
    ['amount missing', without(base, 'amount'), /amount is required/],
    ['amount as string', { ...base, amount: '22.38' }, /amount must be a number/],
    ['amount negative', { ...base, amount: -1 }, /amount must not be negative/],
    ['amount with 3 decimals', { ...base, amount: 22.385 }, /amount must have at most 2 decimals/],
    ['currency missing', without(base, 'currency'), /currency is required/],
    ['currency lowercase', { ...base, currency: 'eur' }, /currency must be an ISO 4217/],
    ['currency as symbol', { ...base, currency: '€' }, /currency must be an ISO 4217/],
    ['billing missing', without(base, 'billing'), /billing is required/],
    ['billing without lastName or company', { ...base, billing: without(without(billing, 'lastName'), 'company') }, /billing needs lastName or company/],
    ['billing with blank lastName only', { ...base, billing: { ...billing, lastName: ' ' } }, /billing needs lastName or company/],
    ['billing countryCode missing', { ...base, billing: without(billing, 'countryCode') }, /billing\.countryCode is required/],
    ['billing countryCode with 3 letters', { ...base, billing: { ...billing, countryCode: 'DEU' } }, /billing\.countryCode must be a 2-letter/],
    ['billing gender unknown', { ...base, billing: { ...billing, gender: 'mr' } }, /billing\.gender must be one of/],
    ['billing with unknown field', { ...base, billing: { ...billing, streetnumber: '1a' } }, /billing has unknown field streetnumber/],
    ['null optional field', { ...base, customerEmail: null }, /customerEmail must not be null/],
    ['null nested field', { ...base, billing: { ...billing, phone: null } }, /billing\.phone must not be null/],
    ['null shipping', { ...base, shipping: null }, /shipping must not be null/],
    ['customerEmail without @', { ...base, customerEmail: 'max.example.org' }, /customerEmail must be an email/],
    ['customerNumber as number', { ...base, customerNumber: 7890 }, /customerNumber must be a string/],
    ['exchangeRate 0', { ...base, exchangeRate: 0 }, /exchangeRate must be greater than 0/],
    ['language not ISO', { ...base, language: 'german' }, /language must be an ISO language/],
    ['items entry without number', { ...base, items: [{ name: 'T-Shirt' }] }, /items\.0\.number is required/],
    ['items entry with empty number', { ...base, items: [{ number: '' }] }, /items\.0\.number must not be empty/],
    ['items entry with unknown field', { ...base, items: [{ number: '1', quantity: 1 }] }, /items\.0 has unknown field quantity/],
    ['itemNumbers with numbers', { ...base, itemNumbers: [1826353] }, /itemNumbers\.0 must be a string/],
    ['invoiceNumbers not an array', { ...base, invoiceNumbers: '100072533' }, /invoiceNumbers must be an array/],
    ['initialDunningLevel negative', { ...base, initialDunningLevel: -1 }, /initialDunningLevel must not be negative/],
    ['initialDunningLevel fractional', { ...base, initialDunningLevel: 1.5 }, /initialDunningLevel must be an integer/],
    ['stopReminder as string', { ...base, stopReminder: 'yes' }, /stopReminder must be a boolean/],
    ['stopReminder as the string "true"', { ...base, stopReminder: 'true' }, /stopReminder must be a boolean/],
    ['stopReminder null', { ...base, stopReminder: null }, /stopReminder must not be null/],
    ['stopReminder as 1', { ...base, stopReminder: 1 }, /stopReminder must be a boolean/],
    ['marketplaceNumber as number', { ...base, marketplaceNumber: 1234 }, /marketplaceNumber must be a string/],
    ['unknown top-level field', { ...base, orderNumber: '123456' }, /body has unknown field orderNumber/],
    ['read-only number', { ...base, number: '123456' }, /number is read-only/],
    ['read-only paymentStatus', { ...base, paymentStatus: 'PAID' }, /paymentStatus is read-only/],
    ['read-only referenceNumber', { ...base, referenceNumber: 'K1' }, /referenceNumber is read-only/],
  ];

  it.each(invalidOrders)('rejects %s with 400 {"error":"Invalid request: …"}', async (_name, order, message) => {
    // act
    const response = await submit('123456', order);

    // assess
    expect(response.status).toBe(400);
    expect(Object.keys(response.body)).toEqual(['error']);
    expect(response.body.error).toMatch(/^Invalid request: /);
    expect(response.body.error).toMatch(message);
    expect(sim.orders.has('123456')).toBe(false);
  });

  it('accepts a marketplaceNumber string and echoes it', async () => {
    // prepare
    const order = seedKomfortkasseOrder({ marketplaceNumber: '1234-123435-124243' });

    // act
    const response = await submit('M-1', order);

    // assess
    expect(response.status).toBe(200);
    expect(response.body.marketplaceNumber).toBe('1234-123435-124243');
    expect(sim.orders.get('M-1')?.body.marketplaceNumber).toBe('1234-123435-124243');
  });

  it.each<[string, Array<boolean | undefined>, boolean[]]>([
    ['never sent', [undefined, undefined], [false, false]],
    ['stopped on creation', [true], [true]],
    ['stopped by an update, kept by an update without the field', [undefined, true, undefined], [false, true, true]],
    ['stopped, then resumed', [true, false], [true, false]],
    ['explicitly false, then omitted', [false, undefined], [false, false]],
  ])('keeps the effective reminder flag per order: %s', async (_name, flags, expected) => {
    // prepare
    const observed: boolean[] = [];

    // act
    for (const stopReminder of flags) {
      const response = await submit('R-1', seedKomfortkasseOrder(stopReminder === undefined ? {} : { stopReminder }));
      expect(response.status).toBe(200);
      observed.push(sim.orders.get('R-1')!.remindersStopped);
    }

    // assess
    expect(observed).toEqual(expected);
  });

  it('keeps the reminder flag across a remove and a resubmission without it', async () => {
    // prepare
    await submit('R-2', seedKomfortkasseOrder({ stopReminder: true }));
    await call(`${sim.url}/order/remove/R-2`, { method: 'POST', headers: auth });

    // act
    await submit('R-2', seedKomfortkasseOrder());

    // assess
    expect(sim.orders.get('R-2')).toMatchObject({ removed: false, remindersStopped: true, submitCount: 2, removeCount: 1 });
  });

  it('does not change the reminder flag on a rejected submit', async () => {
    // prepare
    await submit('R-3', seedKomfortkasseOrder({ stopReminder: true }));

    // act
    const response = await submit('R-3', seedKomfortkasseOrder({ stopReminder: 'false' }));

    // assess
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/stopReminder must be a boolean/);
    expect(sim.orders.get('R-3')).toMatchObject({ remindersStopped: true, submitCount: 1 });
  });

  it('rejects an include flag that is not true/false', async () => {
    // act
    const response = await submit('1', seedKomfortkasseOrder(), auth, '?includePostings=yes');

    // assess
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/includePostings/);
  });

  it('honours initialDunningLevel on creation and accepts 0 or omission on update', async () => {
    // prepare
    const created = await submit('7', seedKomfortkasseOrder({ initialDunningLevel: 2 }));

    // act
    const withZero = await submit('7', seedKomfortkasseOrder({ initialDunningLevel: 0 }));
    const omitted = await submit('7', seedKomfortkasseOrder());

    // assess
    expect([created.status, withZero.status, omitted.status]).toEqual([200, 200, 200]);
    expect(sim.orders.get('7')).toMatchObject({ initialDunningLevel: 2, submitCount: 3 });
  });

  it('rejects initialDunningLevel > 0 on an update', async () => {
    // prepare
    await submit('7', seedKomfortkasseOrder());

    // act
    const response = await submit('7', seedKomfortkasseOrder({ initialDunningLevel: 1 }));

    // assess
    expect(response).toMatchObject({
      status: 400,
      body: { error: 'Invalid request: initialDunningLevel only allowed when creating an order' },
    });
    expect(sim.orders.get('7')?.submitCount).toBe(1);
  });

  it('removes a submitted order: 200 with DISAPPEARED', async () => {
    // prepare
    await submit('123456', seedKomfortkasseOrder());

    // act
    const response = await call(`${sim.url}/order/remove/123456`, { method: 'POST', headers: auth });

    // assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ number: '123456', paymentStatus: 'DISAPPEARED', amount: 22.38 });
    expect(sim.orders.get('123456')).toMatchObject({ removed: true, paymentStatus: 'DISAPPEARED' });
  });

  it('answers remove of an unknown order with 404 "Order not found"', async () => {
    // act
    const response = await call(`${sim.url}/order/remove/999`, { method: 'POST', headers: auth });

    // assess
    expect(response).toMatchObject({ status: 404, body: { error: 'Order not found' } });
  });

  it('requires the API key for remove', async () => {
    // act
    const response = await call(`${sim.url}/order/remove/999`, { method: 'POST' });

    // assess
    expect(response).toMatchObject({ status: 401, body: { error: 'API Key missing' } });
  });

  it('brings a removed order back to UNPAID when it is resubmitted', async () => {
    // prepare
    await submit('5', seedKomfortkasseOrder());
    await call(`${sim.url}/order/remove/5`, { method: 'POST', headers: auth });

    // act
    const response = await submit('5', seedKomfortkasseOrder());

    // assess
    expect(response.body.paymentStatus).toBe('UNPAID');
    expect(sim.orders.get('5')).toMatchObject({ removed: false, submitCount: 2 });
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    // act
    const unknown = await call(`${sim.url}/orders/1`, { method: 'POST', headers: auth });
    const wrongMethod = await call(`${sim.url}/order/remove/1`, { headers: auth });

    // assess
    expect(unknown).toMatchObject({ status: 404, body: { error: 'Not found' } });
    expect(wrongMethod).toMatchObject({ status: 405, body: { error: 'Method not allowed' } });
  });

  it('reads one order with GET /order/{n}: 200 with its read-only fields, 404 when unknown, 401 without a key', async () => {
    // prepare
    await submit('77', seedKomfortkasseOrder());

    // act
    const found = await call(`${sim.url}/order/77`, { headers: auth });
    const missing = await call(`${sim.url}/order/does-not-exist`, { headers: auth });
    const unauthenticated = await call(`${sim.url}/order/77`);

    // assess
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ number: '77', paymentStatus: 'UNPAID', referenceNumber: expect.stringMatching(/^K\d+$/) });
    expect(missing).toMatchObject({ status: 404, body: { error: 'Order not found' } });
    expect(unauthenticated.status).toBe(401);
    expect(sim.orders.get('77')?.submitCount).toBe(1);
  });

  it('lists orders with GET /orders by payment status and maxAge (default 120 days), unpaged', async () => {
    // prepare
    await submit('new-open', seedKomfortkasseOrder());
    await submit('gone', seedKomfortkasseOrder());
    await call(`${sim.url}/order/remove/gone`, { method: 'POST', headers: auth });
    sim.seedOrder({ number: 'old-open', body: seedKomfortkasseOrder(), createdAt: new Date(Date.now() - 30 * 86_400_000) });
    sim.seedOrder({ number: 'ancient', body: seedKomfortkasseOrder(), createdAt: new Date(Date.now() - 200 * 86_400_000) });
    sim.seedOrder({ number: 'partial', body: seedKomfortkasseOrder(), paymentStatus: 'PAID_PARTIAL' });

    // act
    const open = await call(`${sim.url}/orders?paymentStatus=UNPAID,PAID_PARTIAL`, { headers: auth });
    const recent = await call(`${sim.url}/orders?paymentStatus=UNPAID&maxAge=7`, { headers: auth });
    const all = await call(`${sim.url}/orders?maxAge=365`, { headers: auth });
    const bad = await call(`${sim.url}/orders?maxAge=soon`, { headers: auth });

    // assess
    expect(open.body.map((o: { number: string }) => o.number).sort()).toEqual(['new-open', 'old-open', 'partial']);
    expect(recent.body.map((o: { number: string }) => o.number)).toEqual(['new-open']);
    expect(all.body).toHaveLength(5);
    expect(bad.status).toBe(400);
  });

  it('seeds orders from an earlier integration that refuse a later initialDunningLevel', async () => {
    // prepare
    const seeded = sim.seedOrder({ number: 'legacy-1', body: seedKomfortkasseOrder() });
    const countAtSeeding = seeded.submitCount;

    // act
    const withLevel = await submit('legacy-1', seedKomfortkasseOrder({ initialDunningLevel: 1 }));
    const withoutLevel = await submit('legacy-1', seedKomfortkasseOrder());

    // assess
    expect(countAtSeeding).toBe(0);
    expect(withLevel.status).toBe(400);
    expect(withoutLevel.status).toBe(200);
    expect(withoutLevel.body.referenceNumber).toBe(seeded.referenceNumber);
    expect(sim.orders.get('legacy-1')?.submitCount).toBe(1);
  });

  it('keeps the payment status of an order it manages on an update; a removed one comes back UNPAID', async () => {
    // prepare
    sim.seedOrder({ number: 'legacy-paid', body: seedKomfortkasseOrder(), paymentStatus: 'PAID' });
    await submit('gone', seedKomfortkasseOrder());
    await call(`${sim.url}/order/remove/gone`, { method: 'POST', headers: auth });

    // act
    const updated = await submit('legacy-paid', seedKomfortkasseOrder({ amount: 30 }));
    const back = await submit('gone', seedKomfortkasseOrder());

    // assess
    expect(updated.body).toMatchObject({ paymentStatus: 'PAID', amount: 30 });
    expect(back.body).toMatchObject({ paymentStatus: 'UNPAID' });
    expect(sim.orders.get('gone')).toMatchObject({ removed: false, paymentStatus: 'UNPAID' });
  });

  it('dumps the reminder flag via GET /__sim/state', async () => {
    // prepare
    await submit('1', seedKomfortkasseOrder({ stopReminder: true }));
    await submit('2', seedKomfortkasseOrder());

    // act
    const response = await call(`${originOf(sim.url)}/__sim/state`);

    // assess
    expect(response.body.orders['1'].remindersStopped).toBe(true);
    expect(response.body.orders['2'].remindersStopped).toBe(false);
  });

  it('dumps stored orders via GET /__sim/state', async () => {
    // prepare
    await submit('123456', seedKomfortkasseOrder());

    // act
    const response = await call(`${originOf(sim.url)}/__sim/state`);

    // assess
    expect(response.status).toBe(200);
    expect(response.body.orders['123456']).toMatchObject({ number: '123456', submitCount: 1, remindersStopped: false });
  });

  it('answers 429 with Retry-After: 1 beyond its rate limit, counts them, and accepts again a second later', async () => {
    // prepare
    sim.rateLimit.requestsPerSecond = 3;

    // act
    const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => submit(`RL-${i}`, seedKomfortkasseOrder())));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const later = await submit('RL-late', seedKomfortkasseOrder());

    // assess
    const refused = burst.filter((r) => r.status === 429);
    expect(burst.filter((r) => r.status === 200)).toHaveLength(3);
    expect(refused).toHaveLength(2);
    for (const response of refused) {
      expect(response.headers.get('retry-after')).toBe('1');
      expect(response.body).toEqual({ error: 'Too many requests' });
    }
    expect(sim.rateLimit.throttled).toBe(2);
    expect(sim.orders.size).toBe(4); // refused submits store nothing
    expect(later.status).toBe(200);
  });

  it('sets and lifts the rate limit via POST /__sim/rate-limit; reset restores the limit it started with', async () => {
    // prepare
    const setLimit = (requestsPerSecond: number | null) =>
      call(`${originOf(sim.url)}/__sim/rate-limit`, { method: 'POST', body: { requestsPerSecond } });

    // act
    const set = await setLimit(1);
    const [first, second] = [await submit('RC-1', seedKomfortkasseOrder()), await submit('RC-2', seedKomfortkasseOrder())];
    const lifted = await setLimit(null);
    const third = await submit('RC-3', seedKomfortkasseOrder());
    const bad = await setLimit(-1);
    await setLimit(2);
    sim.reset();

    // assess
    expect([set.status, lifted.status, bad.status]).toEqual([204, 204, 400]);
    expect([first.status, second.status, third.status]).toEqual([200, 429, 200]);
    expect(sim.rateLimit).toEqual({ requestsPerSecond: undefined, throttled: 0 });
  });
});

// ===========================================================================
describe('Klar simulator', () => {
  let sim: KlarSimulator;
  const auth = { authorization: 'Bearer local-klar-token' };
  const upload = (body: unknown, headers: Record<string, string> = auth, version = '06.2024') =>
    call(`${sim.url}/${version}/transaction-costs/json`, { method: 'POST', headers, body });

  beforeAll(async () => {
    sim = await startKlarSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('exposes the host-only base URL', () => {
    // assess
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`);
  });

  it('accepts {"items":[…]} with 201 VALID and stores the costs (0 is a valid cost)', async () => {
    // prepare
    const items = [
      seedKlarCost(),
      seedKlarCost({ orderId: '101', transactionCosts: 0, currency: 'EUR', paymentMethod: 'cod' }),
      seedKlarCost({ orderId: '102', cancelledAt: '2024-06-01T10:00:00.000Z' }),
    ];

    // act
    const response = await upload({ items });

    // assess
    expect(response).toMatchObject({ status: 201, body: { status: 'VALID' } });
    expect(sim.costs.get('101')).toMatchObject({ transactionCosts: 0, currency: 'EUR', paymentMethod: 'cod', uploadCount: 1 });
    expect(sim.costs.get('102')?.cancelledAt).toBe('2024-06-01T10:00:00.000Z');
    expect(sim.uploads).toBe(1);
  });

  it('accepts a bare array and counts re-uploads per order', async () => {
    // prepare
    await upload([seedKlarCost()]);

    // act
    const response = await upload([seedKlarCost({ transactionCosts: 3.1 })]);

    // assess
    expect(response.status).toBe(201);
    expect(sim.costs.get('100')).toMatchObject({ transactionCosts: 3.1, uploadCount: 2 });
    expect(sim.uploads).toBe(2);
  });

  it('accepts exactly 1000 costs', async () => {
    // prepare
    const items = Array.from({ length: 1000 }, (_, index) => seedKlarCost({ orderId: String(index) }));

    // act
    const response = await upload({ items });

    // assess
    expect(response.status).toBe(201);
    expect(sim.costs.size).toBe(1000);
  });

  it.each([
    ['missing', {}, 'Missing bearer token'],
    ['wrong', { authorization: 'Bearer nope' }, 'Invalid bearer token'],
    ['not bearer', { authorization: 'Basic bG9jYWw6eA==' }, 'Authorization must be a bearer token'],
  ])('rejects a %s token with 401 UNAUTHORIZED', async (_name, headers, message) => {
    // act
    const response = await upload({ items: [seedKlarCost()] }, headers);

    // assess
    expect(response).toMatchObject({ status: 401, body: { status: 'UNAUTHORIZED', message } });
    expect(sim.uploads).toBe(0);
  });

  it('requires the token on the state endpoint too', async () => {
    // act
    const response = await call(`${sim.url}/transaction-costs/state`);

    // assess
    expect(response.status).toBe(401);
  });

  it('answers an unknown API version with 404', async () => {
    // act
    const response = await upload({ items: [seedKlarCost()] }, auth, '01.2020');

    // assess
    expect(response.status).toBe(404);
    expect(sim.uploads).toBe(0);
  });

  it('rejects orderId as a number exactly in the seed error shape', async () => {
    // act
    const response = await upload({ items: [{ orderId: 1111, transactionCosts: 1 }] });

    // assess
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      status: 'INVALID',
      errors: [{ id: expect.any(Number), key: '0.orderId', message: 'orderId must be a string', value: 1111 }],
    });
  });

  it('rejects the whole request when one entry is invalid, reporting its index', async () => {
    // prepare
    const items = [seedKlarCost({ orderId: '1' }), seedKlarCost({ orderId: '2', transactionCosts: -1 })];

    // act
    const response = await upload({ items });

    // assess
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([
      { id: expect.any(Number), key: '1.transactionCosts', message: 'transactionCosts must not be negative', value: -1 },
    ]);
    expect(sim.costs.size).toBe(0);
    expect(sim.uploads).toBe(0);
  });

  it('reports one error per bad field with running ids', async () => {
    // prepare
    const items = [{ orderId: '', transactionCosts: '1.5', currency: 'eur', extra: true }];

    // act
    const response = await upload(items);

    // assess
    expect(response.status).toBe(400);
    const errors = response.body.errors as Array<{ id: number; key: string }>;
    expect(errors.map((error) => error.key).sort()).toEqual(['0.currency', '0.extra', '0.orderId', '0.transactionCosts']);
    const ids = errors.map((error) => error.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  const invalidCosts: Array<[string, unknown, string, string]> = [
    ['orderId missing', { transactionCosts: 1 }, '0.orderId', 'orderId is required'],
    ['orderId empty', { orderId: '', transactionCosts: 1 }, '0.orderId', 'orderId must not be empty'],
    ['orderId null', { orderId: null, transactionCosts: 1 }, '0.orderId', 'orderId must not be null (omit it instead)'],
    ['transactionCosts missing', { orderId: '1' }, '0.transactionCosts', 'transactionCosts is required'],
    ['transactionCosts as string', { orderId: '1', transactionCosts: '2.5' }, '0.transactionCosts', 'transactionCosts must be a number'],
    ['transactionCosts null', { orderId: '1', transactionCosts: null }, '0.transactionCosts', 'transactionCosts must not be null (omit it instead)'],
    ['cancelledAt 0', { orderId: '1', transactionCosts: 1, cancelledAt: 0 }, '0.cancelledAt', 'cancelledAt must be an ISO 8601 date-time string'],
    ['cancelledAt null', { orderId: '1', transactionCosts: 1, cancelledAt: null }, '0.cancelledAt', 'cancelledAt must not be null (omit it instead)'],
    ['cancelledAt date only', { orderId: '1', transactionCosts: 1, cancelledAt: '2024-06-01' }, '0.cancelledAt', 'cancelledAt must be an ISO 8601 date-time string'],
    ['cancelledAt impossible', { orderId: '1', transactionCosts: 1, cancelledAt: '2024-02-30T10:00:00Z' }, '0.cancelledAt', 'cancelledAt must be an ISO 8601 date-time string'],
    ['currency symbol', { orderId: '1', transactionCosts: 1, currency: '€' }, '0.currency', 'currency must be an ISO 4217 code like EUR'],
    ['currency null', { orderId: '1', transactionCosts: 1, currency: null }, '0.currency', 'currency must not be null (omit it instead)'],
    ['paymentMethod number', { orderId: '1', transactionCosts: 1, paymentMethod: 3 }, '0.paymentMethod', 'paymentMethod must be a string'],
    ['unknown field', { orderId: '1', transactionCosts: 1, shop: 'x' }, '0.shop', 'shop is not allowed'],
    ['entry not an object', 'order-1', '0', 'must be a TransactionCosts object'],
  ];

  it.each(invalidCosts)('rejects %s with 400 INVALID', async (_name, item, key, message) => {
    // act
    const response = await upload({ items: [item] });

    // assess
    expect(response.status).toBe(400);
    expect(response.body.status).toBe('INVALID');
    expect(response.body.errors).toHaveLength(1);
    expect(response.body.errors[0]).toMatchObject({ id: expect.any(Number), key, message });
  });

  it.each([
    ['more than 1000 costs', { items: Array.from({ length: 1001 }, (_, i) => seedKlarCost({ orderId: String(i) })) }, 'items'],
    ['an empty list', { items: [] }, 'items'],
    ['an object without items', { costs: [] }, 'items'],
    ['a single object', seedKlarCost(), 'items'],
    ['a wrapper with extra keys', { items: [seedKlarCost()], shop: 'x' }, 'shop'],
  ])('rejects %s with 400 INVALID', async (_name, body, key) => {
    // act
    const response = await upload(body);

    // assess
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ status: 'INVALID', errors: [{ key }] });
  });

  it('rejects a non-JSON body with 400 INVALID', async () => {
    // act
    const response = await call(`${sim.url}/06.2024/transaction-costs/json`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      rawBody: '{"items":',
    });

    // assess
    expect(response).toMatchObject({ status: 400, body: { status: 'INVALID', errors: [{ key: 'body' }] } });
  });

  it('reports no fields in the state before anything happened', async () => {
    // act
    const response = await call(`${sim.url}/transaction-costs/state`, { headers: auth });

    // assess
    expect(response).toMatchObject({ status: 200, body: {} });
    expect(Object.keys(response.body)).toEqual([]);
  });

  it('reports state in the seed format (string numbers, " T" timestamps) on /state and /status', async () => {
    // prepare
    await upload({ items: [seedKlarCost({ orderId: '1' }), seedKlarCost({ orderId: '2' })] });
    await upload({ items: [seedKlarCost({ orderId: '3' })] });
    await upload({ items: [{ orderId: 4 }] });

    // act
    const state = await call(`${sim.url}/transaction-costs/state`, { headers: auth });
    const status = await call(`${sim.url}/transaction-costs/status`, { headers: auth });

    // assess
    expect(state.status).toBe(200);
    expect(state.body).toEqual({
      total: '3',
      lastBatchCount: '1',
      lastSuccess: expect.stringMatching(/^\d{4}-\d{2}-\d{2} T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      lastFailure: expect.stringMatching(/^\d{4}-\d{2}-\d{2} T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    });
    expect(status.body).toEqual(state.body);
  });

  it('lets tests set the state directly and via POST /__sim/state', async () => {
    // prepare
    sim.setState({ total: 9, lastSuccess: new Date('2023-03-11T12:13:31.193Z') });

    // act
    const control = await call(`${originOf(sim.url)}/__sim/state`, {
      method: 'POST',
      body: { lastBatchCount: '4', lastFailure: '2023-03-11T09:06:50.321Z' },
    });
    const response = await call(`${sim.url}/transaction-costs/state`, { headers: auth });

    // assess
    expect(control.status).toBe(204);
    expect(response.body).toEqual({
      total: '9',
      lastBatchCount: '4',
      lastSuccess: '2023-03-11 T12:13:31.193Z',
      lastFailure: '2023-03-11 T09:06:50.321Z',
    });
  });

  it('continues the total from a state set by a test', async () => {
    // prepare
    sim.setState({ total: 9 });

    // act
    await upload([seedKlarCost()]);

    // assess
    expect(sim.state.total).toBe('10');
  });
});

// ===========================================================================
describe('VersaCommerce simulator', () => {
  let sim: VersaCommerceSimulator;
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const auth = { authorization: basic('local-vc-key', 'local-vc-password') };
  const get = (path: string, headers: Record<string, string> = auth) => call(`${sim.url}${path}`, { headers });

  beforeAll(async () => {
    sim = await startVersaCommerceSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('builds the seed order as valid JSON with the real-world malformed created_at', () => {
    // act
    const order = seedOrder();

    // assess
    expect(JSON.parse(JSON.stringify(order))).toEqual(order);
    expect(order).toMatchObject({
      id: 100,
      code: '196-083-565',
      payment_type: 'cod',
      total: '15.94',
      currency: '€',
      status: 'open',
      created_at: '2013-03-19T12 =>39 =>51+01 =>00',
      billing_address: { firstname: 'Eduard', lastname: 'Siebert', zipcode: '59514', title: 'Herr' },
      shipping_address: { zipcode: '59514', country: 'DE' },
      items: [{ id: 1000, order_id: 100, product_id: 10000, code: 'SKU-10000', title: 'T-Shirt', quantity: 1 }],
      shipments: [],
    });
    expect(seedOrder({ status: 'canceled' }).status).toBe('canceled');
  });

  it.each([
    ['missing', {}],
    ['wrong password', { authorization: basic('local-vc-key', 'wrong') }],
    ['not basic', { authorization: 'Bearer local-vc-key' }],
  ])('rejects %s credentials with 401 and a Basic challenge', async (_name, headers) => {
    // act
    const response = await get('/api/orders.json', headers);

    // assess
    expect(response).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="VersaCommerce"');
  });

  it('lists orders sorted by id, wrapped in {"order":…}, without associations by default', async () => {
    // prepare
    sim.addOrder(seedOrder({ id: 102, code: 'B' }));
    sim.addOrder({ order: seedOrder({ id: 101, code: 'A' }) });

    // act
    const response = await get('/api/orders.json');

    // assess
    expect(response.status).toBe(200);
    expect(response.body.map((entry: any) => entry.order.id)).toEqual([101, 102]);
    expect(response.body[0].order).not.toHaveProperty('items');
    expect(response.body[0].order).not.toHaveProperty('shipments');
    expect(response.body[0].order.created_at).toBe('2013-03-19T12 =>39 =>51+01 =>00');
  });

  it('nests items and shipments when included', async () => {
    // prepare
    sim.addOrder(seedOrder());
    sim.addOrder(without(seedOrder({ id: 101 }), 'shipments'));

    // act
    const both = await get('/api/orders.json?include=items,shipments');
    const itemsOnly = await get('/api/orders.json?include=items');

    // assess
    expect(both.body[0].order.items).toHaveLength(1);
    expect(both.body[1].order.shipments).toEqual([]);
    expect(itemsOnly.body[0].order).toHaveProperty('items');
    expect(itemsOnly.body[0].order).not.toHaveProperty('shipments');
  });

  it.each([
    ['status', '?status=canceled', [2]],
    ['status open_or_in_progress', '?status=open_or_in_progress', [1, 3]],
    ['payment_type', '?payment_type=invoice', [3]],
    ['payment_status', '?payment_status=paid', [2]],
    ['code', '?code=C-1', [1]],
    ['id range', '?id_min=2&id_max=3', [2, 3]],
    ['created_at_min (at or after, malformed stored dates)', '?created_at_min=2013-03-19T12:41:00%2B01:00', [2, 3]],
    ['created_at_max', '?created_at_max=2013-03-19T12:40:00%2B01:00', [1]],
    ['limit and offset', '?limit=1&offset=1', [2]],
    ['total_min', '?total_min=20', [3]],
  ])('filters by %s', async (_name, query, ids) => {
    // prepare
    sim.addOrder(seedOrder({ id: 1, code: 'C-1', status: 'open' }));
    sim.addOrder(seedOrder({ id: 2, code: 'C-2', status: 'canceled', payment_status: 'paid', created_at: '2013-03-19T12 =>41 =>47+01 =>00' }));
    sim.addOrder(seedOrder({ id: 3, code: 'C-3', status: 'in_progress', payment_type: 'invoice', total: '97.45', created_at: '2013-03-20T08:00:00+01:00' }));

    // act
    const list = await get(`/api/orders.json${query}`);

    // assess
    expect(list.status).toBe(200);
    expect(list.body.map((entry: any) => entry.order.id)).toEqual(ids);
  });

  it('applies the default limit of 150', async () => {
    // prepare
    for (let id = 1; id <= 160; id += 1) sim.addOrder(seedOrder({ id, code: `C-${id}` }));

    // act
    const response = await get('/api/orders.json');

    // assess
    expect(response.body).toHaveLength(150);
  });

  it.each([
    ['limit above 250', '?limit=251', /limit must be at most 250/],
    ['non-integer limit', '?limit=abc', /limit must be a non-negative integer/],
    ['fractional limit', '?limit=1.5', /limit must be a non-negative integer/],
    ['negative offset', '?offset=-1', /offset must be a non-negative integer/],
    ['bad created_at_min', '?created_at_min=yesterday', /created_at_min must be a date/],
  ])('rejects %s with 400', async (_name, query, message) => {
    // act
    const response = await get(`/api/orders.json${query}`);

    // assess
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(message);
  });

  it('counts orders with the same filters', async () => {
    // prepare
    sim.addOrder(seedOrder({ id: 1 }));
    sim.addOrder(seedOrder({ id: 2, status: 'canceled' }));

    // act
    const all = await get('/api/orders/count.json');
    const open = await get('/api/orders/count.json?status=open&limit=1');

    // assess
    expect(all).toMatchObject({ status: 200, body: { count: 2 } });
    expect(open.body).toEqual({ count: 1 });
  });

  it('returns a single order with items and shipments, 404 when unknown', async () => {
    // prepare
    sim.addOrder(seedOrder());

    // act
    const found = await get('/api/orders/100.json');
    const missing = await get('/api/orders/999.json');

    // assess
    expect(found.status).toBe(200);
    expect(found.body.order).toEqual(seedOrder());
    expect(missing).toMatchObject({ status: 404, body: { error: 'Not found' } });
  });

  it('answers unknown /api paths with 404 and writes with 405', async () => {
    // act
    const unknown = await get('/api/products.json');
    const write = await call(`${sim.url}/api/orders.json`, { method: 'POST', headers: auth, body: { order: seedOrder() } });

    // assess
    expect(unknown.status).toBe(404);
    expect(write).toMatchObject({ status: 405, body: { error: 'Method not allowed' } });
  });

  it('upserts orders via POST /__sim/orders (single, wrapped, array) and removes them', async () => {
    // prepare
    const control = `${originOf(sim.url)}/__sim/orders`;

    // act
    const single = await call(control, { method: 'POST', body: seedOrder({ id: 1 }) });
    const wrapped = await call(control, { method: 'POST', body: { order: seedOrder({ id: 2 }) } });
    const array = await call(control, { method: 'POST', body: [seedOrder({ id: 3 }), { order: seedOrder({ id: 1, status: 'closed' }) }] });
    const invalid = await call(control, { method: 'POST', body: { code: 'no-id' } });
    const removed = await call(`${control}/2`, { method: 'DELETE' });

    // assess
    expect([single.status, wrapped.status, array.status, removed.status]).toEqual([204, 204, 204, 204]);
    expect(invalid.status).toBe(400);
    expect([...sim.orders.keys()].sort()).toEqual([1, 3]);
    expect(sim.orders.get(1)?.status).toBe('closed');
    expect(sim.removeOrder(3)).toBe(true);
  });

  it.each([
    ['removeOrder', async (id: number) => sim.removeOrder(id)],
    ['DELETE /__sim/orders/:id', async (id: number) => (await call(`${originOf(sim.url)}/__sim/orders/${id}`, { method: 'DELETE' })).status],
  ])('answers 404 {"error":"Not found"} for an order deleted by %s, and stops listing it', async (_name, deleteOrder) => {
    // prepare
    sim.addOrder(seedOrder({ id: 100 }));
    sim.addOrder(seedOrder({ id: 101, code: 'C-101' }));
    const before = await get('/api/orders/100.json');

    // act
    const deleted = await deleteOrder(100);
    const after = await get('/api/orders/100.json');
    const list = await get('/api/orders.json');
    const count = await get('/api/orders/count.json');

    // assess
    expect(before.status).toBe(200);
    expect(deleted === true || deleted === 204).toBe(true);
    expect(after.status).toBe(404);
    expect(after.body).toStrictEqual({ error: 'Not found' });
    expect(after.headers.get('content-type')).toMatch(/^application\/json/);
    expect(list.body.map((entry: any) => entry.order.id)).toEqual([101]);
    expect(count.body).toEqual({ count: 1 });
  });

  it('answers 404 when deleting an order that does not exist', async () => {
    // act
    const response = await call(`${originOf(sim.url)}/__sim/orders/999`, { method: 'DELETE' });

    // assess
    expect(response).toMatchObject({ status: 404, body: { error: 'Not found' } });
    expect(sim.removeOrder(999)).toBe(false);
  });
});

// ===========================================================================
describe('simulator plumbing (shown on the VersaCommerce simulator)', () => {
  let sim: VersaCommerceSimulator;
  let control: string;
  const auth = { authorization: `Basic ${Buffer.from('local-vc-key:local-vc-password').toString('base64')}` };
  const count = () => call(`${sim.url}/api/orders/count.json`, { headers: auth });

  beforeAll(async () => {
    sim = await startVersaCommerceSimulator();
    control = `${originOf(sim.url)}/__sim`;
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('records every upstream request with query, headers, body and answered status, but not control calls', async () => {
    // act
    await call(`${sim.url}/api/orders.json?status=open`, { headers: auth });
    await call(`${sim.url}/api/orders.json`, { method: 'PUT', headers: auth, body: { a: 1 } });
    await call(`${control}/state`);

    // assess
    expect(sim.requests).toHaveLength(2);
    expect(sim.requests[0]).toMatchObject({ method: 'GET', path: '/api/orders.json', query: { status: 'open' }, status: 200 });
    expect(sim.requests[0]?.headers.authorization).toBe(auth.authorization);
    expect(sim.requests[1]).toMatchObject({ method: 'PUT', body: { a: 1 }, status: 405 });
    expect(new Date(sim.requests[0]!.at).toISOString()).toBe(sim.requests[0]!.at);
  });

  it('serves the request log via GET /__sim/requests', async () => {
    // prepare
    await count();

    // act
    const response = await call(`${control}/requests`);

    // assess
    expect(response.status).toBe(200);
    expect((response.body as RecordedRequest[]).map((request) => request.path)).toEqual(['/api/orders/count.json']);
  });

  it('records a non-JSON body as the raw string', async () => {
    // act
    await call(`${sim.url}/api/orders.json`, { method: 'POST', headers: auth, rawBody: 'a=1' });

    // assess
    expect(sim.requests[0]?.body).toBe('a=1');
  });

  it('answers an injected fault once, then handles normally', async () => {
    // prepare
    sim.injectFault({ pathPrefix: '/api/orders', status: 503, body: { error: 'maintenance' }, headers: { 'retry-after': '1' } });

    // act
    const faulted = await count();
    const normal = await count();

    // assess
    expect(faulted).toMatchObject({ status: 503, body: { error: 'maintenance' } });
    expect(faulted.headers.get('retry-after')).toBe('1');
    expect(normal.status).toBe(200);
    expect(sim.requests.map((request) => request.status)).toEqual([503, 200]);
  });

  it('matches faults by method and path prefix and honours times', async () => {
    // prepare
    sim.injectFault({ method: 'POST', status: 500 });
    sim.injectFault({ pathPrefix: '/api/other', status: 500 });
    sim.injectFault({ method: 'get', pathPrefix: '/api/orders/count', status: 429, times: 2 });

    // act
    const statuses = [(await count()).status, (await count()).status, (await count()).status];

    // assess
    expect(statuses).toEqual([429, 429, 200]);
  });

  it('keeps an Infinity fault until cleared', async () => {
    // prepare
    sim.injectFault({ status: 502, times: Infinity });
    const before = [(await count()).status, (await count()).status, (await count()).status];

    // act
    sim.clearFaults();

    // assess
    expect(before).toEqual([502, 502, 502]);
    expect((await count()).status).toBe(200);
  });

  it('delays and then handles normally when a fault has only delayMs', async () => {
    // prepare
    sim.injectFault({ delayMs: 150 });
    const started = Date.now();

    // act
    const response = await count();

    // assess
    expect(response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('drops the connection for a destroy fault', async () => {
    // prepare
    sim.injectFault({ destroy: true });

    // act
    const outcome = count();

    // assess
    await expect(outcome).rejects.toThrow();
    expect(sim.requests[0]?.status).toBe(0);
  });

  it('injects (times: null = Infinity) and clears faults via the control endpoints', async () => {
    // prepare
    const injected = await call(`${control}/faults`, { method: 'POST', body: { status: 500, times: null } });
    const faulted = [(await count()).status, (await count()).status];

    // act
    const cleared = await call(`${control}/faults`, { method: 'DELETE' });

    // assess
    expect([injected.status, cleared.status]).toEqual([204, 204]);
    expect(faulted).toEqual([500, 500]);
    expect((await count()).status).toBe(200);
  });

  it('rejects a malformed fault with 400', async () => {
    // act
    const response = await call(`${control}/faults`, { method: 'POST', body: { status: 'five hundred' } });

    // assess
    expect(response.status).toBe(400);
  });

  it('resets requests, faults and state via POST /__sim/reset', async () => {
    // prepare
    sim.addOrder(seedOrder());
    await count();
    sim.injectFault({ status: 500, pathPrefix: '/api/orders.json' });

    // act
    const response = await call(`${control}/reset`, { method: 'POST' });

    // assess
    expect(response.status).toBe(204);
    expect(sim.requests).toHaveLength(0);
    expect(sim.orders.size).toBe(0);
    expect((await call(`${sim.url}/api/orders.json`, { headers: auth })).status).toBe(200);
  });

  it('answers bodies over 6 MB with 413', async () => {
    // prepare
    const body = 'x'.repeat(MAX_BODY_BYTES + 1);

    // act
    const response = await call(`${sim.url}/api/orders.json`, { method: 'POST', headers: auth, rawBody: body });

    // assess
    expect(response).toMatchObject({ status: 413, body: { error: 'Payload too large' } });
    expect(sim.requests[0]).toMatchObject({ status: 413, body: undefined });
  });

  it('close() resolves even with keep-alive connections open', async () => {
    // prepare
    const other = await startKlarSimulator();
    await call(`${other.url}/transaction-costs/state`, { headers: { authorization: 'Bearer local-klar-token' } });

    // act
    const closing = other.close();

    // assess
    await expect(closing).resolves.toBeUndefined();
    await expect(fetch(`${other.url}/transaction-costs/state`)).rejects.toThrow();
  });
});
