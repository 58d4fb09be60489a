import { readFileSync } from 'node:fs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SendMessageCommand, SQSClient, type SendMessageCommandInput } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetSecrets } from '../../lib/config/index.ts';
import { encodeQueueMessage } from '../../lib/queue/encode.ts';
import { MAX_BODY_BYTES, acceptWebhook, correlationIdOf, type IngestDeps, type WebhookReply } from '../../lib/webhook/accept.ts';
import { orderChangedMessageSchema, type OrderChangedMessage } from '../../lib/domain/messages.ts';
import type { ProbeMessage } from '../../lib/domain/probe.ts';
import { logger } from '../../lib/observability/logger.ts';
import { metrics } from '../../lib/observability/metrics.ts';
import {
  WEBHOOK_SECRET,
  buildApiGatewayV2Event,
  buildNotificationEnvelope,
  buildOrderWebhookBody,
  buildProbeBody,
  buildWebhookRequest,
  type EventOptions,
} from '../factories/webhooks.ts';

// The handler validates its environment at import: set it before functions/ingest.ts loads.
const env = vi.hoisted(() => {
  const values = {
    ORDERS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-orders.fifo',
    KLAR_COSTS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-klar-costs',
    // rotation: the previous secret is still accepted next to the current one
    WEBHOOK_SECRETS: 'previous-webhook-secret,unit-test-webhook-secret',
    AWS_REGION: 'eu-central-1',
  };
  Object.assign(process.env, values);
  return values;
});
const { handler } = await import('../../functions/ingest.ts');

const PREVIOUS_SECRET = 'previous-webhook-secret';
const NOW = new Date('2024-05-01T10:00:00.000Z');
const PII = ['support@versacommerce.de', 'Siebert', 'Eduard', 'Welver', 'Zwischen Den Hölzern', '59514', '+49 511 1659 800'];

// ---------------------------------------------------------------------------------------
// acceptWebhook with fake enqueue functions
// ---------------------------------------------------------------------------------------

/** One queue write per webhook: the only enqueue function is orders.fifo's. */
function fakeDeps(overrides: Partial<IngestDeps> = {}) {
  const orders: OrderChangedMessage[] = [];
  const probes: ProbeMessage[] = [];
  const deps: IngestDeps = {
    secrets: [WEBHOOK_SECRET],
    enqueueOrderChanged: async (message) => void orders.push(message),
    enqueueProbe: async (message) => void probes.push(message),
    now: () => NOW,
    ...overrides,
  };
  return { deps, orders, probes };
}

const signedAt = (at: Date, secret = WEBHOOK_SECRET): EventOptions => ({ auth: { kind: 'signature', secret, at } });

