import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetSecrets } from '../../lib/config/index.ts';
import { MAX_BODY_BYTES } from '../../lib/webhook/accept.ts';
import { orderChangedMessageSchema } from '../../lib/domain/messages.ts';
import { logger } from '../../lib/observability/logger.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { WEBHOOK_SECRET, buildApiGatewayV2Event, buildNotificationEnvelope, type EventOptions } from '../factories/webhooks.ts';

// Random and mutated bodies with valid auth, through the real handler: it never throws,
// never answers 5xx for bad input, and stores nothing unless it answers 202.
const env = vi.hoisted(() => {
  const values = {
    ORDERS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-fuzz-orders.fifo',
    KLAR_COSTS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-fuzz-klar-costs',
    WEBHOOK_SECRETS: 'unit-test-webhook-secret',
    AWS_REGION: 'eu-central-1',
  };
  Object.assign(process.env, values);
  return values;
});
const { handler } = await import('../../functions/ingest.ts');

const sqs = mockClient(SQSClient);
const context = { awsRequestId: 'fuzz', functionName: 'ingest' } as Context;
const SQS_UNSAFE = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/;
const seedOrder = buildVersaCommerceOrder();
const seedText = JSON.stringify({ order: seedOrder });

beforeAll(() => {
  forgetSecrets();
  for (const level of ['info', 'warn', 'error'] as const) vi.spyOn(logger, level).mockImplementation(() => undefined);
});
afterAll(() => {
  vi.restoreAllMocks();
  sqs.restore();
});
beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'fuzz-msg' });
});

