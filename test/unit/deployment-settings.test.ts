import { describe, expect, it } from 'vitest';
import { checkDeployment } from '../../lib/config/deployment.ts';
import { buildDeployment } from '../factories/deployment.ts';

// The package-time check (infra/orderbridge-plugin.cjs runs it before osls builds anything),
// here on the deployment serverless.yml describes, with a deploy shell's settings.

describe('checkDeployment', () => {
  it('passes the shipped serverless.yml with every default, on a dev stage and on prod with a shop URL', () => {
    // prepare
    const dev = buildDeployment({ stage: 'ci' });
    const prod = buildDeployment({ stage: 'prod', env: { VERSACOMMERCE_BASE_URL: 'https://myshop.versacommerce.de' } });

    // act / assess
    expect(checkDeployment(dev)).toEqual([]);
    expect(checkDeployment(prod)).toEqual([]);
  });

  it.each([
    ['PAYMENT_TYPE_MAP', '{"barzahlung":"SKIP",}'],
    ['PAYMENT_TYPE_MAP', '{"barzahlung":"CASH"}'],
    ['FEE_SCHEDULE', '{"rules":[{"paymentType":"paypal","percent":2.49}]}'],
    ['FEE_SCHEDULE', 'rules: paypal 2.49 %'],
    ['KLAR_ORDER_ID_FIELD', 'sku'],
    ['KLAR_BODY_WRAPPER', 'object'],
    ['DRY_RUN', 'maybe'],
    ['UPSTREAM_RETRY_LIMIT', 'three'],
  ])('refuses %s=%s, naming the variable once', (name, value) => {
    // prepare
    const deployment = buildDeployment({ env: { [name]: value } });

    // act
    const problems = checkDeployment(deployment);

    // assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(name);
  });

  it('refuses a total upstream deadline whose worst case does not fit sync-order, naming both settings', () => {
    // prepare: two calls of 40 s do not fit the 60 s timeout
    const deployment = buildDeployment({ env: { UPSTREAM_TOTAL_TIMEOUT_MS: '40000', KOMFORTKASSE_LEASE_SECONDS: '120' } });

    // act
    const problems = checkDeployment(deployment);

    // assess
    expect(problems).toEqual([expect.stringMatching(/^UPSTREAM_TOTAL_TIMEOUT_MS \(40000 ms\) does not fit sync-order's timeout \(60 s, functions\.sync-order\.timeout\).*at most 19333/)]);
  });

  it('refuses a Klar deadline beyond upload-klar-costs\' timeout', () => {
    // prepare
    const deployment = buildDeployment({ env: { KLAR_TOTAL_TIMEOUT_MS: '61000' } });

    // act / assess
    expect(checkDeployment(deployment)).toEqual([expect.stringContaining('KLAR_TOTAL_TIMEOUT_MS (61000 ms) does not fit upload-klar-costs')]);
  });

  it('refuses a batching window that the klar-costs visibility timeout no longer covers, naming both', () => {
    // prepare: 6 × 60 s + 120 s = 480 s > the queue's 420 s
    const deployment = buildDeployment({ env: { KLAR_BATCH_WINDOW_SECONDS: '120' } });

    // act
    const problems = checkDeployment(deployment);

    // assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('KlarCostsQueue VisibilityTimeout (420 s)');
    expect(problems[0]).toContain('KLAR_BATCH_WINDOW_SECONDS (120 s) = 480 s');
  });

  it('refuses a queue whose visibility timeout is below six times its consumer\'s timeout', () => {
    // prepare
    const deployment = buildDeployment();
    deployment.functions.find((fn) => fn.name === 'sync-order')!.timeoutSeconds = 90;

    // act / assess
    expect(checkDeployment(deployment)).toEqual([expect.stringMatching(/^OrdersQueue VisibilityTimeout \(360 s\) must be at least 6 × sync-order's timeout \(90 s/)]);
  });

  it('refuses a Komfortkasse lease that expires before the calls of a record can end, naming both settings', () => {
    // prepare
    const deployment = buildDeployment({ env: { KOMFORTKASSE_LEASE_SECONDS: '12' } });

    // act
    const problems = checkDeployment(deployment);

    // assess
    expect(problems).toEqual([expect.stringMatching(/^KOMFORTKASSE_LEASE_SECONDS \(12 s\) must outlive the 2 Komfortkasse calls of one record .*UPSTREAM_TOTAL_TIMEOUT_MS \(12000 ms\) each.*at least 26$/)]);
  });

  it('requires VERSACOMMERCE_BASE_URL on a production stage only', () => {
    // prepare
    const prod = buildDeployment({ stage: 'prod' });
    const dev = buildDeployment({ stage: 'dev' });

    // act / assess
    expect(checkDeployment(prod)).toEqual([expect.stringMatching(/^VERSACOMMERCE_BASE_URL is not set: stage "prod"/)]);
    expect(checkDeployment(dev)).toEqual([]);
  });

  it('refuses an environment over Lambda\'s 4 KB, naming the largest setting', () => {
    // prepare: a valid fee schedule of 100 rules
    const rules = Array.from({ length: 100 }, (_, i) => ({ paymentType: `method-${i}`, fixed: 0.25, percent: 1.4 }));
    const deployment = buildDeployment({ env: { FEE_SCHEDULE: JSON.stringify({ rules }) } });

    // act
    const problems = checkDeployment(deployment);

    // assess: each function's environment is over the limit
    expect(problems).toHaveLength(deployment.functions.length);
    expect(problems.every((p) => /over Lambda's 4096: shorten the largest settings \(FEE_SCHEDULE \d+ bytes/.test(p))).toBe(true);
  });
});