describe('acceptWebhook — accepted bodies', () => {
  it('normalises a seed order into exactly one order-changed message (the worker forwards the Klar cost)', async () => {
    // prepare
    const { deps, orders } = fakeDeps();
    const body = buildOrderWebhookBody();
    // act
    const reply = await acceptWebhook(buildWebhookRequest(body, signedAt(NOW)), deps);
    // assess
    expect(reply).toMatchObject({ statusCode: 202, outcome: 'accepted', orderId: 100, orderCode: '196-083-565' });
    expect(reply.body).toEqual({ accepted: true, orderId: 100, orderCode: '196-083-565' });
    expect(orders).toHaveLength(1);
    expect(orderChangedMessageSchema.parse(orders[0])).toEqual({
      kind: 'order-changed',
      orderId: 100,
      orderCode: '196-083-565',
      order: body.order,
      source: 'webhook',
      receivedAt: NOW.toISOString(),
      deliveryId: expect.stringMatching(/^body:[0-9a-f]{64}$/),
      correlationId: 'req-unit-1',
    });
    expect(orders[0]).not.toHaveProperty('kind', 'klar-cost');
  });

  it('accepts a notification envelope as "order 37578 changed" without trusting its body', async () => {
    const { deps, orders } = fakeDeps();
    const reply = await acceptWebhook(buildWebhookRequest(buildNotificationEnvelope(), signedAt(NOW)), deps);
    expect(reply.statusCode).toBe(202);
    expect(reply.body).toEqual({ accepted: true, orderId: 37578 });
    expect(orders).toEqual([expect.objectContaining({ kind: 'order-changed', orderId: 37578, source: 'notification' })]);
    expect(orders[0]).not.toHaveProperty('order');
    expect(orders[0]).not.toHaveProperty('orderCode');
  });

  it.each(['update order: 37578', 'cancel order:37578', '  Create Order : 37578 '])('reads the order id from subject %j', async (subject) => {
    const { deps } = fakeDeps();
    const reply = await acceptWebhook(buildWebhookRequest(buildNotificationEnvelope({ subject }), signedAt(NOW)), deps);
    expect(reply.body).toEqual({ accepted: true, orderId: 37578 });
  });

  it('takes numeric-string ids and numeric totals as the shop sends them', async () => {
    const { deps, orders } = fakeDeps();
    const reply = await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody({ id: '100', total: 15.94, items: undefined }), signedAt(NOW)), deps);
    expect(reply.statusCode).toBe(202);
    expect(orders[0]?.orderId).toBe(100);
    // the snapshot travels as sent: the worker parses it itself
    expect(orders[0]?.order).toMatchObject({ id: '100', total: 15.94 });
  });

  it('uses the sender delivery id when given, else a hash of the body (same body, same id)', async () => {
    const { deps, orders } = fakeDeps();
    const body = buildOrderWebhookBody();
    await acceptWebhook(buildWebhookRequest(body, signedAt(NOW)), deps);
    await acceptWebhook(buildWebhookRequest(body, signedAt(new Date(NOW.getTime() - 60_000))), deps);
    await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody({ status: 'closed' }), signedAt(NOW)), deps);
    await acceptWebhook(buildWebhookRequest(body, { ...signedAt(NOW), headers: { 'X-Orderbridge-Delivery': 'd-42' } }), deps);
    const ids = orders.map((m) => m.deliveryId);
    expect(ids[0]).toBe(ids[1]); // a re-signed retry of the same content
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids[3]).toBe('delivery:d-42');
  });

  it('takes X-Delivery-Id too, and X-Orderbridge-Delivery first, for an order body', async () => {
    // prepare
    const { deps, orders } = fakeDeps();
    const body = buildOrderWebhookBody();
    // act
    await acceptWebhook(buildWebhookRequest(body, { ...signedAt(NOW), headers: { 'X-Delivery-Id': 'd-7' } }), deps);
    await acceptWebhook(buildWebhookRequest(body, { ...signedAt(NOW), headers: { 'X-Delivery-Id': 'd-7', 'X-Orderbridge-Delivery': 'd-8' } }), deps);
    await acceptWebhook(buildWebhookRequest(body, { ...signedAt(NOW), headers: { 'X-Delivery-Id': 'not safe\n' } }), deps);
    // assess
    expect(orders.map((m) => m.deliveryId)).toEqual(['delivery:d-7', 'delivery:d-8', expect.stringMatching(/^body:[0-9a-f]{64}$/)]);
  });

  describe('notification dedup: the body may repeat while the order changes in between', () => {
    const envelope = buildNotificationEnvelope({ subject: 'update order: 37578' });
    const deliver = async (requests: ReturnType<typeof buildWebhookRequest>[]) => {
      const { deps, orders } = fakeDeps();
      for (const request of requests) expect((await acceptWebhook(request, deps)).statusCode).toBe(202);
      return orders.map((m) => m.deliveryId);
    };
    const withRequestId = (requestId: string | undefined, headers: Record<string, string> = {}) => {
      const request = buildWebhookRequest(envelope, { ...signedAt(NOW), headers });
      if (requestId === undefined) delete request.requestId;
      else request.requestId = requestId;
      return request;
    };

    it.each<[string, [string | undefined, Record<string, string>][], (ids: string[]) => void]>([
      ['two gateway requests get two ids (request:<id>)', [['gw-1', {}], ['gw-2', {}]], (ids) => expect(ids).toEqual(['request:gw-1', 'request:gw-2'])],
      ['no request id: a random id each time', [[undefined, {}], [undefined, {}]], (ids) => {
        expect(ids).toEqual([expect.stringMatching(/^random:[0-9a-f-]{36}$/), expect.stringMatching(/^random:[0-9a-f-]{36}$/)]);
        expect(ids[0]).not.toBe(ids[1]);
      }],
      ['an unsafe request id is not used', [['bad id\n', {}]], (ids) => expect(ids).toEqual([expect.stringMatching(/^random:/)])],
      ['the same sender delivery id dedups even across gateway requests', [['gw-1', { 'X-Orderbridge-Delivery': 'n-1' }], ['gw-2', { 'X-Orderbridge-Delivery': 'n-1' }]], (ids) => expect(ids).toEqual(['delivery:n-1', 'delivery:n-1'])],
      ['X-Delivery-Id counts as the sender delivery id', [['gw-1', { 'X-Delivery-Id': 'n-2' }]], (ids) => expect(ids).toEqual(['delivery:n-2'])],
    ])('%s', async (_, deliveries, assess) => {
      // act
      const ids = await deliver(deliveries.map(([requestId, headers]) => withRequestId(requestId, headers)));
      // assess
      assess(ids);
      for (const id of ids) expect(id).not.toMatch(/^body:/);
    });
  });

  it('keeps a correlation id the caller chose already, else derives it (header, request id, new)', async () => {
    // prepare
    const { deps, orders } = fakeDeps();
    const request = buildWebhookRequest(buildOrderWebhookBody(), { ...signedAt(NOW), headers: { 'x-correlation-id': 'from-header' } });
    request.correlationId = 'chosen-by-handler';
    // act
    const reply = await acceptWebhook(request, deps);
    // assess
    expect(reply.correlationId).toBe('chosen-by-handler');
    expect(orders[0]?.correlationId).toBe('chosen-by-handler');
    expect(correlationIdOf({ headers: { 'x-correlation-id': 'corr-9' }, requestId: 'req-9' })).toBe('corr-9');
    expect(correlationIdOf({ headers: { 'x-correlation-id': 'no spaces allowed' }, requestId: 'req-9' })).toBe('req-9');
    expect(correlationIdOf({ headers: {}, requestId: undefined })).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('takes the correlation id from X-Correlation-Id, else the request id, ignoring unsafe values', async () => {
    const { deps, orders } = fakeDeps();
    const a = await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody(), { ...signedAt(NOW), headers: { 'x-correlation-id': 'corr-1' } }), deps);
    const b = await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody(), { ...signedAt(NOW), headers: { 'x-correlation-id': 'bad value\n' } }), deps);
    expect(a.statusCode).toBe(202);
    expect(a.correlationId).toBe('corr-1');
    expect(orders[0]?.correlationId).toBe('corr-1');
    expect(b.correlationId).toBe('req-unit-1');
  });

  it('accepts a byte body signed over its bytes, a charset parameter and a UTF-8 BOM', async () => {
    const { deps } = fakeDeps();
    const bytes = Buffer.from(`\uFEFF${JSON.stringify(buildOrderWebhookBody({ note: 'Grüße 😊' }))}`, 'utf8');
    const reply = await acceptWebhook(buildWebhookRequest(new Uint8Array(bytes), { ...signedAt(NOW), contentType: 'Application/JSON; charset=utf-8' }), deps);
    expect(reply.statusCode).toBe(202);
  });

  it('answers 202 only once the message was stored', async () => {
    // prepare: orders.fifo answers only when released
    let release!: () => void;
    const stored = new Promise<void>((resolve) => (release = resolve));
    const calls: string[] = [];
    const { deps } = fakeDeps({
      enqueueOrderChanged: async () => {
        calls.push('orders');
        await stored;
      },
    });
    // act
    let settled: WebhookReply | undefined;
    const pending = acceptWebhook(buildWebhookRequest(buildOrderWebhookBody(), signedAt(NOW)), deps).then((r) => (settled = r));
    await new Promise((r) => setTimeout(r, 20));
    // assess
    expect(settled).toBeUndefined();
    expect(calls).toEqual(['orders']);
    release();
    await pending;
    expect(settled?.statusCode).toBe(202);
  });
});

