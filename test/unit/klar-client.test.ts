import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchKlarState, uploadPath, uploadTransactionCosts } from '../../lib/clients/klar.ts';
import { resetClients } from '../../lib/clients/registry.ts';
import { forgetSecrets, reloadConfig } from '../../lib/config/index.ts';
import { InvalidMessageError, UpstreamAuthError, UpstreamError, isPermanent } from '../../lib/domain/errors.ts';
import { mapInvalidErrors, type TransactionCosts } from '../../lib/domain/klar.ts';
import { startKlarSimulator, type KlarSimulator } from '../../local/simulators/index.ts';

// The real client against the Klar simulator over real HTTP: headers, paths, bodies, retries.
const VERSION = '07.2025';
const TOKEN = 'unit-klar-token';
const KEYS = ['KLAR_BASE_URL', 'KLAR_API_TOKEN', 'KLAR_API_TOKEN_PARAMETER', 'KLAR_API_VERSION', 'KLAR_BODY_WRAPPER', 'UPSTREAM_RETRY_LIMIT', 'UPSTREAM_RETRY_BASE_MS'] as const;

const costs = (...ids: string[]): TransactionCosts[] => ids.map((orderId, i) => ({ orderId, transactionCosts: i === 0 ? 0 : 1.25 * i }));

