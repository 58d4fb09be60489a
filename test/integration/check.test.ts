import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getProbe } from '../../lib/store/probes.ts';
import type { RecordedRequest } from '../../local/simulators/index.ts';
import { LOCAL_DEFAULTS, type RunningStack } from '../../local/stack.ts';
import { TEST_SECRET, bootStack, cliFor, queueDepth } from './harness.ts';

// `orderbridge check` against a real local stack: DynamoDB Local, the SQS emulator, the
// simulators and the real ingest and order worker, run in-process through runCli.
describe('orderbridge check against the local stack', () => {
  let stack: RunningStack;
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    stack = await bootStack();
    ({ cli, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });

  const simulators = () => [stack.simulators.komfortkasse!, stack.simulators.klar!, stack.simulators.versaCommerce!];
  const requestsSince = (marks: number[]): RecordedRequest[] => simulators().flatMap((sim, i) => sim.requests.slice(marks[i]));
  const mark = () => simulators().map((sim) => sim.requests.length);
  const probeIdOf = (stdout: string) => /a signed probe \(([0-9a-f-]{36})\)/.exec(stdout)?.[1];

  it('passes on a healthy stack: one ✓ line per check, the webhook URL with a placeholder token, no secret', async () => {
    // act
    const result = await cli('check', '--probe-timeout', '60');
    // assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/^Stage\n {2}✓ local stack: API http:\/\/127\.0\.0\.1:\d+\n {2}✓ table orderbridge-local-history: ACTIVE\n {2}✓ queues: orderbridge-local-orders\.fifo, orderbridge-local-orders-dlq\.fifo, orderbridge-local-klar-costs, orderbridge-local-klar-costs-dlq\n {2}✓ settings: Komfortkasse on, Klar on, DRY_RUN false$/m);
    expect(out).toMatch(/✓ VersaCommerce: GET \/api\/orders\/count\.json answered \(\d+ orders\)/);
    expect(out).toContain('✓ Komfortkasse: API key accepted (GET /order/{number} for a number that cannot exist answered 404)');
    expect(out).toContain('✓ Klar: API token accepted (GET /transaction-costs/state answered)');
    expect(out).toContain('✓ webhook: an unauthenticated POST is refused (401)');
    expect(out).toMatch(/✓ webhook: a signed probe \([0-9a-f-]{36}\) answered 202 and the order worker recorded it after \d+\.\d s \(nothing sent upstream\)/);
    expect(out).toContain('✓ orderbridge-local-orders-dlq.fifo: empty');
    expect(out).toContain('✓ orderbridge-local-klar-costs-dlq: empty');
    expect(out).toMatch(/· reconcile: none yet/);
    expect(out).toMatch(/· needs-attention: no order parked/);
    expect(out).toContain(`${stack.url}/webhooks/versacommerce?token=<your webhook secret>`);
    expect(out).not.toContain('✗');
    expect(out).toMatch(/✓ All 11 checks passed\.\n$/);
    for (const secret of [TEST_SECRET, LOCAL_DEFAULTS.komfortkasseApiKey, LOCAL_DEFAULTS.klarApiToken, LOCAL_DEFAULTS.versaCommerceApiKey, LOCAL_DEFAULTS.versaCommercePassword]) {
      expect(out).not.toContain(secret);
    }
  });

  it('the probe reaches no upstream: the simulators record only the read-only credential calls, Klar gets no cost', async () => {
    // prepare
    const before = mark();
    // act
    const result = await cli('check', '--probe-timeout', '60');
    // assess
    expect(result.code).toBe(0);
    const probeId = probeIdOf(result.stdout) ?? '';
    const calls = requestsSince(before).map((r) => `${r.method} ${r.path}`);
    expect(calls).toHaveLength(3);
    expect(calls).toEqual(
      expect.arrayContaining([
        'GET /api/orders/count.json',
        expect.stringMatching(/^GET \/api\/v2\/order\/orderbridge-check-[0-9a-f]{12}$/),
        'GET /transaction-costs/state',
      ]),
    );
    expect(requestsSince(before).some((r) => JSON.stringify(r).includes(probeId))).toBe(false);
    // recorded as a probe, and nothing else: no order record, no Klar cost on its way
    expect(probeId).not.toBe('');
    expect(await getProbe(probeId)).toMatchObject({ probeId });
    expect(await queueDepth(stack, stack.queues.klarCosts.url)).toBe(0);
  });

  it('fails naming Komfortkasse and the 401 when Komfortkasse rejects the key, and never prints the key', async () => {
    // prepare: Komfortkasse refuses the key (as after a rotation on its side)
    stack.simulators.komfortkasse!.injectFault({ pathPrefix: '/api/v2/order/', status: 401, body: { error: 'Invalid API Key' } });
    // act
    const result = await cli('check', '--probe-timeout', '60');
    // assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ {2}✗ Komfortkasse: its API key was rejected \(401\)\n {6}→ set the matching variable \(e\.g\. KOMFORTKASSE_API_KEY\) for npm start/);
    expect(result.stdout).toMatch(/✗ 1 of 11 checks failed: Komfortkasse\n$/);
    expect(result.stdout).not.toContain(LOCAL_DEFAULTS.komfortkasseApiKey);
    expect(result.stdout).toContain('✓ Klar: API token accepted');
  });

  it('fails the probe step when the order worker is stopped', async () => {
    // prepare
    await stack.stopWorkers();
    try {
      // act
      const result = await cli('check', '--probe-timeout', '2');
      // assess
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('✓ webhook: an unauthenticated POST is refused (401)');
      expect(result.stdout).toMatch(/ {2}✗ webhook: a signed probe \([0-9a-f-]{36}\) answered 202, but the order worker did not record it within 2 s\n {6}→ is sync-order running\?/);
      expect(result.stdout).toMatch(/✗ 1 of 11 checks failed: webhook\n$/);
      const probeId = probeIdOf(result.stdout)!;
      expect(await getProbe(probeId)).toBeUndefined();
    } finally {
      stack.startWorkers();
    }
  });
});