describe('acceptWebhook — probes (orderbridge check)', () => {
  it('a signed probe becomes one probe message and no order message: 202 {"accepted":true,"probe":id}', async () => {
    // prepare
    const { deps, orders, probes } = fakeDeps();
    const body = buildProbeBody('3f0c9a2e-1b4d-4c8e-8f7a-6d5e4c3b2a10');
    // act
    const reply = await acceptWebhook(buildWebhookRequest(body, { ...signedAt(NOW), headers: { 'x-correlation-id': 'check-1' } }), deps);
    // assess
    expect(reply).toMatchObject({ statusCode: 202, outcome: 'probe', body: { accepted: true, probe: '3f0c9a2e-1b4d-4c8e-8f7a-6d5e4c3b2a10' } });
    expect(orders).toEqual([]);
    expect(probes).toEqual([{ kind: 'probe', probeId: '3f0c9a2e-1b4d-4c8e-8f7a-6d5e4c3b2a10', receivedAt: NOW.toISOString(), correlationId: 'check-1' }]);
  });

  it('an unauthenticated probe is 401 and enqueues nothing', async () => {
    const { deps, orders, probes } = fakeDeps();
    const reply = await acceptWebhook(buildWebhookRequest(buildProbeBody(), { auth: { kind: 'none' } }), deps);
    expect(reply.statusCode).toBe(401);
    expect([...orders, ...probes]).toEqual([]);
  });

  it('400 for a probe with a bad id or extra fields; an order that carries a "probe" key stays an order', async () => {
    // prepare
    const { deps, orders, probes } = fakeDeps();
    // act
    const badId = await acceptWebhook(buildWebhookRequest(buildProbeBody('x'), signedAt(NOW)), deps);
    const extra = await acceptWebhook(buildWebhookRequest({ probe: { id: '3f0c9a2e-1b4d', order: 1 } }, signedAt(NOW)), deps);
    const order = await acceptWebhook(buildWebhookRequest({ ...buildOrderWebhookBody(), ...buildProbeBody() }, signedAt(NOW)), deps);
    // assess
    expect(badId).toMatchObject({ statusCode: 400, body: { error: 'invalid probe', fields: [{ path: 'probe.id' }] } });
    expect(extra).toMatchObject({ statusCode: 400, body: { error: 'invalid probe' } });
    expect(order).toMatchObject({ statusCode: 202, outcome: 'accepted', orderId: 100 });
    expect(probes).toEqual([]);
    expect(orders).toHaveLength(1);
  });
});

describe('acceptWebhook — authentication (401, nothing enqueued, no detail)', () => {
  const body = buildOrderWebhookBody();
  const cases: [string, EventOptions, readonly string[]][] = [
    ['a valid signature', signedAt(NOW), [WEBHOOK_SECRET]],
    ['a signature 4 minutes old', signedAt(new Date(NOW.getTime() - 240_000)), [WEBHOOK_SECRET]],
    ['a signature 4 minutes ahead', signedAt(new Date(NOW.getTime() + 240_000)), [WEBHOOK_SECRET]],
    ['a signature with the rotated second secret', signedAt(NOW, PREVIOUS_SECRET), [PREVIOUS_SECRET, WEBHOOK_SECRET]],
    ['the token header', { auth: { kind: 'token-header' } }, [WEBHOOK_SECRET]],
    ['the ?token= query', { auth: { kind: 'token-query' } }, [WEBHOOK_SECRET]],
    ['the token of the rotated second secret', { auth: { kind: 'token-query', secret: PREVIOUS_SECRET } }, [PREVIOUS_SECRET, WEBHOOK_SECRET]],
  ];
  it.each(cases)('accepts %s', async (_, options, secrets) => {
    const { deps, orders } = fakeDeps({ secrets });
    const reply = await acceptWebhook(buildWebhookRequest(body, options), deps);
    expect(reply.statusCode).toBe(202);
    expect(orders).toHaveLength(1);
  });

  const rejected: [string, EventOptions][] = [
    ['a signature with the wrong secret', signedAt(NOW, 'wrong-secret')],
    ['a signature 6 minutes old', signedAt(new Date(NOW.getTime() - 360_000))],
    ['a signature 6 minutes ahead', signedAt(new Date(NOW.getTime() + 360_000))],
    ['a retired secret after rotation', signedAt(NOW, PREVIOUS_SECRET)],
    ['a wrong token header', { auth: { kind: 'token-header', secret: 'wrong-secret' } }],
    ['a wrong ?token=', { auth: { kind: 'token-query', secret: 'wrong-secret' } }],
    ['no credentials', { auth: { kind: 'none' } }],
    ['a signature header that is not one', { auth: { kind: 'none' }, headers: { 'x-orderbridge-signature': WEBHOOK_SECRET } }],
  ];
  it.each(rejected)('rejects %s', async (_, options) => {
    const { deps, orders } = fakeDeps();
    const reply = await acceptWebhook(buildWebhookRequest(body, options), deps);
    expect(reply.statusCode).toBe(401);
    expect(reply.body).toEqual({ error: 'unauthorized' });
    expect(orders).toEqual([]);
  });

  it('rejects a signature over another body (tampering)', async () => {
    const { deps, orders } = fakeDeps();
    const request = buildWebhookRequest(body, signedAt(NOW));
    request.rawBody = JSON.stringify(buildOrderWebhookBody({ total: '0.01' }));
    expect((await acceptWebhook(request, deps)).statusCode).toBe(401);
    expect(orders).toEqual([]);
  });
});

