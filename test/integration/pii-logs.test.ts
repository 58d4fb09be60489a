import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/observability/logger.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceAddress, buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, drained, postWebhook, waitFor } from './harness.ts';

// This file wants every line at INFO: the level must be set before the logger module loads,
// since Powertools' injectLambdaContext restores the level the logger was created with.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/** Personal data of the test orders: none of it may reach a log line. */
const PII = {
  email: 'erika.mustermann@example.org',
  firstname: 'Erika',
  lastname: 'Mustermann',
  shippingFirstname: 'Friedhelm',
  shippingLastname: 'Beispielmann',
  phone: '+49 30 98765432',
  phoneDigits: '98765432',
  shippingPhone: '0511 2345678',
  street: 'Lindenallee',
  shippingStreet: 'Gartenweg',
  zipcode: '10115',
  city: 'Musterhausen',
  company: 'Feinkost Kowalczyk',
};

function orderWithPii(id: number) {
  return buildVersaCommerceOrder({
    id,
    code: `PII-${id}`,
    customer_email: PII.email,
    note: `Bitte bei ${PII.firstname} ${PII.lastname} klingeln, Tel. ${PII.phone}`,
    billing_address: buildVersaCommerceAddress('billing', {
      firstname: PII.firstname,
      lastname: PII.lastname,
      phone: PII.phone,
      street: PII.street,
      streetnumber: '7b',
      zipcode: PII.zipcode,
      city: PII.city,
      company: PII.company,
      email: PII.email,
      title: 'Frau',
    }),
    shipping_address: buildVersaCommerceAddress('shipping', {
      firstname: PII.shippingFirstname,
      lastname: PII.shippingLastname,
      phone: PII.shippingPhone,
      street: PII.shippingStreet,
      zipcode: PII.zipcode,
      city: PII.city,
      company: '',
      email: PII.email,
    }),
  });
}

