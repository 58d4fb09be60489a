import type { Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reloadConfig } from '../../lib/config/index.ts';
import { orderChangedMessageSchema } from '../../lib/domain/messages.ts';
import { signatureHeader } from '../../lib/webhook/auth.ts';
import type { Handler } from '../../local/runtime.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildOrderWebhookBody } from '../factories/webhooks.ts';
import { TEST_SECRET, bootStack, peekMessages, postWebhook, queueDepth, waitFor } from './harness.ts';


// The webhook front door through the local stack: real HTTP port, real API Gateway v2
// events, the real ingest handler and the SQS emulator. The workers are stopped so the
// queues can be counted.
describe('ingest through the local stack (HTTP → handler → SQS emulator)', () => {
  let stack: RunningStack;
  const depths = async () => ({ orders: await queueDepth(stack, stack.queues.orders.url), klar: await queueDepth(stack, stack.queues.klarCosts.url) });
  /** Every message on a queue (peeks hide them for 1 s, so collect until none is left visible). */
  const allMessages = async (queueUrl: string, expected: number): Promise<Message[]> => {
    const seen = new Map<string, Message>();
    await waitFor(async () => {
      for (const message of await peekMessages(stack, queueUrl)) seen.set(message.MessageId!, message);
      return seen.size >= expected;
    }, `${expected} message(s) on ${queueUrl}`, 10_000);
    return [...seen.values()];
  };

  /** Every invocation of the ingest function (the real handler, wrapped to be counted). */
  const ingestInvocations: string[] = [];
  const countedIngest: Handler = async (event, context) => {
    ingestInvocations.push(`${event.requestContext.http.method} ${event.rawPath}`);
    // imported on first use, after the stack has set the environment (as Lambda's cold start)
    const { handler } = await import('../../functions/ingest.ts');
    return handler(event, context);
  };

  beforeAll(async () => {
    stack = await bootStack({ handlers: { ingest: countedIngest } });
    await stack.stopWorkers();
  });
  afterAll(async () => stack?.stop());

  it('a signed seed order lands as exactly one orders.fifo message (group "100", correlation id), nothing on klar-costs', async () => {
    // prepare
    const body = buildOrderWebhookBody();
    // act
    const response = await postWebhook(stack, body, { headers: { 'x-correlation-id': 'it-corr-seed' } });
    // assess: one durable write per webhook; the order worker forwards the Klar cost later
    expect(response).toEqual({ status: 202, body: { accepted: true, orderId: 100, orderCode: '196-083-565' } });
    expect(await depths()).toEqual({ orders: 1, klar: 0 });
    const [order] = await allMessages(stack.queues.orders.url, 1);
    expect(order?.Attributes?.MessageGroupId).toBe('100');
    expect(order?.Attributes?.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
    expect(order?.MessageAttributes?.correlationId?.StringValue).toBe('it-corr-seed');
    expect(order?.MessageAttributes?.orderCode?.StringValue).toBe('196-083-565');
    const message = orderChangedMessageSchema.parse(JSON.parse(order!.Body!));
    expect(message).toMatchObject({ kind: 'order-changed', orderId: 100, orderCode: '196-083-565', source: 'webhook', correlationId: 'it-corr-seed' });
    expect(message.order).toEqual(body.order);
  });

  it('two identical notification bodies are two messages (only a delivery id deduplicates them)', async () => {
    // prepare
    const before = await depths();
    const notification = { subject: 'update order: 4711', body: '<order/>' };
    // act
    const first = await postWebhook(stack, notification);
    const second = await postWebhook(stack, notification);
    const redelivered = await postWebhook(stack, notification, { headers: { 'x-orderbridge-delivery': 'vc-1' } });
    const again = await postWebhook(stack, notification, { headers: { 'x-orderbridge-delivery': 'vc-1' } });
    // assess
    expect([first, second, redelivered, again].map((r) => r.status)).toEqual([202, 202, 202, 202]);
    expect((await depths()).orders).toBe(before.orders + 3);
    expect((await depths()).klar).toBe(0);
  });

  it('a duplicate delivery is answered 202 but makes no second orders message', async () => {
    // prepare: the same content again, signed anew and with the token
    const before = await depths();
    // act
    const again = await postWebhook(stack, buildOrderWebhookBody());
    const viaToken = await postWebhook(stack, buildOrderWebhookBody(), { auth: 'token' });
    // assess
    expect(again.status).toBe(202);
    expect(viaToken.status).toBe(202);
    expect((await depths()).orders).toBe(before.orders);
  });

  it('a changed order is a new message in the same group', async () => {
    const before = await depths();
    const response = await postWebhook(stack, buildOrderWebhookBody({ status: 'closed' }), { auth: 'query' });
    expect(response.status).toBe(202);
    expect((await depths()).orders).toBe(before.orders + 1);
  });

  it('answers every 4xx without storing anything', async () => {
    // prepare
    const before = await depths();
    const raw = JSON.stringify(buildOrderWebhookBody({ id: 200, code: '200-000-000' }));
    const send = (init: { method?: string; path?: string; headers?: Record<string, string>; body?: string }) =>
      fetch(`${stack.url}${init.path ?? '/webhooks/versacommerce'}`, {
        method: init.method ?? 'POST',
        headers: { 'content-type': 'application/json', ...init.headers },
        body: init.body,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));
    // act
    const unsigned = await postWebhook(stack, raw, { auth: 'none' });
    const wrongSecret = await postWebhook(stack, raw, { secret: 'not-the-secret' });
    const stale = await send({ body: raw, headers: { 'x-orderbridge-signature': signatureHeader(TEST_SECRET, raw, new Date(Date.now() - 6 * 60_000)) } });
    const noCode = await postWebhook(stack, buildOrderWebhookBody({ code: undefined }));
    const malformed = await postWebhook(stack, '{"order":');
    const xml = await postWebhook(stack, '<order/>', { headers: { 'content-type': 'application/xml' } });
    const huge = await postWebhook(stack, buildOrderWebhookBody({ note: 'x'.repeat(300 * 1024) }));
    // assess
    expect([unsigned, wrongSecret, stale].map((r) => r.status)).toEqual([401, 401, 401]);
    expect(unsigned.body).toEqual({ error: 'unauthorized' });
    expect(noCode.status).toBe(400);
    expect(noCode.body.fields.map((f: { path: string }) => f.path)).toEqual(['order.code']);
    expect(malformed.status).toBe(400);
    expect(xml.status).toBe(415);
    expect(huge.status).toBe(413);
    expect(await depths()).toEqual(before);
  });

  it('other methods and paths get API Gateway\'s own 404 without invoking the function', async () => {
    // prepare: a valid, signed order, so only the route can be the reason for the 404
    const before = await depths();
    const invocationsBefore = ingestInvocations.length;
    const raw = JSON.stringify(buildOrderWebhookBody({ id: 201, code: '201-000-000' }));
    const headers = { 'content-type': 'application/json', 'x-orderbridge-signature': signatureHeader(TEST_SECRET, raw) };
    const requests = [
      { method: 'GET', path: '/webhooks/versacommerce' },
      { method: 'PUT', path: '/webhooks/versacommerce', body: raw },
      { method: 'DELETE', path: '/webhooks/versacommerce' },
      { method: 'PATCH', path: '/webhooks/versacommerce', body: raw },
      { method: 'POST', path: '/webhooks/elsewhere', body: raw },
      { method: 'POST', path: `/webhooks/versacommerce/extra?token=${TEST_SECRET}`, body: raw },
      { method: 'POST', path: '/', body: raw },
      { method: 'GET', path: '/favicon.ico' },
    ];
    // act
    const answers = [];
    for (const { method, path, body } of requests) {
      const response = await fetch(`${stack.url}${path}`, { method, headers, body });
      answers.push({ request: `${method} ${path}`, status: response.status, contentType: response.headers.get('content-type'), body: await response.json() });
    }
    // assess: exactly what API Gateway answers for a request no route matches
    for (const answer of answers) {
      expect(answer, answer.request).toEqual({ request: answer.request, status: 404, contentType: 'application/json', body: { message: 'Not Found' } });
    }
    expect(ingestInvocations.length).toBe(invocationsBefore);
    expect(await depths()).toEqual(before);
    // the declared route still reaches the function (with the same signed body: accepted)
    expect((await postWebhook(stack, raw)).status).toBe(202);
    expect(ingestInvocations.slice(invocationsBefore)).toEqual(['POST /webhooks/versacommerce']);
  });

  it('SQS refusing the orders message (missing queue) → 503 and no order message stored', async () => {
    // prepare: point the handler at a queue that does not exist
    const before = await depths();
    const realUrl = process.env.ORDERS_QUEUE_URL;
    process.env.ORDERS_QUEUE_URL = stack.queues.orders.url.replace(/[^/]+$/, 'orderbridge-missing.fifo');
    reloadConfig();
    try {
      // act
      const response = await postWebhook(stack, buildOrderWebhookBody({ id: 300, code: '300-000-000' }));
      // assess
      expect(response).toEqual({ status: 503, body: { error: 'temporarily unavailable, retry later' } });
    } finally {
      process.env.ORDERS_QUEUE_URL = realUrl;
      reloadConfig();
    }
    // the cost message may have gone through: harmless, the Klar worker uploads only changes
    expect((await depths()).orders).toBe(before.orders);
    // and once the queue is back, the shop's retry is accepted
    expect((await postWebhook(stack, buildOrderWebhookBody({ id: 300, code: '300-000-000' }))).status).toBe(202);
  });

  it('the SQS emulator down → 503, never 202', async () => {
    // prepare
    await stack.sqs.stop();
    // act
    const response = await postWebhook(stack, buildOrderWebhookBody({ id: 400, code: '400-000-000' }));
    // assess
    expect(response.status).toBe(503);
    expect(response.body).toEqual({ error: 'temporarily unavailable, retry later' });
  });
});