describe('acceptWebhook — errors (nothing enqueued on any 4xx)', () => {
  async function expectRejected(request: ReturnType<typeof buildWebhookRequest>, statusCode: number) {
    const { deps, orders } = fakeDeps();
    const reply = await acceptWebhook(request, deps);
    expect(reply.statusCode).toBe(statusCode);
    expect(orders).toEqual([]);
    const text = JSON.stringify(reply.body);
    expect(text).not.toContain(WEBHOOK_SECRET);
    expect(text).not.toMatch(/\n\s+at /); // no stack trace
    return reply;
  }

  it('404 for another path', async () => {
    const reply = await expectRejected(buildWebhookRequest(buildOrderWebhookBody(), { path: '/webhooks/shopify' }), 404);
    expect(reply.outcome).toBe('not-found');
  });

  it.each(['GET', 'PUT', 'DELETE'])('405 for %s, with Allow: POST', async (method) => {
    const reply = await expectRejected(buildWebhookRequest(buildOrderWebhookBody(), { method }), 405);
    expect(reply.headers).toEqual({ allow: 'POST' });
  });

  it('413 over 256 KiB, and a body of exactly 256 KiB is not 413', async () => {
    const filler = (bytes: number) => {
      const base = JSON.stringify(buildOrderWebhookBody({ note: '' }));
      return base.replace('"note":""', `"note":"${'x'.repeat(bytes - Buffer.byteLength(base))}"`);
    };
    expect(Buffer.byteLength(filler(MAX_BODY_BYTES + 1))).toBe(MAX_BODY_BYTES + 1);
    await expectRejected(buildWebhookRequest(filler(MAX_BODY_BYTES + 1), signedAt(NOW)), 413);
    const { deps } = fakeDeps();
    const exact = await acceptWebhook(buildWebhookRequest(filler(MAX_BODY_BYTES), signedAt(NOW)), deps);
    // exactly 256 KiB passes the body check; wrapped with its metadata it no longer fits one message
    expect(exact).toMatchObject({ statusCode: 413, body: { error: expect.stringContaining('queue message') } });
    const fits = await acceptWebhook(buildWebhookRequest(filler(MAX_BODY_BYTES - 4096), signedAt(NOW)), deps);
    expect(fits.statusCode).toBe(202);
  });

  it.each([['text/xml'], ['application/x-www-form-urlencoded'], ['text/plain'], [null]])('415 for content type %s', async (contentType) => {
    const reply = await expectRejected(buildWebhookRequest(buildOrderWebhookBody(), { ...signedAt(NOW), contentType }), 415);
    expect(reply.outcome).toBe('unsupported-media-type');
  });

  it('400 for malformed JSON, without quoting the body', async () => {
    const reply = await expectRejected(buildWebhookRequest('{"order": {"code": "x", "iban": DE0012345', signedAt(NOW)), 400);
    expect(reply.body).toEqual({ error: 'malformed JSON', fields: [{ path: '(body)', message: 'not valid JSON' }] });
  });

  it('400 for bytes that are not UTF-8', async () => {
    const reply = await expectRejected(buildWebhookRequest(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), signedAt(NOW)), 400);
    expect(reply.body).toMatchObject({ fields: [{ path: '(body)', message: 'not valid UTF-8' }] });
  });

  it('400 naming order.code when the order has no code', async () => {
    const reply = await expectRejected(buildWebhookRequest(buildOrderWebhookBody({ code: undefined }), signedAt(NOW)), 400);
    expect(reply.body).toMatchObject({ error: 'invalid order' });
    expect((reply.body.fields as { path: string }[]).map((f) => f.path)).toEqual(['order.code']);
  });

  it.each([
    ['an empty code', { code: '  ' }, 'order.code'],
    ['a numeric code', { code: 196083565 }, 'order.code'],
    ['a non-numeric id', { id: 'abc' }, 'order.id'],
    ['a negative id', { id: -1 }, 'order.id'],
    ['an id beyond 2^53', { id: '99999999999999999999' }, 'order.id'],
    ['a total that is not an amount', { total: '15,94 €' }, 'order.total'],
    ['a total that overflows', { total: '9'.repeat(400) }, 'order.total'],
    ['a boolean total', { total: true }, 'order.total'],
    ['no currency', { currency: undefined }, 'order.currency'],
    ['items that are not a list', { items: 'T-Shirt' }, 'order.items'],
  ])('400 naming the field for %s', async (_, overrides, path) => {
    const reply = await expectRejected(buildWebhookRequest(buildOrderWebhookBody(overrides), signedAt(NOW)), 400);
    expect((reply.body.fields as { path: string }[]).map((f) => f.path)).toContain(path);
  });

  it.each([
    ['an array', [buildOrderWebhookBody()], '(body)'],
    ['null', null, '(body)'],
    ['a string', '"order"', '(body)'],
    ['an object without order or subject', { id: 100 }, 'order'],
    ['an order that is not an object', { order: 'x' }, 'order'],
    ['a subject naming no order', buildNotificationEnvelope({ subject: 'create product: 5' }), 'subject'],
    ['an order id beyond 2^53 in the subject', buildNotificationEnvelope({ subject: 'update order: 99999999999999999999' }), 'subject'],
  ])('400 for %s', async (_, body, path) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const reply = await expectRejected(buildWebhookRequest(raw, signedAt(NOW)), 400);
    expect(reply.outcome).toBe('invalid');
    expect((reply.body.fields as { path: string }[]).map((f) => f.path)).toContain(path);
  });

  it('400 for nesting too deep to serialise, instead of a 503', async () => {
    const deep = `${'['.repeat(60_000)}${']'.repeat(60_000)}`;
    const raw = JSON.stringify(buildOrderWebhookBody({ note: null })).replace('"note":null', `"note":${deep}`);
    const reply = await expectRejected(buildWebhookRequest(raw, signedAt(NOW)), 400);
    expect(reply.body).toMatchObject({ fields: [{ path: '(body)', message: 'nested too deeply' }] });
  });

  it('checks in the order route → size → auth → content type → body', async () => {
    const huge = 'x'.repeat(MAX_BODY_BYTES + 1);
    const noAuth: EventOptions = { auth: { kind: 'none' } };
    await expectRejected(buildWebhookRequest(huge, { ...noAuth, method: 'GET', path: '/nope', contentType: 'text/plain' }), 404);
    await expectRejected(buildWebhookRequest(huge, { ...noAuth, method: 'GET', contentType: 'text/plain' }), 405);
    await expectRejected(buildWebhookRequest(huge, { ...noAuth, contentType: 'text/plain' }), 413);
    await expectRejected(buildWebhookRequest('not json', { ...noAuth, contentType: 'text/plain' }), 401);
    await expectRejected(buildWebhookRequest('not json', { ...signedAt(NOW), contentType: 'text/plain' }), 415);
    await expectRejected(buildWebhookRequest('not json', signedAt(NOW)), 400);
  });
});

