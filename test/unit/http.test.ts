import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createUpstreamClient, pacerFor, toUpstreamError } from '../../lib/clients/http.ts';
import { uploadTransactionCosts } from '../../lib/clients/klar.ts';
import { submitOrder } from '../../lib/clients/komfortkasse.ts';
import { resetClients } from '../../lib/clients/registry.ts';
import { fetchOrder } from '../../lib/clients/versacommerce.ts';
import { forgetSecrets, reloadConfig } from '../../lib/config/index.ts';
import { UpstreamAuthError, UpstreamError, isPermanent } from '../../lib/domain/errors.ts';
import type { KomfortkasseOrder } from '../../lib/domain/komfortkasse.ts';
import { flushTallies, metrics } from '../../lib/observability/metrics.ts';
import {
  seedKomfortkasseOrder,
  seedOrder,
  startKlarSimulator,
  startKomfortkasseSimulator,
  startVersaCommerceSimulator,
  type KlarSimulator,
  type KomfortkasseSimulator,
  type VersaCommerceSimulator,
} from '../../local/simulators/index.ts';

// The shared HTTP layer (lib/clients/http.ts) and what every client does with it: a 401/403
// is our credentials (transient, counted, the cached secret dropped), one deadline bounds
// all retries, and the invocation's abort signal stops a call in flight.

const ENV = [
  'KOMFORTKASSE_BASE_URL',
  'KOMFORTKASSE_API_KEY',
  'KOMFORTKASSE_API_KEY_PARAMETER',
  'KOMFORTKASSE_TIMEOUT_MS',
  'KLAR_BASE_URL',
  'KLAR_API_TOKEN',
  'KLAR_API_TOKEN_PARAMETER',
  'KLAR_API_VERSION',
  'VERSACOMMERCE_BASE_URL',
  'VERSACOMMERCE_API_KEY',
  'VERSACOMMERCE_API_KEY_PARAMETER',
  'VERSACOMMERCE_API_PASSWORD',
  'VERSACOMMERCE_API_PASSWORD_PARAMETER',
  'UPSTREAM_RETRY_LIMIT',
  'UPSTREAM_RETRY_BASE_MS',
  'UPSTREAM_TOTAL_TIMEOUT_MS',
  'AWS_REGION',
] as const;
type EnvName = (typeof ENV)[number];

const PARAMETERS = {
  komfortkasse: '/orderbridge/test/komfortkasse-api-key',
  klar: '/orderbridge/test/klar-api-token',
  vcKey: '/orderbridge/test/versacommerce-api-key',
  vcPassword: '/orderbridge/test/versacommerce-api-password',
};

const ssm = mockClient(SSMClient);
const saved = Object.fromEntries(ENV.map((name) => [name, process.env[name]]));
let komfortkasse: KomfortkasseSimulator;
let klar: KlarSimulator;
let shop: VersaCommerceSimulator;

/** A cold start with these settings: secrets from SSM unless a plain value is given. */
function configure(overrides: Partial<Record<EnvName, string>> = {}): void {
  for (const name of ENV) delete process.env[name];
  Object.assign(process.env, {
    AWS_REGION: 'eu-central-1',
    KOMFORTKASSE_BASE_URL: komfortkasse.url,
    KOMFORTKASSE_API_KEY_PARAMETER: PARAMETERS.komfortkasse,
    KOMFORTKASSE_TIMEOUT_MS: '1000',
    KLAR_BASE_URL: klar.url,
    KLAR_API_TOKEN_PARAMETER: PARAMETERS.klar,
    KLAR_API_VERSION: '06.2024',
    VERSACOMMERCE_BASE_URL: new URL(shop.url).origin,
    VERSACOMMERCE_API_KEY_PARAMETER: PARAMETERS.vcKey,
    VERSACOMMERCE_API_PASSWORD_PARAMETER: PARAMETERS.vcPassword,
    UPSTREAM_RETRY_LIMIT: '2',
    UPSTREAM_RETRY_BASE_MS: '1',
    ...overrides,
  });
  reloadConfig();
  forgetSecrets();
  resetClients();
}

