import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderEnvelopeSchema, notificationEnvelopeSchema } from '../../lib/domain/versacommerce.ts';
import { signatureHeader } from '../../lib/webhook/auth.ts';
import type { RunningStack } from '../../local/stack.ts';
import { allQueuesEmpty, bootStack, faultOrder, komfortkasse, mapLimit, TEST_SECRET } from './helpers.ts';

/*
 * 10,000 bodies nobody should accept, posted at the HTTP port of the local stack: random
 * JSON, orders with a required field broken, malformed notification envelopes, raw bytes,
 * deep nesting, valid orders with bad credentials or content types, and oversized bodies.
 * Every answer must be the 4xx the contract names for it — no 5xx, no 202 — and no queue
 * may hold a single message afterwards (the workers are off, so nothing hides a message).
 */
const SEED = 20_260_115;
type Case = { kind: string; body: Buffer; headers: Record<string, string>; expected: number[] };

const json = { 'content-type': 'application/json' };
const signed = (body: Buffer, extra: Record<string, string> = json) => ({ ...extra, 'x-orderbridge-signature': signatureHeader(TEST_SECRET, body) });
const isAcceptable = (value: unknown) =>
  typeof value === 'object' && value !== null && (orderEnvelopeSchema.safeParse(value).success || notificationEnvelopeSchema.safeParse(value).success);

const junk = fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.integer(), fc.string(), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }));
/** A value each required field refuses. */
const broken: Record<string, fc.Arbitrary<unknown>> = {
  id: fc.oneof(fc.constant(-1), fc.constant(1.5), fc.constant('12a'), fc.constant(null), fc.constant(''), fc.boolean(), fc.object()),
  code: fc.oneof(fc.constant(''), fc.constant('   '), fc.constant(null), fc.integer(), fc.array(fc.string())),
  total: fc.oneof(fc.constant('abc'), fc.constant('1,50'), fc.constant(''), fc.constant(null), fc.constant(Number.NaN), fc.object()),
  currency: fc.oneof(fc.constant(''), fc.constant(null), fc.integer(), fc.constant(['EUR'])),
  created_at: fc.oneof(fc.constant(''), fc.constant(null), fc.integer(), fc.boolean()),
  billing_address: fc.oneof(fc.string(), fc.integer(), fc.constant([1, 2])),
  items: fc.oneof(fc.string(), fc.integer(), fc.constant({ a: 1 }), fc.constant(['x'])),
};

