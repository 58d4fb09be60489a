import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getKomfortkasseOrder, listOpenKomfortkasseOrders, provesNotApplied, removeOrder, submitOrder } from '../../lib/clients/komfortkasse.ts';
import { resetClients } from '../../lib/clients/registry.ts';
import { countOrders, fetchOrder } from '../../lib/clients/versacommerce.ts';
import { forgetSecrets, reloadConfig } from '../../lib/config/index.ts';
import { OrderVanishedError, UpstreamAuthError, UpstreamError, isPermanent } from '../../lib/domain/errors.ts';
import type { KomfortkasseOrder } from '../../lib/domain/komfortkasse.ts';
import {
  seedKomfortkasseOrder,
  seedOrder,
  startKomfortkasseSimulator,
  startVersaCommerceSimulator,
  type KomfortkasseSimulator,
  type VersaCommerceSimulator,
} from '../../local/simulators/index.ts';

const TIMEOUT_MS = 200;
const CLIENT_ENV = [
  'KOMFORTKASSE_BASE_URL',
  'KOMFORTKASSE_API_KEY',
  'KOMFORTKASSE_TIMEOUT_MS',
  'UPSTREAM_RETRY_LIMIT',
  'UPSTREAM_RETRY_BASE_MS',
  'VERSACOMMERCE_BASE_URL',
  'VERSACOMMERCE_API_KEY',
  'VERSACOMMERCE_API_PASSWORD',
] as const;

let komfortkasse: KomfortkasseSimulator;
let shop: VersaCommerceSimulator;
const savedEnv = Object.fromEntries(CLIENT_ENV.map((name) => [name, process.env[name]]));

/** Points the clients at the simulators, as a cold start with this environment would. */
function configure(overrides: Partial<Record<(typeof CLIENT_ENV)[number], string>> = {}): void {
  Object.assign(process.env, {
    KOMFORTKASSE_BASE_URL: komfortkasse.url,
    KOMFORTKASSE_API_KEY: komfortkasse.apiKey,
    KOMFORTKASSE_TIMEOUT_MS: String(TIMEOUT_MS),
    UPSTREAM_RETRY_LIMIT: '2',
    UPSTREAM_RETRY_BASE_MS: '1',
    VERSACOMMERCE_BASE_URL: new URL(shop.url).origin,
    VERSACOMMERCE_API_KEY: shop.apiKey,
    VERSACOMMERCE_API_PASSWORD: shop.password,
    ...overrides,
  });
  reloadConfig();
  forgetSecrets();
  resetClients();
}

beforeAll(async () => {
  [komfortkasse, shop] = await Promise.all([startKomfortkasseSimulator({ apiKey: 'unit-kk-key' }), startVersaCommerceSimulator({ apiKey: 'unit-vc', password: 'unit-pw' })]);
  configure();
});
afterAll(async () => {
  for (const name of CLIENT_ENV) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  reloadConfig();
  forgetSecrets();
  resetClients();
  await Promise.all([komfortkasse?.close(), shop?.close()]);
});
beforeEach(() => {
  komfortkasse.reset();
  shop.reset();
  configure();
});

/** A valid update body (no initialDunningLevel): the client may retry it freely. */
const update = (overrides: Record<string, unknown> = {}) => seedKomfortkasseOrder(overrides) as KomfortkasseOrder;
/** A creating submission: carries initialDunningLevel, which Komfortkasse refuses on a repeat. */
const creating = (overrides: Record<string, unknown> = {}) => seedKomfortkasseOrder({ initialDunningLevel: 1, ...overrides }) as KomfortkasseOrder;

/** A timed-out request is logged by the simulator only once its delay has run out. */
const delayedRequestsLogged = () => new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 4));

async function failureOf(call: Promise<unknown>): Promise<UpstreamError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