// Everything the pipeline writes to stdout/stderr (Powertools log lines and EMF metrics)
// while full order runs go through the real handlers, including error paths.
describe('logs of a full order run contain no personal data', () => {
  let stack: RunningStack;
  const captured: string[] = [];
  let restore: () => void = () => undefined;
  const lines = () => captured.join('').split('\n').filter(Boolean);
  const json = () => lines().flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, any>];
    } catch {
      return [];
    }
  });

  beforeAll(async () => {
    // vitest runs with metrics off: this file wants them (the log level is set above).
    stack = await bootStack({ env: { POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false' } });
    const out = process.stdout.write;
    const err = process.stderr.write;
    const capture = (chunk: unknown) => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    restore = () => {
      process.stdout.write = out;
      process.stderr.write = err;
    };

    // act: webhook → Komfortkasse → Klar for three orders —
    //  1. the happy path;
    //  2. Komfortkasse down for a while (transient failure, redelivery);
    //  3. Komfortkasse rejects the order and echoes its email and phone in the message.
    const kk = stack.simulators.komfortkasse!;
    const happy = orderWithPii(8001);
    const flaky = orderWithPii(8002);
    const rejected = orderWithPii(8003);
    kk.injectFault({ pathPrefix: `/api/v2/order/${flaky.code}`, status: 503, body: { error: 'maintenance' }, times: 3 });
    kk.injectFault({ pathPrefix: `/api/v2/order/${rejected.code}`, status: 400, body: { error: `customerEmail ${PII.email} or phone ${PII.phone} is not valid` } });
    for (const [order, correlationId] of [
      [happy, 'pii-run-happy'],
      [flaky, 'pii-run-flaky'],
      [rejected, 'pii-run-rejected'],
    ] as const) {
      expect((await postWebhook(stack, { order }, { headers: { 'x-correlation-id': correlationId } })).status).toBe(202);
    }
    await waitFor(async () => {
      const [a, b, c] = await Promise.all([happy, flaky, rejected].map((o) => getOrderRecord(o.id)));
      return a?.komfortkasse.state === 'submitted' && b?.komfortkasse.state === 'submitted' && c?.komfortkasse.state === 'needs-attention' &&
        [a, b, c].every((r) => r?.klar.state === 'uploaded');
    }, 'all three orders to be handled', 30_000);
    await waitFor(async () => (await listAttempts(happy.id)).some((a) => a.target === 'klar'), 'the Klar attempt');
    await drained(stack);
  });
  afterAll(async () => {
    restore();
    logger.setLogLevel('WARN');
    await stack?.stop();
  });

  it('captured the pipeline (so the absence below means something)', () => {
    const entries = json();
    expect(entries.map((l) => l.message)).toEqual(expect.arrayContaining(['webhook', 'Komfortkasse in sync', 'Komfortkasse rejected the order', 'klar batch']));
    // the transient failure was logged too (with its upstream error)
    expect(entries).toContainEqual(expect.objectContaining({ level: 'WARN', orderCode: 'PII-8002', error: expect.stringContaining('503') }));
  });

  it.each(Object.entries(PII))('no %s', (_, value) => {
    // As a token, in any case: a random id that happens to contain "10115" is not a leak.
    const token = new RegExp(`(?<![\\p{L}\\p{N}])${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}])`, 'iu');
    const leaking = lines().filter((line) => token.test(line));
    expect(leaking).toEqual([]);
    expect(token.test(`x ${value} y`)).toBe(true); // the pattern itself finds the value
  });

  it('carries the webhook correlation id through SQS into every worker line of that order', () => {
    const entries = json();
    for (const id of ['pii-run-happy', 'pii-run-flaky', 'pii-run-rejected']) {
      expect(entries).toContainEqual(expect.objectContaining({ message: 'webhook', correlationId: id }));
    }
    const workerLines = entries.filter((l) => typeof l.orderCode === 'string' && l.message !== 'webhook');
    expect(workerLines.length).toBeGreaterThanOrEqual(4);
    for (const line of workerLines) {
      expect(line.correlationId).toBe({ 'PII-8001': 'pii-run-happy', 'PII-8002': 'pii-run-flaky', 'PII-8003': 'pii-run-rejected' }[line.orderCode as string]);
    }
    expect(entries).toContainEqual(expect.objectContaining({ message: 'Komfortkasse in sync', correlationId: 'pii-run-happy', orderCode: 'PII-8001', outcome: 'submitted' }));
    expect(entries).toContainEqual(expect.objectContaining({ message: 'Komfortkasse rejected the order', correlationId: 'pii-run-rejected', outcome: 'needs-attention' }));
    const klarBatches = entries.filter((l) => l.message === 'klar batch');
    expect(klarBatches.flatMap((l) => l.correlationIds)).toEqual(expect.arrayContaining(['pii-run-happy', 'pii-run-flaky', 'pii-run-rejected']));
  });

  it('keeps the upstream message in the log, with the echoed email and phone masked', () => {
    const rejected = json().find((l) => l.message === 'Komfortkasse rejected the order');
    expect(rejected?.error).toBe('UpstreamError: Komfortkasse answered 400: customerEmail [redacted] or phone [redacted] is not valid');
  });

  it('publishes EMF metrics: the webhook outcome, submitted, failed-transient, needs-attention and Klar uploaded', () => {
    const emf = json().filter((l) => l._aws?.CloudWatchMetrics);
    const names = new Set(emf.flatMap((l) => l._aws.CloudWatchMetrics.flatMap((m: { Metrics: { Name: string }[] }) => m.Metrics.map((x) => x.Name))));
    for (const name of ['webhookOutcome', 'submitted', 'failedTransient', 'needsAttention', 'klarUploaded', 'komfortkasseOutcome']) expect(names).toContain(name);
    expect(emf[0]!._aws.CloudWatchMetrics[0].Namespace).toBe('Orderbridge');
    const sum = (name: string, where: (l: Record<string, any>) => boolean = () => true) =>
      emf.filter(where).reduce((total, l) => total + (Array.isArray(l[name]) ? l[name].reduce((a: number, b: number) => a + b, 0) : (l[name] ?? 0)), 0);
    expect(sum('webhookOutcome', (l) => l.outcome === 'accepted')).toBe(3);
    expect(sum('submitted')).toBe(2);
    expect(sum('klarUploaded')).toBe(3);
  });
});