function generate(): Case[] {
  const cases: Case[] = [];
  const add = (kind: string, bodies: unknown[], make: (body: Buffer) => Omit<Case, 'kind' | 'body'>) => {
    for (const value of bodies) {
      const body = Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value) ?? 'null');
      cases.push({ kind, body, ...make(body) });
    }
  };
  const sample = <T>(arb: fc.Arbitrary<T>, n: number) => fc.sample(arb, { numRuns: n, seed: SEED + cases.length });

  add('random JSON', sample(fc.jsonValue().filter((v) => !isAcceptable(v)), 3300), (body) => ({ headers: signed(body), expected: [400] }));

  const mutant = fc
    .tuple(fc.subarray(Object.keys(broken), { minLength: 1, maxLength: 3 }), fc.dictionary(fc.string(), junk, { maxKeys: 3 }), fc.boolean())
    .chain(([fields, extra, drop]) =>
      fc.tuple(...fields.map((field) => broken[field]!)).map((values) => {
        const order: Record<string, unknown> = { ...extra, ...faultOrder(1_000_001) };
        fields.forEach((field, i) => {
          if (drop && i === 0) delete order[field];
          else order[field] = values[i];
        });
        return { order };
      }),
    );
  add('broken order', sample(mutant.filter((v) => !isAcceptable(v)), 3000), (body) => ({ headers: signed(body), expected: [400] }));

  const envelope = fc.record({
    subject: fc.oneof(fc.string(), fc.constant('create order: '), fc.constant('order: 12'), fc.constant('create order: -4'), fc.integer(), fc.constant(null)),
    body: junk,
    shop_id: junk,
  });
  add('broken envelope', sample(envelope.filter((v) => !isAcceptable(v)), 1000), (body) => ({ headers: signed(body), expected: [400] }));

  // Bytes that are not UTF-8 cannot survive API Gateway's text body unchanged, so their
  // signature may fail to verify: 401 is as right as 400 for them.
  add('raw bytes', sample(fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)), 700), (body) => ({
    headers: signed(body),
    expected: isUtf8(body) ? [400] : [400, 401],
  }));
  add('text', sample(fc.string({ unit: 'binary', maxLength: 512 }).filter((s) => !isAcceptable(safeParse(s))), 300), (body) => ({ headers: signed(body), expected: [400] }));

  // Valid orders that must still be refused: bad credentials, wrong content type.
  const valid = (i: number) => ({ order: faultOrder(2_000_000 + i) });
  const badAuth: ((body: Buffer) => Record<string, string>)[] = [
    () => json,
    (body) => ({ ...json, 'x-orderbridge-signature': signatureHeader('wrong-secret', body) }),
    (body) => ({ ...json, 'x-orderbridge-signature': signatureHeader(TEST_SECRET, body, new Date(Date.now() - 600_000)) }),
    (body) => ({ ...json, 'x-orderbridge-signature': signatureHeader(TEST_SECRET, Buffer.concat([body, Buffer.from(' ')])) }),
    () => ({ ...json, 'x-orderbridge-signature': 't=abc,v1=zz' }),
    () => ({ ...json, 'x-orderbridge-token': `${TEST_SECRET}x` }),
    () => ({ ...json, 'x-orderbridge-token': '' }),
  ];
  add('bad credentials', Array.from({ length: 1000 }, (_, i) => valid(i)), (body) => ({ headers: badAuth[cases.length % badAuth.length]!(body), expected: [401] }));
  const types = ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', 'application/json-patch+json'];
  add('content type', Array.from({ length: 600 }, (_, i) => valid(1000 + i)), (body) => ({ headers: signed(body, { 'content-type': types[cases.length % types.length]! }), expected: [415] }));

  const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
  add('deep nesting', [
    ...[1_000, 10_000, 100_000].map((d) => deep(d, '[', ']')),
    ...[1_000, 10_000, 40_000].map((d) => deep(d, '{"a":', '}').replace(/:}/, ':1}')),
    ...[1_000, 50_000].map((d) => `{"order":${deep(d, '[', ']')}}`),
    `{"__proto__":{"polluted":true},"order":{"__proto__":{"id":1}}}`,
    `{"constructor":{"prototype":{"polluted":true}}}`,
    `{"order":null}`, `{"order":[]}`, `{"subject":"create order: 1","subject":null}`, '\uFEFF{}', '', ' ', 'null',
  ], (body) => ({ headers: signed(body), expected: [400] }));

  const big = (i: number) => ({ order: { ...faultOrder(3_000_000 + i), note: 'x'.repeat(256 * 1024) } });
  add('oversize', Array.from({ length: 100 }, (_, i) => big(i)), (body) => ({ headers: signed(body), expected: [413] }));
  return cases;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

describe('10,000 random bodies at the webhook', () => {
  let stack: RunningStack;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });

  beforeAll(async () => {
    stack = await bootStack({ workers: false });
  });
  afterAll(async () => {
    agent.destroy();
    await stack?.stop();
  });

  function post(c: Case): Promise<number> {
    const url = new URL('/webhooks/versacommerce', stack.url);
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { ...c.headers, 'content-length': String(c.body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(c.body);
    });
  }

  it('answers each with its 4xx, never 5xx or 202, and enqueues nothing', { timeout: 120_000 }, async () => {
    // prepare
    const cases = generate();

    // act
    const statuses = await mapLimit(cases, 16, (c) => post(c));

    // assess
    expect(cases.length).toBeGreaterThanOrEqual(10_000);
    const unexpected = cases
      .map((c, i) => ({ kind: c.kind, status: statuses[i]!, expected: c.expected, body: c.body.subarray(0, 120).toString() }))
      .filter((r) => !r.expected.includes(r.status));
    expect(unexpected.slice(0, 10)).toEqual([]);
    expect(statuses.filter((s) => s >= 500 || s === 202)).toEqual([]);
    expect(await allQueuesEmpty(stack)).toEqual({ orders: 0, ordersDlq: 0, klarCosts: 0, klarCostsDlq: 0 });
    expect(komfortkasse(stack).requests).toHaveLength(0);
  });
});