/** SSM answers these values for a parameter, one after the other (the last one repeats). */
function ssmAnswers(name: string, ...values: string[]): void {
  let stub = ssm.on(GetParameterCommand, { Name: name });
  for (const value of values.slice(0, -1)) stub = stub.resolvesOnce({ Parameter: { Value: value } });
  stub.resolves({ Parameter: { Value: values.at(-1)! } });
}

const readsOf = (name: string) => ssm.commandCalls(GetParameterCommand).filter((call) => call.args[0].input.Name === name).length;

/**
 * Captures `countBy('upstreamAuthFailed', 'upstream', …)`: the counts are summed per upstream
 * and written as Powertools single metrics when the invocation ends (flushTallies).
 */
function captureAuthFailures(): () => string[] {
  flushTallies(); // what earlier tests counted (metrics are off in tests: nothing is printed)
  const upstreams: string[] = [];
  vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    const dimensions: Record<string, string> = {};
    const single = {
      addDimension: (name: string, value: string) => ((dimensions[name] = value), single),
      addMetric: (name: string, _unit: unknown, value: number) => {
        if (name === 'upstreamAuthFailed') for (let i = 0; i < value; i++) upstreams.push(dimensions.upstream!);
        return single;
      },
    };
    return single as never;
  });
  return () => {
    flushTallies();
    return upstreams;
  };
}

async function failureOf(call: Promise<unknown>): Promise<UpstreamError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

/** A bare local upstream: `/status/<code>` answers that status, `/slow/<ms>` answers 200 after a delay. */
async function startBareUpstream(): Promise<{ url: string; arrivals: string[]; close: () => Promise<void>; server: Server }> {
  const arrivals: string[] = [];
  const server = createServer((request, response) => {
    arrivals.push(request.url ?? '');
    const [, kind, value] = (request.url ?? '').split('/');
    if (kind === 'status') {
      response.writeHead(Number(value), { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: `answered ${value}` }));
      return;
    }
    const timer = setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    }, Number(value));
    response.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    arrivals,
    server,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const update = () => seedKomfortkasseOrder() as KomfortkasseOrder;

beforeAll(async () => {
  [komfortkasse, klar, shop] = await Promise.all([
    startKomfortkasseSimulator({ apiKey: 'kk-key-current' }),
    startKlarSimulator({ token: 'klar-token-current', version: '06.2024' }),
    startVersaCommerceSimulator({ apiKey: 'vc-key-current', password: 'vc-password-current' }),
  ]);
});
afterAll(async () => {
  for (const name of ENV) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  reloadConfig();
  forgetSecrets();
  resetClients();
  ssm.restore();
  await Promise.all([komfortkasse?.close(), klar?.close(), shop?.close()]);
});
beforeEach(() => {
  ssm.reset();
  komfortkasse.reset();
  klar.reset();
  shop.reset();
  shop.addOrder(seedOrder());
  configure();
});
afterEach(() => {
  vi.restoreAllMocks();
  klar.clearFaults();
});