describe('Komfortkasse client', () => {
  it('submits with POST /order/{number}, the API key header and a JSON body, and parses the answer', async () => {
    // prepare
    const payload = creating();

    // act
    const result = await submitOrder('123456', payload);

    // assess
    expect(result.status).toBe(200);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(result.body).toMatchObject({ number: '123456', referenceNumber: expect.stringMatching(/^K\d+$/), paymentStatus: 'UNPAID', amount: 22.38 });
    const [request] = komfortkasse.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/api/v2/order/123456', body: payload });
    expect(request!.headers['x-komfortkasse-api-key']).toBe('unit-kk-key');
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
  });

  it('URL-encodes the order number into one path segment', async () => {
    // act
    await submitOrder('A/7 x', update());

    // assess
    expect(komfortkasse.requests[0]!.path).toBe('/api/v2/order/A%2F7%20x');
    expect(komfortkasse.orders.has('A/7 x')).toBe(true);
  });

  it('retries 503 with backoff and succeeds on the third try, also for a creating submission', async () => {
    // prepare
    komfortkasse.injectFault({ status: 503, times: 2 });

    // act
    const result = await submitOrder('503-then-ok', creating());

    // assess
    expect(result.status).toBe(200);
    expect(komfortkasse.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(komfortkasse.orders.get('503-then-ok')).toMatchObject({ submitCount: 1, initialDunningLevel: 1 });
  });

  it('honours Retry-After on 429', async () => {
    // prepare
    komfortkasse.injectFault({ status: 429, headers: { 'retry-after': '1' }, body: { error: 'Too many requests' } });
    const started = Date.now();

    // act
    await submitOrder('throttled', update());

    // assess
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(komfortkasse.requests.map((r) => r.status)).toEqual([429, 200]);
  });

  it('retries any 5xx for an update, not only the common ones', async () => {
    // prepare
    komfortkasse.injectFault({ status: 507, times: 1 });

    // act
    await submitOrder('insufficient-storage', update());

    // assess
    expect(komfortkasse.requests.map((r) => r.status)).toEqual([507, 200]);
  });

  it('gives up after the retry limit with a transient error that proves nothing was applied on 503', async () => {
    // prepare
    komfortkasse.injectFault({ status: 503, times: Infinity, body: { error: 'Maintenance' } });

    // act
    const error = await failureOf(submitOrder('down', update()));

    // assess
    expect(komfortkasse.requests).toHaveLength(3);
    expect(error).toMatchObject({ upstream: 'Komfortkasse', status: 503, category: 'transient', upstreamMessage: 'Maintenance' });
    expect(provesNotApplied(error)).toBe(true);
    expect((error as UpstreamError & { latencyMs?: number }).latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('turns a 400 into a permanent error carrying the upstream message, without a retry', async () => {
    // prepare: three decimals break the simulator's "Format: 0.00"
    const invalid = update({ amount: 1.005 });

    // act
    const error = await failureOf(submitOrder('bad', invalid));

    // assess
    expect(komfortkasse.requests).toHaveLength(1);
    expect(isPermanent(error)).toBe(true);
    expect(error.status).toBe(400);
    expect(error.upstreamMessage).toMatch(/^Invalid request: amount/);
    expect(error.message).toContain(error.upstreamMessage);
    expect(provesNotApplied(error)).toBe(true);
  });

  it('turns a wrong API key (401) into a transient UpstreamAuthError (our credentials, not the order), without a retry', async () => {
    // prepare
    configure({ KOMFORTKASSE_API_KEY: 'wrong-key' });

    // act
    const error = await failureOf(submitOrder('unauthorized', update()));

    // assess
    expect(komfortkasse.requests).toHaveLength(1);
    expect(error).toBeInstanceOf(UpstreamAuthError);
    expect(error).toMatchObject({ upstream: 'Komfortkasse', status: 401, category: 'transient', upstreamMessage: 'Invalid API Key' });
    expect(isPermanent(error)).toBe(false);
  });

  it('retries a timed-out update, then fails transiently without a status', async () => {
    // prepare
    komfortkasse.injectFault({ delayMs: TIMEOUT_MS * 3, times: Infinity });

    // act
    const error = await failureOf(submitOrder('slow', update()));
    await delayedRequestsLogged();

    // assess
    expect(komfortkasse.requests).toHaveLength(3);
    expect(error.category).toBe('transient');
    expect(error.status).toBeUndefined();
    expect(provesNotApplied(error)).toBe(false);
  });

  it('does not repeat a creating submission whose fate is unknown (timeout, dropped connection, 500)', async () => {
    for (const fault of [{ delayMs: TIMEOUT_MS * 3 }, { destroy: true }, { status: 500 }]) {
      // prepare
      komfortkasse.reset();
      komfortkasse.injectFault({ ...fault, times: Infinity });

      // act
      const error = await failureOf(submitOrder('ambiguous', creating()));
      if (fault.delayMs) await delayedRequestsLogged();

      // assess
      expect(komfortkasse.requests, JSON.stringify(fault)).toHaveLength(1);
      expect(error.category).toBe('transient');
      expect(provesNotApplied(error)).toBe(false);
    }
  });

  it('retries a dropped connection for an update', async () => {
    // prepare
    komfortkasse.injectFault({ destroy: true, times: 2 });

    // act
    const result = await submitOrder('flaky', update());

    // assess
    expect(result.status).toBe(200);
    expect(komfortkasse.requests.map((r) => r.status)).toEqual([0, 0, 200]);
  });

  it('treats a 2xx with an unreadable body as success (the call took effect)', async () => {
    // prepare
    komfortkasse.injectFault({ status: 200, body: 'OK' });

    // act
    const result = await submitOrder('odd-answer', update());

    // assess
    expect(result).toMatchObject({ status: 200, body: { number: 'odd-answer' } });
  });

  it('removes with POST /order/remove/{number} and parses the DISAPPEARED order', async () => {
    // prepare
    await submitOrder('to-remove', update());

    // act
    const result = await removeOrder('to-remove');

    // assess
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ alreadyGone: false, order: { number: 'to-remove', paymentStatus: 'DISAPPEARED' } });
    expect(komfortkasse.requests[1]).toMatchObject({ method: 'POST', path: '/api/v2/order/remove/to-remove' });
    expect(komfortkasse.requests[1]!.headers['x-komfortkasse-api-key']).toBe('unit-kk-key');
  });

  it('takes 404 on remove as already gone', async () => {
    // act
    const result = await removeOrder('never-there');

    // assess
    expect(result).toMatchObject({ status: 404, body: { alreadyGone: true } });
    expect(komfortkasse.requests).toHaveLength(1);
  });

  it('retries a remove on 502 and turns a 400 into a permanent error', async () => {
    // prepare
    await submitOrder('remove-retry', update());
    komfortkasse.injectFault({ status: 502, times: 1, pathPrefix: '/api/v2/order/remove/' });
    komfortkasse.injectFault({ status: 400, body: { error: 'Invalid request' }, times: 1, pathPrefix: '/api/v2/order/remove/other' });

    // act
    const retried = await removeOrder('remove-retry');
    const refused = await failureOf(removeOrder('other'));

    // assess
    expect(retried.body.alreadyGone).toBe(false);
    expect(komfortkasse.requests.filter((r) => r.path === '/api/v2/order/remove/remove-retry').map((r) => r.status)).toEqual([502, 200]);
    expect(refused).toMatchObject({ status: 400, category: 'permanent', upstreamMessage: 'Invalid request' });
  });
});

describe('VersaCommerce client (orders the message did not carry)', () => {
  it('fetches one order with Basic auth, including items and shipments', async () => {
    // prepare
    shop.addOrder(seedOrder({ shipments: [{ id: 1, tracking_code: 'TRACK-1' }] }));

    // act
    const { order, raw } = await fetchOrder(100);

    // assess
    const [request] = shop.requests;
    expect(request).toMatchObject({ method: 'GET', path: '/api/orders/100.json', status: 200 });
    expect(request!.query.include?.split(',')).toEqual(expect.arrayContaining(['items', 'shipments']));
    expect(request!.headers.authorization).toBe(`Basic ${Buffer.from('unit-vc:unit-pw').toString('base64')}`);
    expect(order).toMatchObject({ id: 100, code: '196-083-565', total: 15.94, items: [expect.objectContaining({ code: 'SKU-10000' })], shipments: [expect.objectContaining({ tracking_code: 'TRACK-1' })] });
    expect(raw.total).toBe('15.94');
  });

  it('reports an unknown order as vanished (OrderVanishedError, 404), without a retry', async () => {
    // act
    const error = await failureOf(fetchOrder(404404));

    // assess
    expect(error).toBeInstanceOf(OrderVanishedError);
    expect(error).toMatchObject({ upstream: 'VersaCommerce', status: 404, category: 'permanent', orderId: 404404 });
    expect(shop.requests).toHaveLength(1);
  });

  it('reports wrong credentials as a transient UpstreamAuthError (401), not as an order problem', async () => {
    // prepare
    configure({ VERSACOMMERCE_API_PASSWORD: 'wrong' });
    shop.addOrder(seedOrder());

    // act
    const error = await failureOf(fetchOrder(100));

    // assess
    expect(error).toBeInstanceOf(UpstreamAuthError);
    expect(error).not.toBeInstanceOf(OrderVanishedError);
    expect(error).toMatchObject({ upstream: 'VersaCommerce', status: 401, category: 'transient' });
    expect(shop.requests).toHaveLength(1);
  });

  it('rejects an order that does not match the schema as permanent', async () => {
    // prepare
    shop.addOrder(seedOrder({ total: 'fifteen' }));

    // act
    const error = await failureOf(fetchOrder(100));

    // assess
    expect(error).toMatchObject({ upstream: 'VersaCommerce', category: 'permanent' });
    expect(error.message).toMatch(/does not match the schema/);
  });

  it('retries a 503 from the shop', async () => {
    // prepare
    shop.addOrder(seedOrder());
    shop.injectFault({ status: 503, times: 1 });

    // act
    const { order } = await fetchOrder(100);

    // assess
    expect(order.id).toBe(100);
    expect(shop.requests.map((r) => r.status)).toEqual([503, 200]);
  });
});

describe('read-only calls', () => {
  it('reads one Komfortkasse order, and answers undefined for an order it does not hold', async () => {
    // prepare
    await submitOrder('R-1', update());

    // act
    const found = await getKomfortkasseOrder('R-1');
    const missing = await getKomfortkasseOrder('R-404');

    // assess
    expect(found).toMatchObject({ number: 'R-1', paymentStatus: 'UNPAID', referenceNumber: expect.any(String) });
    expect(missing).toBeUndefined();
    expect(komfortkasse.requests.slice(1).map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/api/v2/order/R-1', 200],
      ['GET', '/api/v2/order/R-404', 404],
    ]);
  });

  it('says a rejected key is a credentials failure when reading an order', async () => {
    // prepare
    configure({ KOMFORTKASSE_API_KEY: 'wrong' });

    // act
    const error = await failureOf(getKomfortkasseOrder('R-1'));

    // assess
    expect(error).toBeInstanceOf(UpstreamAuthError);
    expect(error).toMatchObject({ upstream: 'Komfortkasse', status: 401 });
  });

  it('lists the open Komfortkasse orders with their numbers, asking for UNPAID and PAID_PARTIAL', async () => {
    // prepare
    komfortkasse.seedOrder({ number: 'old', body: update(), createdAt: new Date(Date.now() - 40 * 86_400_000) });
    komfortkasse.seedOrder({ number: 'paid', body: update(), paymentStatus: 'PAID' });
    await submitOrder('new', update());

    // act
    const open = await listOpenKomfortkasseOrders({ maxAgeDays: 60 });
    const recent = await listOpenKomfortkasseOrders({ maxAgeDays: 7 });

    // assess
    expect(open.map((o) => o.number).sort()).toEqual(['new', 'old']);
    expect(recent.map((o) => o.number)).toEqual(['new']);
    expect(komfortkasse.requests.at(-2)?.query).toEqual({ paymentStatus: 'UNPAID,PAID_PARTIAL', maxAge: '60' });
  });

  it('counts the shop orders, and a refused password is a credentials failure', async () => {
    // prepare
    shop.addOrder(seedOrder());

    // act
    const count = await countOrders();
    configure({ VERSACOMMERCE_API_PASSWORD: 'wrong' });
    const error = await failureOf(countOrders());

    // assess
    expect(count).toBe(1);
    expect(error).toBeInstanceOf(UpstreamAuthError);
    expect(error).toMatchObject({ upstream: 'VersaCommerce', status: 401 });
  });
});