describe('acceptWebhook — enqueue failures', () => {
  it('503 with Retry-After when orders.fifo refuses, without echoing the cause', async () => {
    // prepare
    const cause = new Error('QueueDoesNotExist: arn:aws:sqs:eu-central-1:123456789012:orders.fifo');
    const { deps, orders } = fakeDeps({ enqueueOrderChanged: () => Promise.reject(cause) });
    // act
    const reply = await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody(), signedAt(NOW)), deps);
    // assess
    expect(reply).toMatchObject({ statusCode: 503, outcome: 'enqueue-failed', headers: { 'retry-after': '5' }, orderId: 100, orderCode: '196-083-565' });
    expect(reply.body).toEqual({ error: 'temporarily unavailable, retry later' });
    expect(reply.cause).toBe(cause); // for the log line only
    expect(JSON.stringify(reply.body)).not.toContain('arn:aws');
    expect(orders).toEqual([]);
  });

  it('writes exactly once per webhook, for an order body and for a notification', async () => {
    // prepare
    const enqueueOrderChanged = vi.fn(async () => 'msg-1');
    const { deps } = fakeDeps({ enqueueOrderChanged });
    // act
    const order = await acceptWebhook(buildWebhookRequest(buildOrderWebhookBody(), signedAt(NOW)), deps);
    const notification = await acceptWebhook(buildWebhookRequest(buildNotificationEnvelope(), signedAt(NOW)), deps);
    // assess
    expect([order.statusCode, notification.statusCode]).toEqual([202, 202]);
    expect(enqueueOrderChanged).toHaveBeenCalledTimes(2);
  });
});

describe('encodeQueueMessage', () => {
  it('escapes what SQS refuses (U+FFFF, surrogates) and round-trips to the same value', () => {
    const value = { note: 'Grüße 😊 \uFFFF \u0001 \uD800 tail\\' };
    const encoded = encodeQueueMessage(value);
    expect(encoded).not.toMatch(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/);
    expect(encoded).toContain('\\ud83d\\ude0a');
    expect(JSON.parse(encoded)).toEqual(value);
  });
});

// ---------------------------------------------------------------------------------------
// The real handler (functions/ingest.ts) with an API Gateway v2 event and a mocked SQS
// ---------------------------------------------------------------------------------------

const sqs = mockClient(SQSClient);
const ssm = mockClient(SSMClient);
const context = { awsRequestId: 'lambda-req-1', functionName: 'ingest' } as Context;

async function invoke(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2 & { json: any }> {
  const result = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { ...result, json: JSON.parse(String(result.body)) };
}

function sentTo(queueUrl: string): SendMessageCommandInput[] {
  return sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input).filter((input) => input.QueueUrl === queueUrl);
}