describe('401/403: our credentials were refused', () => {
  interface Case {
    upstream: 'Komfortkasse' | 'Klar' | 'VersaCommerce';
    status: 401 | 403;
    /** SSM first answers a key the upstream no longer takes (401), or the upstream refuses once (403) */
    arrange: () => void;
    call: () => Promise<unknown>;
    /** the parameters the client must read again */
    parameters: string[];
  }
  const kkCall = () => submitOrder('A-1', update());
  const klarCall = () => uploadTransactionCosts([{ orderId: '100', transactionCosts: 2 }]);
  const shopCall = () => fetchOrder(100);
  const cases: [string, Case][] = [
    ['Komfortkasse 401 (rotated API key)', { upstream: 'Komfortkasse', status: 401, arrange: () => ssmAnswers(PARAMETERS.komfortkasse, 'kk-key-old', 'kk-key-current'), call: kkCall, parameters: [PARAMETERS.komfortkasse] }],
    ['Komfortkasse 403', { upstream: 'Komfortkasse', status: 403, arrange: () => (ssmAnswers(PARAMETERS.komfortkasse, 'kk-key-current'), komfortkasse.injectFault({ status: 403, body: { error: 'Forbidden' } })), call: kkCall, parameters: [PARAMETERS.komfortkasse] }],
    ['Klar 401 (rotated token)', { upstream: 'Klar', status: 401, arrange: () => ssmAnswers(PARAMETERS.klar, 'klar-token-old', 'klar-token-current'), call: klarCall, parameters: [PARAMETERS.klar] }],
    ['Klar 403', { upstream: 'Klar', status: 403, arrange: () => (ssmAnswers(PARAMETERS.klar, 'klar-token-current'), klar.injectFault({ method: 'POST', status: 403, body: { message: 'Forbidden' } })), call: klarCall, parameters: [PARAMETERS.klar] }],
    ['VersaCommerce 401 (rotated password)', { upstream: 'VersaCommerce', status: 401, arrange: () => (ssmAnswers(PARAMETERS.vcKey, 'vc-key-current'), ssmAnswers(PARAMETERS.vcPassword, 'vc-password-old', 'vc-password-current')), call: shopCall, parameters: [PARAMETERS.vcKey, PARAMETERS.vcPassword] }],
    ['VersaCommerce 403', { upstream: 'VersaCommerce', status: 403, arrange: () => (ssmAnswers(PARAMETERS.vcKey, 'vc-key-current'), ssmAnswers(PARAMETERS.vcPassword, 'vc-password-current'), shop.injectFault({ status: 403, body: { error: 'Forbidden' } })), call: shopCall, parameters: [PARAMETERS.vcKey, PARAMETERS.vcPassword] }],
  ];

  it.each(cases)('%s → transient UpstreamAuthError, counted; the secret is read again and the next call succeeds', async (_, c) => {
    // prepare
    c.arrange();
    const authFailures = captureAuthFailures();

    // act
    const error = await failureOf(c.call());
    const readsAfterFailure = c.parameters.map(readsOf);
    const retried = await c.call();
    const readsAfterRetry = c.parameters.map(readsOf);
    await c.call();
    const readsLater = c.parameters.map(readsOf);

    // assess
    expect(error).toBeInstanceOf(UpstreamAuthError);
    expect(error).toMatchObject({ upstream: c.upstream, status: c.status, category: 'transient' });
    expect(isPermanent(error)).toBe(false);
    expect(error.message).toContain('credentials were refused');
    expect(authFailures()).toEqual([c.upstream]);
    expect(retried).toBeDefined();
    expect(readsAfterFailure).toEqual(c.parameters.map(() => 1));
    expect(readsAfterRetry).toEqual(c.parameters.map(() => 2)); // dropped on the refusal, read again
    expect(readsLater).toEqual(c.parameters.map(() => 2)); // cached again after a success
  });

  it('does not retry a 401 within the call', async () => {
    // prepare
    ssmAnswers(PARAMETERS.komfortkasse, 'kk-key-old');

    // act
    await failureOf(submitOrder('A-1', update()));

    // assess
    expect(komfortkasse.requests).toHaveLength(1);
  });

  it('keeps the cached secret on other failures (400, 404, 503)', async () => {
    // prepare
    ssmAnswers(PARAMETERS.komfortkasse, 'kk-key-current');
    komfortkasse.injectFault({ status: 400, body: { error: 'Invalid request' } });
    komfortkasse.injectFault({ status: 503, times: 3 });

    // act
    const invalid = await failureOf(submitOrder('A-1', update()));
    const unavailable = await failureOf(submitOrder('A-1', update()));
    await submitOrder('A-1', update());

    // assess
    expect(invalid).not.toBeInstanceOf(UpstreamAuthError);
    expect(unavailable).not.toBeInstanceOf(UpstreamAuthError);
    expect(readsOf(PARAMETERS.komfortkasse)).toBe(1);
  });
});