/** Invokes the handler and checks every invariant; returns the status for coverage checks. */
async function checkInvariants(body: string | Uint8Array, options: EventOptions = {}): Promise<number> {
  sqs.resetHistory();
  const event: APIGatewayProxyEventV2 = buildApiGatewayV2Event(body, options);
  const result = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  const status = Number(result.statusCode);
  const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
  expect(status, `body ${show(body)} → ${result.body}`).toBeLessThan(500);
  expect([202, 400, 413, 415]).toContain(status);
  expect(() => JSON.parse(String(result.body))).not.toThrow();
  expect(result.body).not.toContain(WEBHOOK_SECRET);
  if (status !== 202) {
    expect(sent).toEqual([]);
    return status;
  }
  // Accepted: exactly one message, to orders.fifo (one durable write per webhook), valid against its schema.
  expect(sent.map((input) => input.QueueUrl)).toEqual([env.ORDERS_QUEUE_URL]);
  for (const input of sent) {
    expect(input.MessageBody).not.toMatch(SQS_UNSAFE);
    for (const attribute of Object.values(input.MessageAttributes ?? {})) expect(attribute.StringValue).not.toMatch(SQS_UNSAFE);
  }
  const orderInput = sent.find((input) => input.QueueUrl === env.ORDERS_QUEUE_URL)!;
  const message = orderChangedMessageSchema.parse(JSON.parse(orderInput.MessageBody!));
  expect(orderInput.MessageGroupId).toBe(String(message.orderId));
  expect(orderInput.MessageGroupId).toMatch(/^\d{1,16}$/);
  expect(orderInput.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
  expect(JSON.parse(String(result.body))).toMatchObject({ accepted: true, orderId: message.orderId });
  return status;
}

function show(body: string | Uint8Array): string {
  const text = typeof body === 'string' ? body : `<${body.length} bytes>`;
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text;
}

/** Values of the wrong (or borderline) type for id, code and total. */
const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    -1,
    1.5,
    1e308,
    0,
    '100',
    ' 100 ',
    '１００',
    '0x10',
    '1e3',
    '-0',
    '99999999999999999999',
    '9'.repeat(400),
    'NaN',
    'Infinity',
    '',
    ' ',
    '15,94',
    '-15.94',
    null,
    true,
    [],
    {},
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

describe('ingest handler: totals too big for a number', () => {
  it.each([
    ['a 400-digit string', JSON.stringify({ order: { ...seedOrder, total: '9'.repeat(400) } })],
    ['a 400-digit JSON number (parses to Infinity)', JSON.stringify({ order: { ...seedOrder, total: 0 } }).replace('"total":0', `"total":${'9'.repeat(400)}`)],
    ['1e400', JSON.stringify({ order: { ...seedOrder, total: 0 } }).replace('"total":0', '"total":1e400')],
  ])('%s is a 400 naming order.total, never a 5xx', async (_, body) => {
    // act
    const status = await checkInvariants(body);
    const result = (await handler(buildApiGatewayV2Event(body), context)) as APIGatewayProxyStructuredResultV2;
    // assess
    expect(status).toBe(400);
    const answer = JSON.parse(String(result.body)) as { error: string; fields: { path: string }[] };
    expect(answer.error).toBe('invalid order');
    expect(answer.fields.map((field) => field.path)).toContain('order.total');
  });
});

describe('ingest handler under random input (valid auth)', { timeout: 60_000 }, () => {
  it('random JSON values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
        await checkInvariants(JSON.stringify(value) ?? 'null');
      }),
      { numRuns: 600 },
    );
  });

  it('random objects wrapped as {"order": …} and as notification envelopes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map((order) => ({ order })),
          fc.record({ subject: fc.oneof(fc.string({ unit: 'binary' }), fc.nat().map((n) => `update order: ${n}`), fc.bigInt({ min: 0n, max: 10n ** 30n }).map((n) => `create order: ${n}`)), body: fc.jsonValue({ maxDepth: 2 }) }).map((envelope) => buildNotificationEnvelope(envelope)),
        ),
        async (body) => {
          await checkInvariants(JSON.stringify(body));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('the seed order with fields removed or replaced by random values', async () => {
    const keys = [...Object.keys(seedOrder), 'id', 'code', 'total', 'currency', 'payment_type', 'created_at', 'status'];
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...keys), fc.option(oddValue, { nil: undefined })), { minLength: 1, maxLength: 6 }), async (mutations) => {
        const order: Record<string, unknown> = { ...seedOrder };
        for (const [key, value] of mutations) {
          if (value === undefined) delete order[key];
          else order[key] = value;
        }
        statuses.add(await checkInvariants(JSON.stringify({ order })));
      }),
      { numRuns: 800 },
    );
    expect(statuses).toEqual(new Set([202, 400])); // the generator reaches both sides
  });

  it('wrong types for id, code and total', async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ id: oddValue, code: oddValue, total: oddValue }, { requiredKeys: [] }), async (fields) => {
        await checkInvariants(JSON.stringify({ order: { ...seedOrder, id: undefined, code: undefined, total: undefined, ...fields } }));
      }),
      { numRuns: 600 },
    );
  });

  it('the seed order text with random characters deleted, inserted or replaced', async () => {
    const edit = fc.tuple(fc.nat({ max: seedText.length }), fc.nat({ max: 3 }), fc.string({ unit: 'binary', maxLength: 3 }));
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        let text = seedText;
        for (const [at, removed, inserted] of edits) text = text.slice(0, at) + inserted + text.slice(at + removed);
        await checkInvariants(text);
      }),
      { numRuns: 600 },
    );
  });

  it('random bytes (base64-encoded by API Gateway), with the token as auth', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom('application/json', 'application/octet-stream'), async (bytes, contentType) => {
        await checkInvariants(bytes, { auth: { kind: 'token-header' }, contentType, base64: true });
      }),
      { numRuns: 300 },
    );
  });

  it('huge strings in the body, in a field, and as the order code', async () => {
    const size = fc.integer({ min: MAX_BODY_BYTES - 8192, max: MAX_BODY_BYTES + 4096 });
    await fc.assert(
      fc.asyncProperty(size, fc.constantFrom('raw', 'note', 'code', 'nested', 'unicode'), async (n, where) => {
        const body =
          where === 'raw'
            ? 'x'.repeat(n)
            : where === 'nested'
              ? JSON.stringify({ order: { ...seedOrder, note: null } }).replace('"note":null', `"note":${'['.repeat(n >> 2)}${']'.repeat(n >> 2)}`)
              : where === 'unicode'
                ? JSON.stringify({ order: { ...seedOrder, note: '😊\uFFFF'.repeat(Math.floor(n / 7)) } })
                : JSON.stringify({ order: { ...seedOrder, [where]: 'x'.repeat(n) } });
        await checkInvariants(body);
      }),
      { numRuns: 60 },
    );
  });
});