describe('handler (functions/ingest.ts) with API Gateway v2 events', () => {
  let logs: { level: string; message: string; fields: Record<string, unknown> }[];

  beforeEach(() => {
    sqs.reset();
    ssm.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'msg-1' });
    forgetSecrets();
    logs = [];
    for (const level of ['info', 'warn', 'error'] as const) {
      vi.spyOn(logger, level).mockImplementation(((message: string, fields: Record<string, unknown>) => {
        logs.push({ level, message, fields });
      }) as never);
    }
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    forgetSecrets();
  });

  it('202 for a signed seed order: one message to orders.fifo, grouped by order id, with dedup id and correlation id; nothing to klar-costs', async () => {
    // prepare
    const event = buildApiGatewayV2Event(buildOrderWebhookBody(), { headers: { 'X-Correlation-Id': 'corr-seed' } });
    // act
    const result = await invoke(event);
    // assess
    expect(result.statusCode).toBe(202);
    expect(result.json).toEqual({ accepted: true, orderId: 100, orderCode: '196-083-565' });
    expect(result.headers).toMatchObject({ 'content-type': 'application/json', 'x-correlation-id': 'corr-seed' });
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, {
      QueueUrl: env.ORDERS_QUEUE_URL,
      MessageGroupId: '100',
      MessageDeduplicationId: expect.stringMatching(/^[0-9a-f]{64}$/),
      MessageAttributes: {
        correlationId: { DataType: 'String', StringValue: 'corr-seed' },
        orderCode: { DataType: 'String', StringValue: '196-083-565' },
        source: { DataType: 'String', StringValue: 'webhook' },
      },
    });
    const [orderInput] = sentTo(env.ORDERS_QUEUE_URL);
    const message = orderChangedMessageSchema.parse(JSON.parse(orderInput!.MessageBody!));
    expect(message).toMatchObject({ orderId: 100, orderCode: '196-083-565', source: 'webhook', correlationId: 'corr-seed' });
    expect(message.order).toEqual(buildOrderWebhookBody().order);
    // the order worker forwards the Klar cost itself
    expect(sentTo(env.KLAR_COSTS_QUEUE_URL)).toEqual([]);
  });

  it('202 for a probe: one message on orders.fifo in its own group, logged with its id', async () => {
    // prepare
    const event = buildApiGatewayV2Event(buildProbeBody('5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d'));
    // act
    const result = await invoke(event);
    // assess
    expect(result.statusCode).toBe(202);
    expect(result.json).toEqual({ accepted: true, probe: '5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d' });
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, {
      QueueUrl: env.ORDERS_QUEUE_URL,
      MessageGroupId: 'probe-5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
      MessageAttributes: expect.objectContaining({ source: { DataType: 'String', StringValue: 'probe' } }),
    });
    expect(JSON.parse(sentTo(env.ORDERS_QUEUE_URL)[0]!.MessageBody!)).toMatchObject({ kind: 'probe', probeId: '5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d' });
    expect(logs).toContainEqual({ level: 'info', message: 'webhook', fields: expect.objectContaining({ outcome: 'probe', status: 202, probeId: '5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d' }) });
  });

  it('202 for a notification envelope with the token in the query; the message carries no order', async () => {
    const result = await invoke(buildApiGatewayV2Event(buildNotificationEnvelope(), { auth: { kind: 'token-query' } }));
    expect(result.statusCode).toBe(202);
    expect(result.json).toEqual({ accepted: true, orderId: 37578 });
    const [orderInput] = sentTo(env.ORDERS_QUEUE_URL);
    expect(orderInput?.MessageGroupId).toBe('37578');
    expect(JSON.parse(orderInput!.MessageBody!)).toMatchObject({ orderId: 37578, source: 'notification' });
    expect(JSON.parse(orderInput!.MessageBody!)).not.toHaveProperty('order');
  });

  it('the same content delivered twice gets the same deduplication id (orders.fifo drops the second)', async () => {
    const body = buildOrderWebhookBody();
    await invoke(buildApiGatewayV2Event(body, { auth: { kind: 'signature', at: new Date(Date.now() - 30_000) } }));
    await invoke(buildApiGatewayV2Event(body, { auth: { kind: 'token-header' } }));
    const [first, second] = sentTo(env.ORDERS_QUEUE_URL);
    expect(second?.MessageDeduplicationId).toBe(first?.MessageDeduplicationId);
  });

  it('a sender reusing one delivery id for two orders loses neither: the deduplication id includes the order id', async () => {
    // prepare: the same X-Orderbridge-Delivery on a notification for each of two orders, and on a repeat of the first
    const delivery = { 'X-Orderbridge-Delivery': 'reused-1' };
    const notification = (orderId: number) => buildApiGatewayV2Event(buildNotificationEnvelope({ subject: `update order: ${orderId}` }), { auth: { kind: 'token-header' }, headers: delivery });
    // act
    await invoke(notification(37578));
    await invoke(notification(37579));
    await invoke(notification(37578));
    // assess: two orders, two ids; the repeat of the first keeps its id (a real duplicate)
    const ids = sentTo(env.ORDERS_QUEUE_URL).map((input) => input.MessageDeduplicationId);
    expect(ids).toHaveLength(3);
    expect(ids[1]).not.toBe(ids[0]);
    expect(ids[2]).toBe(ids[0]);
  });

  it.each<[string, EventOptions]>([
    ['a valid signature', {}],
    ['a signature with the rotated second secret', { auth: { kind: 'signature', secret: PREVIOUS_SECRET } }],
    ['the token header', { auth: { kind: 'token-header' } }],
    ['the token in the query', { auth: { kind: 'token-query' } }],
    ['a base64-encoded body signed over its bytes', { base64: true }],
  ])('202 with %s', async (_, options) => {
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), options));
    expect(result.statusCode).toBe(202);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    expect(sentTo(env.ORDERS_QUEUE_URL)).toHaveLength(1);
  });

  const rejections: [string, number, unknown, EventOptions][] = [
    ['a signature with the wrong secret', 401, buildOrderWebhookBody(), { auth: { kind: 'signature', secret: 'wrong-secret' } }],
    ['an old timestamp', 401, buildOrderWebhookBody(), { auth: { kind: 'signature', at: new Date(Date.now() - 10 * 60_000) } }],
    ['a future timestamp', 401, buildOrderWebhookBody(), { auth: { kind: 'signature', at: new Date(Date.now() + 10 * 60_000) } }],
    ['a wrong token header', 401, buildOrderWebhookBody(), { auth: { kind: 'token-header', secret: 'nope' } }],
    ['a wrong query token', 401, buildOrderWebhookBody(), { auth: { kind: 'token-query', secret: 'nope' } }],
    ['no credentials', 401, buildOrderWebhookBody(), { auth: { kind: 'none' } }],
    ['malformed JSON', 400, '{"order":', {}],
    ['an order without code', 400, buildOrderWebhookBody({ code: undefined }), {}],
    ['a body over 256 KiB', 413, buildOrderWebhookBody({ note: 'x'.repeat(MAX_BODY_BYTES) }), {}],
    ['an XML body', 415, '<order><id>100</id></order>', { contentType: 'application/xml' }],
    ['GET', 405, '', { method: 'GET' }],
    ['another path', 404, buildOrderWebhookBody(), { path: '/webhooks/other' }],
  ];
  it.each(rejections)('%s → %i, nothing sent to SQS, no secret or stack in the answer', async (_, status, body, options) => {
    const result = await invoke(buildApiGatewayV2Event(body, { ...options, query: { ...options.query, trace: 'x' } }));
    expect(result.statusCode).toBe(status);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(result.json.error).toEqual(expect.any(String));
    for (const secret of env.WEBHOOK_SECRETS.split(',')) expect(result.body).not.toContain(secret);
    expect(result.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
    if (status === 401) expect(result.json).toEqual({ error: 'unauthorized' });
    if (status === 400) expect(result.json.fields).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.any(String), message: expect.any(String) })]));
  });

  it('400 for an order without code names order.code', async () => {
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody({ code: undefined })));
    expect(result.json.fields.map((f: { path: string }) => f.path)).toEqual(['order.code']);
  });

  it('503 when SQS refuses the orders message', async () => {
    sqs.on(SendMessageCommand, { QueueUrl: env.ORDERS_QUEUE_URL }).rejects(Object.assign(new Error('The specified queue does not exist.'), { name: 'QueueDoesNotExist' }));
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody()));
    expect(result.statusCode).toBe(503);
    expect(result.headers).toMatchObject({ 'retry-after': '5' });
    expect(result.json).toEqual({ error: 'temporarily unavailable, retry later' });
    expect(logs).toContainEqual(expect.objectContaining({ level: 'error', fields: expect.objectContaining({ outcome: 'enqueue-failed', error: expect.stringContaining('QueueDoesNotExist') }) }));
  });

  it('202 even while klar-costs refuses messages: ingest never writes there', async () => {
    // prepare
    sqs.on(SendMessageCommand, { QueueUrl: env.KLAR_COSTS_QUEUE_URL }).rejects(new Error('ServiceUnavailable'));
    // act
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody()));
    // assess
    expect(result.statusCode).toBe(202);
    expect(sentTo(env.KLAR_COSTS_QUEUE_URL)).toEqual([]);
  });

  it('two identical notifications in two gateway requests get two deduplication ids; a retried request keeps its id', async () => {
    // prepare
    const withRequestId = (requestId: string) => {
      const event = buildApiGatewayV2Event(buildNotificationEnvelope({ subject: 'update order: 37578' }), { auth: { kind: 'token-header' } });
      event.requestContext.requestId = requestId;
      return event;
    };
    // act
    await invoke(withRequestId('gw-A='));
    await invoke(withRequestId('gw-B='));
    await invoke(withRequestId('gw-A='));
    // assess
    const ids = sentTo(env.ORDERS_QUEUE_URL).map((input) => input.MessageDeduplicationId);
    expect(ids).toHaveLength(3);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[2]).toBe(ids[0]);
    expect(sentTo(env.ORDERS_QUEUE_URL).map((input) => JSON.parse(input.MessageBody!).deliveryId)).toEqual(['request:gw-A=', 'request:gw-B=', 'request:gw-A=']);
  });

  it('leaves out an order-code attribute SQS would refuse, and escapes the body, instead of failing', async () => {
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody({ code: 'A\u0001B', note: 'Danke 😊\uFFFF' })));
    expect(result.statusCode).toBe(202);
    const [orderInput] = sentTo(env.ORDERS_QUEUE_URL);
    expect(orderInput?.MessageAttributes).not.toHaveProperty('orderCode');
    expect(orderInput?.MessageBody).not.toMatch(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/);
    expect(JSON.parse(orderInput!.MessageBody!).order.note).toBe('Danke 😊\uFFFF');
  });

  it('logs one structured line per request: order code, correlation id, outcome, latency — no PII, no secret', async () => {
    await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { headers: { 'x-correlation-id': 'corr-log' } }));
    await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { auth: { kind: 'token-query', secret: 'leaked-guess' } }));
    expect(logs).toHaveLength(2);
    expect(logs[0]).toEqual({
      level: 'info',
      message: 'webhook',
      fields: { outcome: 'accepted', status: 202, orderId: 100, orderCode: '196-083-565', correlationId: 'corr-log', latencyMs: expect.any(Number) },
    });
    expect(logs[1]).toMatchObject({ level: 'warn', fields: { outcome: 'unauthorized', status: 401 } });
    const text = JSON.stringify(logs);
    for (const pii of [...PII, WEBHOOK_SECRET, 'leaked-guess']) expect(text).not.toContain(pii);
  });

  it('counts a metric per outcome', async () => {
    // prepare: Powertools is switched off in tests (POWERTOOLS_METRICS_DISABLED); capture what
    // each invocation adds to its one EMF blob (and that it adds nothing else)
    const outcomes: string[] = [];
    const metricNames: string[] = [];
    let dimension: string | undefined;
    vi.spyOn(metrics, 'addDimension').mockImplementation((name: string, value: string) => {
      if (name === 'outcome') dimension = value;
      return metrics;
    });
    vi.spyOn(metrics, 'addMetric').mockImplementation((name: string) => {
      metricNames.push(name);
      if (name === 'webhookOutcome') outcomes.push(dimension!);
      return metrics;
    });
    const singles = vi.spyOn(metrics, 'singleMetric');
    // act
    await invoke(buildApiGatewayV2Event(buildOrderWebhookBody()));
    await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { auth: { kind: 'none' } }));
    await invoke(buildApiGatewayV2Event('{', {}));
    await invoke(buildApiGatewayV2Event('x', { contentType: 'text/plain' }));
    vi.stubEnv('WEBHOOK_SECRETS', '');
    forgetSecrets(); // a plain variable is cached for the container's life
    await invoke(buildApiGatewayV2Event(buildOrderWebhookBody()));
    // assess
    expect(outcomes).toEqual(['accepted', 'unauthorized', 'malformed-json', 'unsupported-media-type', 'error']);
    expect(metricNames).toEqual(Array.from({ length: 5 }, () => 'webhookOutcome'));
    expect(singles).not.toHaveBeenCalled(); // no second EMF blob per webhook
  });

  it('reads the secrets from SSM when WEBHOOK_SECRETS is not set', async () => {
    vi.stubEnv('WEBHOOK_SECRETS', '');
    vi.stubEnv('WEBHOOK_SECRETS_PARAMETER', '/orderbridge/test/webhook-secrets');
    ssm.on(GetParameterCommand, { Name: '/orderbridge/test/webhook-secrets', WithDecryption: true }).resolves({ Parameter: { Value: 'ssm-secret-1, ssm-secret-2' } });
    const ok = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { auth: { kind: 'signature', secret: 'ssm-secret-2' } }));
    const stale = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { auth: { kind: 'signature' } }));
    expect(ok.statusCode).toBe(202);
    expect(stale.statusCode).toBe(401);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 1); // once per cold start
  });

  it('500 without details when the secrets cannot be read, and nothing is enqueued', async () => {
    vi.stubEnv('WEBHOOK_SECRETS', '');
    vi.stubEnv('WEBHOOK_SECRETS_PARAMETER', '/orderbridge/test/webhook-secrets');
    ssm.on(GetParameterCommand).rejects(new Error('AccessDenied for /orderbridge/test/webhook-secrets'));
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody(), { headers: { 'X-Correlation-Id': 'corr-500' } }));
    expect(result.statusCode).toBe(500);
    expect(result.json).toEqual({ error: 'internal error' });
    expect(result.headers).toMatchObject({ 'content-type': 'application/json', 'x-correlation-id': 'corr-500' });
    expect(result.body).not.toContain('AccessDenied');
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(logs).toContainEqual(expect.objectContaining({ level: 'error', fields: expect.objectContaining({ outcome: 'error', correlationId: 'corr-500' }) }));
  });

  it('500 (so the shop retries) rather than 401 for everything when no secret is configured', async () => {
    vi.stubEnv('WEBHOOK_SECRETS', '');
    const result = await invoke(buildApiGatewayV2Event(buildOrderWebhookBody()));
    expect(result.statusCode).toBe(500);
    // no X-Correlation-Id sent: the gateway request id names the request in the logs
    expect(result.headers).toMatchObject({ 'x-correlation-id': 'Req-Id-1=' });
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

describe('events/ samples (API Gateway v2, ?token= form for the console)', () => {
  beforeEach(() => {
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'msg-1' });
    forgetSecrets();
    for (const level of ['info', 'warn', 'error'] as const) vi.spyOn(logger, level).mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  const load = (name: string): APIGatewayProxyEventV2 => {
    const text = readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8');
    expect(text).toContain('REPLACE_WITH_WEBHOOK_SECRET');
    return JSON.parse(text.replaceAll('REPLACE_WITH_WEBHOOK_SECRET', WEBHOOK_SECRET)) as APIGatewayProxyEventV2;
  };

  it('ingest-order.json carries the seed order as valid JSON and is accepted', async () => {
    const event = load('ingest-order.json');
    expect(JSON.parse(event.body!)).toMatchObject({ order: { id: 100, code: '196-083-565', payment_type: 'cod', total: '15.94', currency: '€' } });
    const result = await invoke(event);
    expect(result.statusCode).toBe(202);
    expect(result.json).toEqual({ accepted: true, orderId: 100, orderCode: '196-083-565' });
  });

  it('ingest-notification.json is a notification envelope and is accepted', async () => {
    const event = load('ingest-notification.json');
    expect(JSON.parse(event.body!)).toMatchObject({ subject: 'create order: 37578', shop_id: 953, subscription_id: expect.anything(), domain: expect.any(String), body: expect.any(String) });
    const result = await invoke(event);
    expect(result.statusCode).toBe(202);
    expect(result.json).toEqual({ accepted: true, orderId: 37578 });
  });

  it('the placeholder itself is not a valid secret', async () => {
    const event = JSON.parse(readFileSync(new URL('../../events/ingest-order.json', import.meta.url), 'utf8')) as APIGatewayProxyEventV2;
    expect((await invoke(event)).statusCode).toBe(401);
  });
});