describe('toUpstreamError', () => {
  let bare: Awaited<ReturnType<typeof startBareUpstream>>;
  beforeAll(async () => {
    bare = await startBareUpstream();
  });
  afterAll(() => bare.close());

  it.each<[number, 'transient' | 'permanent', boolean]>([
    [401, 'transient', true],
    [403, 'transient', true],
    [400, 'permanent', false],
    [404, 'permanent', false],
    [409, 'permanent', false],
    [429, 'transient', false],
    [500, 'transient', false],
    [503, 'transient', false],
  ])('%i → %s; credentials rejected: %s', async (status, category, rejected) => {
    // prepare
    const api = await createUpstreamClient({ upstream: 'Bare', baseUrl: bare.url, retryLimit: 0 });
    const onCredentialsRejected = vi.fn();
    const authFailures = captureAuthFailures();

    // act
    const thrown = await api.get(`status/${status}`).then(() => undefined, (error: unknown) => error);
    const error = toUpstreamError('Bare', thrown, onCredentialsRejected);

    // assess
    expect(error).toMatchObject({ upstream: 'Bare', status, category, upstreamMessage: `answered ${status}` });
    expect(error instanceof UpstreamAuthError).toBe(rejected);
    expect(onCredentialsRejected).toHaveBeenCalledTimes(rejected ? 1 : 0);
    expect(authFailures()).toEqual(rejected ? ['Bare'] : []);
  });

  it('passes an UpstreamError through unchanged, and calls anything else unreachable (transient)', () => {
    // prepare
    const original = new UpstreamError('Bare', 'x', 'permanent', { status: 400 });

    // act
    const same = toUpstreamError('Bare', original);
    const network = toUpstreamError('Bare', new TypeError('fetch failed'));

    // assess
    expect(same).toBe(original);
    expect(network).toMatchObject({ category: 'transient', message: 'Bare unreachable: fetch failed' });
  });
});

