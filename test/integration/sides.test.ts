import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secret } from '../../lib/config/index.ts';
import { klarCostMessageFor } from '../../lib/domain/messages.ts';
import { versaCommerceOrderSchema } from '../../lib/domain/versacommerce.ts';
import { historyJsonSchema } from '../../lib/ops/history-view.ts';
import { statusJsonSchema } from '../../lib/ops/status.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import type { InvocationLog } from '../../local/runtime.ts';
import { startKlarSimulator, startKomfortkasseSimulator, type KlarSimulator, type KomfortkasseSimulator } from '../../local/simulators/index.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

// KLAR_ENABLED=false and KOMFORTKASSE_ENABLED=false through the whole local stack: the side
// that is off gets nothing (its simulator runs beside the stack and must see no request),
// needs no credentials, and status and history say it is off.

const KLAR_UPLOAD_PATH = '/06.2024/transaction-costs/json';

describe('KLAR_ENABLED=false', () => {
  let stack: RunningStack;
  let klar: KlarSimulator;
  let cli: Awaited<ReturnType<typeof cliFor>>;
  const invocations: InvocationLog[] = [];
  const invokedRecords = (functionName: string) =>
    invocations.filter((i) => i.functionName === functionName).reduce((sum, i) => sum + (i.records ?? 0), 0);

  beforeAll(async () => {
    // A Klar that would answer, were it asked: it must see nothing.
    klar = await startKlarSimulator({ token: 'unused-klar-token' });
    stack = await bootStack({
      env: { KLAR_ENABLED: 'false', KOMFORTKASSE_ENABLED: 'true', KLAR_BASE_URL: klar.url, KLAR_API_TOKEN: '', KLAR_API_TOKEN_PARAMETER: '' },
      onInvocation: (log) => invocations.push(log),
    });
    cli = await cliFor(stack);
  });
  afterAll(async () => {
    cli?.cleanup();
    await stack?.stop();
    await klar?.close();
  });

  it('sends a cod order to Komfortkasse and nothing to klar-costs or Klar', async () => {
    // prepare
    const order = buildVersaCommerceOrder({ id: 7101, code: 'SW-7101', payment_type: 'cod' });

    // act
    const response = await postWebhook(stack, { order });
    await waitFor(() => stack.simulators.komfortkasse!.requests.some((r) => r.path === `/api/v2/order/${order.code}`), 'the Komfortkasse submit');
    await drained(stack);

    // assess
    expect(response.status).toBe(202);
    const submits = stack.simulators.komfortkasse!.requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${order.code}`);
    expect(submits).toEqual([expect.objectContaining({ status: 200, body: expect.objectContaining({ type: 'COD', amount: 15.94 }) })]);
    expect(invokedRecords('upload-klar-costs')).toBe(0);
    expect(await queueDepth(stack, stack.queues.klarCosts.url)).toBe(0);
    expect(klar.requests).toEqual([]);
  });

  it('runs without a Klar token and without a Klar simulator of its own', async () => {
    // act
    const token = await secret('KLAR_API_TOKEN');

    // assess
    expect(token).toBeUndefined();
    expect(stack.env.KLAR_API_TOKEN).toBeUndefined();
    expect(stack.simulators.klar).toBeUndefined();
    expect(stack.env.KLAR_ENABLED).toBe('false');
  });

  it('has a disabled Klar poller schedule, and a poll invoked by hand reads nothing', async () => {
    // act
    const result = await stack.fireSchedule('poll-klar-state');

    // assess
    const poller = stack.definition.functions.find((fn) => fn.name === 'poll-klar-state')!;
    expect(poller.events).toEqual([expect.objectContaining({ type: 'schedule', enabled: false })]);
    expect(result).toEqual({ klar: 'off' });
    expect(klar.requests).toEqual([]);
  });

  it('records a cost that still reaches the Klar worker as not applicable and deletes it, uploading nothing', async () => {
    // prepare: a cost queued before Klar was switched off
    const order = buildVersaCommerceOrder({ id: 7102, code: 'SW-7102', payment_type: 'paypal' });
    const cost = klarCostMessageFor(versaCommerceOrderSchema.parse(order), { receivedAt: new Date().toISOString(), correlationId: 'corr-sw-7102' });

    // act
    await stack.sqsClient.send(new SendMessageCommand({ QueueUrl: stack.queues.klarCosts.url, MessageBody: JSON.stringify(cost) }));
    await waitFor(async () => (await listAttempts(order.id)).some((a) => a.target === 'klar'), 'the not-applicable attempt');
    await drained(stack);

    // assess
    expect(await listAttempts(order.id)).toEqual([
      expect.objectContaining({ target: 'klar', action: 'upload', outcome: 'not-applicable', error: expect.stringContaining('KLAR_ENABLED=false'), correlationId: 'corr-sw-7102' }),
    ]);
    expect(await queueDepth(stack, stack.queues.klarCostsDlq.url)).toBe(0);
    expect(klar.requests.filter((r) => r.path === KLAR_UPLOAD_PATH)).toEqual([]);
  });

  it('status says Klar is off, and nothing about its import', async () => {
    // act
    const text = await cli.cli('status');
    const json = await cli.cli('status', '--json');

    // assess
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Klar:\s+off \(KLAR_ENABLED=false\)/m);
    expect(text.stdout).toMatch(/^Komfortkasse:\s+on\b/m);
    expect(text.stdout).toContain('Klar import:      not polled (Klar is off)');
    const status = statusJsonSchema.parse(JSON.parse(json.stdout));
    expect(status.sides).toMatchObject({ komfortkasse: true, klar: false });
  });

  it('klar-state says the import state is not polled', async () => {
    // act
    const result = await cli.cli('klar-state');

    // assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Klar is off \(KLAR_ENABLED=false\): its import state is not polled/);
  });

  it('history shows the Klar side as off, in text and JSON', async () => {
    // act
    const text = await cli.cli('history', 'SW-7101');
    const json = await cli.cli('history', 'SW-7101', '--json');

    // assess
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}Klar\s+off\s+switched off \(KLAR_ENABLED=false\)$/m);
    expect(text.stdout).toMatch(/^ {2}Komfortkasse\s+submitted\b/m);
    const history = historyJsonSchema.parse(JSON.parse(json.stdout));
    expect(history.klar).toEqual({ state: 'off' });
    expect(history.komfortkasse).toMatchObject({ state: 'submitted' });
  });
});

describe('KOMFORTKASSE_ENABLED=false', () => {
  let stack: RunningStack;
  let komfortkasse: KomfortkasseSimulator;
  let cli: Awaited<ReturnType<typeof cliFor>>;

  beforeAll(async () => {
    // A Komfortkasse that would answer, were it asked: it must see nothing.
    komfortkasse = await startKomfortkasseSimulator({ apiKey: 'unused-komfortkasse-key' });
    stack = await bootStack({
      env: {
        KOMFORTKASSE_ENABLED: 'false',
        KLAR_ENABLED: 'true',
        KOMFORTKASSE_BASE_URL: komfortkasse.url,
        KOMFORTKASSE_API_KEY: '',
        KOMFORTKASSE_API_KEY_PARAMETER: '',
      },
    });
    cli = await cliFor(stack);
  });
  afterAll(async () => {
    cli?.cleanup();
    await stack?.stop();
    await komfortkasse?.close();
  });

  it("sends a cod order's cost to Klar and nothing to Komfortkasse", async () => {
    // prepare
    const order = buildVersaCommerceOrder({ id: 7201, code: 'SW-7201', payment_type: 'cod' });

    // act
    const response = await postWebhook(stack, { order });
    await waitFor(() => stack.simulators.klar!.requests.some((r) => r.path === KLAR_UPLOAD_PATH), 'the Klar upload');
    await drained(stack);

    // assess
    expect(response.status).toBe(202);
    const uploads = stack.simulators.klar!.requests.filter((r) => r.method === 'POST' && r.path === KLAR_UPLOAD_PATH);
    expect(uploads).toEqual([expect.objectContaining({ status: 201 })]);
    expect((uploads[0]!.body as { items: unknown[] }).items).toEqual([expect.objectContaining({ orderId: '7201', transactionCosts: 2 })]);
    expect(komfortkasse.requests).toEqual([]);
  });

  it('runs without a Komfortkasse API key and without a Komfortkasse simulator of its own', async () => {
    // act
    const apiKey = await secret('KOMFORTKASSE_API_KEY');

    // assess
    expect(apiKey).toBeUndefined();
    expect(stack.env.KOMFORTKASSE_API_KEY).toBeUndefined();
    expect(stack.simulators.komfortkasse).toBeUndefined();
  });

  it('status says Komfortkasse is off', async () => {
    // act
    const text = await cli.cli('status');
    const json = await cli.cli('status', '--json');

    // assess
    expect(text.stdout).toMatch(/^Komfortkasse:\s+off \(KOMFORTKASSE_ENABLED=false\)/m);
    expect(text.stdout).toMatch(/^Klar:\s+on\b/m);
    expect(statusJsonSchema.parse(JSON.parse(json.stdout)).sides).toMatchObject({ komfortkasse: false, klar: true });
  });

  it('history shows the Komfortkasse side as off and the Klar cost uploaded', async () => {
    // act
    const text = await cli.cli('history', 'SW-7201');
    const json = await cli.cli('history', 'SW-7201', '--json');

    // assess
    expect(text.stdout).toMatch(/^ {2}Komfortkasse\s+off\s+switched off \(KOMFORTKASSE_ENABLED=false\)$/m);
    const history = historyJsonSchema.parse(JSON.parse(json.stdout));
    expect(history.komfortkasse).toEqual({ state: 'off' });
    expect(history.klar).toMatchObject({ state: 'uploaded', transactionCosts: 2 });
    expect(history.attempts.map((a) => a.target)).toEqual(['klar']);
  });
});