describe('Klar client', () => {
  let klar: KlarSimulator;
  const saved = Object.fromEntries(KEYS.map((key) => [key, process.env[key]]));
  const uploads = () => klar.requests.filter((r) => r.method === 'POST');

  /** A fresh cold start with these settings (config, secrets and clients are cached per container). */
  function configure(env: Partial<Record<(typeof KEYS)[number], string | undefined>> = {}): void {
    for (const key of KEYS) delete process.env[key];
    const wanted = { KLAR_BASE_URL: klar.url, KLAR_API_TOKEN: TOKEN, KLAR_API_VERSION: VERSION, UPSTREAM_RETRY_BASE_MS: '1', ...env };
    for (const [key, value] of Object.entries(wanted)) if (value !== undefined) process.env[key] = value;
    reloadConfig();
    forgetSecrets();
    resetClients();
  }

  beforeAll(async () => {
    klar = await startKlarSimulator({ token: TOKEN, version: VERSION });
  });
  afterAll(async () => {
    await klar.close();
    for (const key of KEYS) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    reloadConfig();
    forgetSecrets();
    resetClients();
  });
  beforeEach(() => {
    klar.reset();
    configure();
  });
  afterEach(() => klar.clearFaults());

  describe('upload', () => {
    it('POSTs {"items":[…]} to /<version>/transaction-costs/json with the Bearer token', async () => {
      // act
      const result = await uploadTransactionCosts(costs('100', '101'));
      // assess
      expect(result).toMatchObject({ outcome: 'valid', status: 201 });
      const [request] = uploads();
      expect(request).toMatchObject({ path: `/${VERSION}/transaction-costs/json`, status: 201 });
      expect(request!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(request!.headers['content-type']).toMatch(/^application\/json/);
      // 0 is sent (transactionCosts is required); nothing optional appears
      expect(request!.body).toEqual({ items: [{ orderId: '100', transactionCosts: 0 }, { orderId: '101', transactionCosts: 1.25 }] });
      expect(klar.costs.get('100')).toMatchObject({ transactionCosts: 0, uploadCount: 1 });
    });

    it('takes the version from KLAR_API_VERSION, 06.2024 by default', () => {
      expect(uploadPath()).toBe(`${VERSION}/transaction-costs/json`);
      configure({ KLAR_API_VERSION: undefined });
      expect(uploadPath()).toBe('06.2024/transaction-costs/json');
    });

    it('sends the bare array with KLAR_BODY_WRAPPER=array', async () => {
      // prepare
      configure({ KLAR_BODY_WRAPPER: 'array' });
      // act
      const result = await uploadTransactionCosts(costs('200'));
      // assess
      expect(result.outcome).toBe('valid');
      expect(uploads()[0]!.body).toEqual([{ orderId: '200', transactionCosts: 0 }]);
      expect(klar.costs.has('200')).toBe(true);
    });

    it('refuses, before any request, a cost with null or a number as orderId', async () => {
      // act + assess
      await expect(uploadTransactionCosts([{ orderId: '1', transactionCosts: 1, cancelledAt: null } as unknown as TransactionCosts])).rejects.toBeInstanceOf(InvalidMessageError);
      await expect(uploadTransactionCosts([{ orderId: 1, transactionCosts: 1 } as unknown as TransactionCosts])).rejects.toThrow(/orderId/);
      expect(uploads()).toHaveLength(0);
    });

    it('returns INVALID with errors that map back to the orders, and does not retry the 400', async () => {
      // prepare
      klar.injectFault({
        method: 'POST',
        status: 400,
        body: { status: 'INVALID', errors: [{ id: 1, key: '1.orderId', message: 'unknown order', value: '301' }] },
      });
      const sent = costs('300', '301', '302');
      // act
      const result = await uploadTransactionCosts(sent);
      // assess
      expect(result).toMatchObject({ outcome: 'invalid', status: 400, errors: [{ key: '1.orderId', message: 'unknown order' }] });
      expect(uploads()).toHaveLength(1);
      const { invalid, unmatched } = mapInvalidErrors(sent, result.outcome === 'invalid' ? result.errors : []);
      expect([...invalid]).toEqual([['301', 'unknown order']]);
      expect(unmatched).toEqual([]);
      expect(klar.costs.size).toBe(0);
    });

    it('throws a permanent error for a 400 that is not INVALID, without retrying', async () => {
      // prepare
      klar.injectFault({ method: 'POST', status: 400, body: { message: 'bad request' } });
      // act
      const error = await uploadTransactionCosts(costs('320')).catch((e: unknown) => e);
      // assess
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error).toMatchObject({ status: 400, category: 'permanent' });
      expect(uploads()).toHaveLength(1);
    });

    it('throws a transient UpstreamAuthError for a wrong token (401), without retrying', async () => {
      // prepare
      configure({ KLAR_API_TOKEN: 'not-the-token' });
      // act
      const error = await uploadTransactionCosts(costs('330')).catch((e: unknown) => e);
      // assess
      expect(error).toBeInstanceOf(UpstreamAuthError);
      expect(error).toMatchObject({ upstream: 'Klar', status: 401, category: 'transient' });
      expect(isPermanent(error)).toBe(false);
      expect(uploads()).toHaveLength(1);
      expect(uploads()[0]!.headers.authorization).toBe('Bearer not-the-token');
    });

    it('retries a 503 and succeeds', async () => {
      // prepare
      klar.injectFault({ method: 'POST', status: 503, body: { message: 'busy' } });
      // act
      const result = await uploadTransactionCosts(costs('340', '341'));
      // assess
      expect(result.outcome).toBe('valid');
      expect(uploads().map((r) => r.status)).toEqual([503, 201]);
      expect(klar.costs.get('341')?.uploadCount).toBe(1);
    });

    it('retries a dropped connection', async () => {
      // prepare
      klar.injectFault({ method: 'POST', destroy: true });
      // act
      const result = await uploadTransactionCosts(costs('345'));
      // assess
      expect(result.outcome).toBe('valid');
      expect(uploads().map((r) => r.status)).toEqual([0, 201]);
    });

    it('honours Retry-After on a 429', async () => {
      // prepare
      klar.injectFault({ method: 'POST', status: 429, headers: { 'retry-after': '1' }, body: { message: 'slow down' } });
      const started = Date.now();
      // act
      const result = await uploadTransactionCosts(costs('350'));
      // assess
      expect(result.outcome).toBe('valid');
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(uploads().map((r) => r.status)).toEqual([429, 201]);
    });

    it('gives up after UPSTREAM_RETRY_LIMIT retries with a transient error', async () => {
      // prepare
      configure({ UPSTREAM_RETRY_LIMIT: '2' });
      klar.injectFault({ method: 'POST', status: 503, times: 5 });
      // act
      const error = await uploadTransactionCosts(costs('360')).catch((e: unknown) => e);
      // assess
      expect(error).toMatchObject({ status: 503, category: 'transient' });
      expect(uploads()).toHaveLength(3);
    });

    it('reads a 207 that names rejected entries as partial', async () => {
      // prepare
      klar.injectFault({ method: 'POST', status: 207, body: { status: 'PARTIAL', errors: [{ key: '0.orderId', message: 'order not found' }] } });
      // act
      const result = await uploadTransactionCosts(costs('370', '371'));
      // assess
      expect(result).toMatchObject({ outcome: 'partial', status: 207, errors: [{ key: '0.orderId', message: 'order not found' }] });
      expect(uploads()).toHaveLength(1);
    });

    it('treats a 207 that names nothing as transient (the upload is an idempotent upsert)', async () => {
      // prepare
      klar.injectFault({ method: 'POST', status: 207, body: { status: 'PARTIAL' } });
      // act
      const error = await uploadTransactionCosts(costs('380')).catch((e: unknown) => e);
      // assess
      expect(error).toMatchObject({ status: 207, category: 'transient' });
    });
  });

  describe('state', () => {
    it('GETs /transaction-costs/state (no version) with the Bearer token', async () => {
      // prepare
      klar.setState({ total: 9, lastSuccess: '2023-03-11T12:13:31.193Z' });
      // act
      const state = await fetchKlarState();
      // assess
      expect(state).toEqual({ endpoint: '/transaction-costs/state', body: { total: '9', lastSuccess: '2023-03-11 T12:13:31.193Z' } });
      expect(klar.requests[0]).toMatchObject({ method: 'GET', path: '/transaction-costs/state' });
      expect(klar.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    });

    it('falls back to /transaction-costs/status on a 404', async () => {
      // prepare
      klar.injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 404 });
      // act
      const state = await fetchKlarState();
      // assess
      expect(state.endpoint).toBe('/transaction-costs/status');
      expect(klar.requests.map((r) => `${r.path} ${r.status}`)).toEqual(['/transaction-costs/state 404', '/transaction-costs/status 200']);
    });

    it('does not fall back on a 5xx: it retries, then fails transiently', async () => {
      // prepare
      klar.injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 500, times: 3 });
      // act
      const error = await fetchKlarState().catch((e: unknown) => e);
      // assess
      expect(error).toMatchObject({ status: 500, category: 'transient' });
      expect(klar.requests.map((r) => r.path)).toEqual(Array(3).fill('/transaction-costs/state'));
    });

    it('fails permanently on a 200 that is not JSON', async () => {
      // prepare
      klar.injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 200, body: '<html>maintenance</html>' });
      // act + assess
      await expect(fetchKlarState()).rejects.toMatchObject({ category: 'permanent', message: expect.stringContaining('without a JSON body') });
    });
  });
});