describe('deadlines', () => {
  let bare: Awaited<ReturnType<typeof startBareUpstream>>;
  beforeAll(async () => {
    bare = await startBareUpstream();
  });
  afterAll(() => bare.close());
  beforeEach(() => {
    bare.arrivals.length = 0;
  });

  it('totalTimeout bounds all retries: the call ends near the total, not after retries × per-attempt timeout', async () => {
    // prepare: 200 ms per attempt and 10 retries would take > 2 s; the total is 500 ms
    const api = await createUpstreamClient({ upstream: 'Bare', baseUrl: bare.url, timeoutMs: 200, totalTimeoutMs: 500, retryLimit: 10, retryBaseMs: 1 });
    const started = performance.now();

    // act
    const thrown = await api.get('slow/5000').then(() => undefined, (error: unknown) => error);
    const elapsed = performance.now() - started;
    const error = toUpstreamError('Bare', thrown);

    // assess
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1000);
    expect(bare.arrivals.length).toBeGreaterThanOrEqual(2); // it did retry
    expect(bare.arrivals.length).toBeLessThanOrEqual(4);
    expect(error).toMatchObject({ category: 'transient', message: 'Bare timed out' });
    expect(error.status).toBeUndefined();
  });

  it('totalTimeout also cuts a backoff that would outlast it', async () => {
    // prepare: the first retry would wait 2 s
    const api = await createUpstreamClient({ upstream: 'Bare', baseUrl: bare.url, totalTimeoutMs: 300, retryLimit: 3, retryBaseMs: 4000 });
    const started = performance.now();

    // act
    const thrown = await api.get('status/503').then(() => undefined, (error: unknown) => error);
    const elapsed = performance.now() - started;

    // assess
    expect(elapsed).toBeLessThan(1000);
    expect(bare.arrivals).toEqual(['/status/503']);
    expect(toUpstreamError('Bare', thrown).category).toBe('transient');
  });

  it('UPSTREAM_TOTAL_TIMEOUT_MS bounds a real client call (Komfortkasse)', async () => {
    // prepare: 10 retries of 200 ms would take > 2 s
    configure({ KOMFORTKASSE_API_KEY: 'kk-key-current', KOMFORTKASSE_TIMEOUT_MS: '200', UPSTREAM_RETRY_LIMIT: '10', UPSTREAM_TOTAL_TIMEOUT_MS: '600' });
    komfortkasse.injectFault({ delayMs: 3000, times: Infinity });
    const started = performance.now();

    // act
    const error = await failureOf(submitOrder('slow', update()));
    const elapsed = performance.now() - started;

    // assess
    expect(elapsed).toBeLessThan(1200);
    expect(error).toMatchObject({ category: 'transient', message: 'Komfortkasse timed out' });
  });

  it('an aborted signal stops a call in flight as a transient error, without a retry', async () => {
    // prepare
    const api = await createUpstreamClient({ upstream: 'Bare', baseUrl: bare.url, timeoutMs: 5000, totalTimeoutMs: 10_000, retryLimit: 5, retryBaseMs: 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();

    // act
    const thrown = await api.get('slow/3000', { signal: controller.signal }).then(() => undefined, (error: unknown) => error);
    const elapsed = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const error = toUpstreamError('Bare', thrown);

    // assess
    expect(elapsed).toBeLessThan(1000);
    expect(bare.arrivals).toHaveLength(1);
    expect(error).toMatchObject({ category: 'transient', message: "Bare call stopped at the function's deadline" });
  });

  it('a real client call (Komfortkasse) honours the signal; an already aborted one sends nothing', async () => {
    // prepare
    configure({ KOMFORTKASSE_API_KEY: 'kk-key-current' });
    komfortkasse.injectFault({ delayMs: 3000, times: Infinity });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();

    // act
    const stopped = await failureOf(submitOrder('slow', update(), { signal: controller.signal }));
    const elapsed = performance.now() - started;
    const before = await failureOf(submitOrder('never', update(), { signal: AbortSignal.abort() }));

    // assess
    expect(elapsed).toBeLessThan(1000);
    expect(stopped).toMatchObject({ category: 'transient', message: "Komfortkasse call stopped at the function's deadline" });
    expect(before).toMatchObject({ category: 'transient' });
    expect(isPermanent(before)).toBe(false);
    expect(komfortkasse.orders.has('never')).toBe(false);
  });
});

describe('the upstream pacer in the client factory', () => {
  afterEach(() => {
    komfortkasse.reset();
    resetClients();
  });
  const pacedClient = (upstream: string, retryLimit = 2) =>
    createUpstreamClient({ upstream, baseUrl: komfortkasse.url, headers: { 'X-Komfortkasse-API-Key': 'kk-key-current' }, retryLimit, retryBaseMs: 1 });

  it('after the first 429 paces every call of that upstream: 30 calls at once against 5 requests/s all get through, nearly each with one 429 at most', async () => {
    // prepare
    resetClients();
    komfortkasse.reset();
    komfortkasse.rateLimit.requestsPerSecond = 5;
    const api = await pacedClient('PacedKomfortkasse', 4);

    // act
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => api.post(`order/P-${i}`, { json: update() })));
    const seconds = (Date.now() - started) / 1000;

    // assess: unpaced, the refused calls would retry together after each Retry-After (25, 20,
    // 15, … 429s, most calls refused again and again); paced, a refused call nearly always gets
    // through on its next try (calls still on their way when the first 429 came may crowd it)
    const refusals = new Map<string, number>();
    for (const r of komfortkasse.requests) if (r.status === 429) refusals.set(r.path, (refusals.get(r.path) ?? 0) + 1);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    // (a late request of an earlier test may still land in the simulator: count ours)
    expect(Array.from({ length: 30 }, (_, i) => `P-${i}`).filter((code) => !komfortkasse.orders.has(code))).toEqual([]);
    expect(komfortkasse.rateLimit.throttled).toBeLessThanOrEqual(50);
    expect([...refusals.values()].filter((n) => n > 1).length).toBeLessThanOrEqual(8);
    expect(seconds).toBeGreaterThanOrEqual(4); // 30 calls at 5/s cannot be quicker
    expect(pacerFor('PacedKomfortkasse').state()).toMatchObject({ pacing: true, waiting: 0 });
  }, 30_000);

  it('gives a 429 that used up the retries a retryAfterMs of at least its Retry-After', async () => {
    // prepare
    resetClients();
    komfortkasse.injectFault({ status: 429, headers: { 'retry-after': '2' }, body: { error: 'Too many requests' } });
    const api = await pacedClient('ThrottledKomfortkasse', 0);

    // act
    const thrown = await api.post('order/T-1', { json: update() }).then(() => undefined, (error: unknown) => error);
    const error = toUpstreamError('ThrottledKomfortkasse', thrown);

    // assess
    expect(error).toMatchObject({ status: 429, category: 'transient' });
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(2000);
    expect(error.retryAfterMs).toBeLessThan(10_000);
  });

  it('gives other failures no retryAfterMs', async () => {
    // prepare
    resetClients();
    komfortkasse.injectFault({ status: 503 });
    const api = await pacedClient('UnthrottledKomfortkasse', 0);

    // act
    const thrown = await api.post('order/U-1', { json: update() }).then(() => undefined, (error: unknown) => error);

    // assess
    expect(toUpstreamError('UnthrottledKomfortkasse', thrown).retryAfterMs).toBeUndefined();
  });
});
