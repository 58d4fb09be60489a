import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { resetClients } from '../lib/clients/registry.ts';
import { signatureHeader } from '../lib/webhook/auth.ts';
import { seedOrder } from '../local/simulators/fixtures.ts';
import type { RunningStack } from '../local/stack.ts';
import { runLoad, type PreparedRequest } from './load.ts';
import { progress, round, type Row } from './stats.ts';

/**
 * 429 slows the worker, not the order: 300 orders at once against a Komfortkasse that takes
 * 10 requests a second. All of them are in orders.fifo before the workers start (the burst
 * hits Komfortkasse at once; ingest is measured elsewhere). The same number of other orders
 * without the limit first gives the pipeline's own time (and warms its JVMs).
 */
export const BACKPRESSURE = { orders: 300, requestsPerSecond: 10, drainRatio: 1.2, throttledPerOrder: 1 } as const;
const DEADLINE_MS = 600_000;
const POST_CONCURRENCY = 10;

export interface BackpressureFigures {
  orders: number;
  requestsPerSecond: number;
  floorSeconds: number;
  /** workers start → last order accepted by Komfortkasse, with the limit */
  drainSeconds: number;
  drainRatio: number;
  /** the same without a limit: the pipeline's own time */
  unlimitedSeconds: number;
  throttled: number;
  throttledPerOrder: number;
  maxThrottledForOneOrder: number;
  submittedOnce: number;
  dlq: number;
}

export async function benchBackpressure(stack: RunningStack, secret: string): Promise<BackpressureFigures> {
  const kk = stack.simulators.komfortkasse!;
  const { orders: count, requestsPerSecond } = BACKPRESSURE;
  const createdAt = new Date().toISOString();
  const batch = (first: number) => Array.from({ length: count }, (_, i) => ({ id: first + i, code: `BP-${first + i}` }));
  const webhooks = (orders: { id: number; code: string }[]): PreparedRequest[] =>
    orders.map((o) => {
      const body = Buffer.from(JSON.stringify({ order: seedOrder({ id: o.id, code: o.code, created_at: createdAt }) }));
      return { path: '/webhooks/versacommerce', body, headers: { 'content-type': 'application/json', 'x-orderbridge-signature': signatureHeader(secret, body) } };
    });
  /** Queues every order with the workers stopped, then runs them; ms from start to the last 200. */
  const drain = async (orders: { id: number; code: string }[], what: string): Promise<number> => {
    await stack.stopWorkers();
    const load = await runLoad(stack.url, webhooks(orders), POST_CONCURRENCY);
    if (load.statuses.some((s) => s !== 202)) throw new Error(`backpressure: a webhook was not accepted (${what})`);
    const paths = new Set(orders.map((o) => `/api/v2/order/${o.code}`));
    const started = Date.now();
    stack.startWorkers();
    const deadline = started + DEADLINE_MS;
    let lastReport = 0;
    while (!orders.every((o) => kk.orders.has(o.code))) {
      if (Date.now() > deadline) throw new Error(`backpressure: ${what} incomplete after ${DEADLINE_MS / 1000} s`);
      if (Date.now() - lastReport > 5000) {
        progress(`backpressure: ${what}: Komfortkasse ${orders.filter((o) => kk.orders.has(o.code)).length}/${orders.length}, 429s ${kk.rateLimit.throttled}`);
        lastReport = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await stack.stopWorkers();
    return Math.max(...kk.requests.filter((r) => r.status === 200 && paths.has(r.path)).map((r) => Date.parse(r.at))) - started;
  };

  kk.reset();
  resetClients(); // a fresh pacer, as in a new container
  progress(`backpressure: ${count} orders without a limit (the pipeline's own time)`);
  const unlimitedMs = await drain(batch(4_000_000), 'without a limit');
  kk.reset();
  resetClients();
  kk.rateLimit.requestsPerSecond = requestsPerSecond;
  progress(`backpressure: ${count} orders at once against Komfortkasse limited to ${requestsPerSecond} requests/s`);
  const orders = batch(4_100_000);
  const drainMs = await drain(orders, `limited to ${requestsPerSecond}/s`);
  const paths = new Set(orders.map((o) => `/api/v2/order/${o.code}`));
  const throttledByOrder = new Map<string, number>();
  for (const r of kk.requests) if (r.status === 429 && paths.has(r.path)) throttledByOrder.set(r.path, (throttledByOrder.get(r.path) ?? 0) + 1);
  const throttled = [...throttledByOrder.values()].reduce((a, b) => a + b, 0);
  const { Attributes } = await stack.sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: stack.queues.ordersDlq.url, AttributeNames: ['ApproximateNumberOfMessages'] }));
  const dlq = Number(Attributes?.ApproximateNumberOfMessages ?? 0);
  kk.rateLimit.requestsPerSecond = undefined;
  for (const o of orders.filter((o) => kk.orders.get(o.code)?.submitCount !== 1)) {
    const tries = kk.requests.filter((r) => r.path === `/api/v2/order/${o.code}`).map((r) => `${r.status} at ${r.at.slice(11, 23)}`);
    progress(`backpressure: ${o.code} submitted ${kk.orders.get(o.code)?.submitCount ?? 0} times: ${tries.join(', ')}`);
  }
  const floorMs = (count / requestsPerSecond) * 1000;
  const figures: BackpressureFigures = {
    orders: count,
    requestsPerSecond,
    floorSeconds: floorMs / 1000,
    drainSeconds: round(drainMs / 1000),
    drainRatio: round(drainMs / floorMs),
    unlimitedSeconds: round(unlimitedMs / 1000),
    throttled,
    throttledPerOrder: round(throttled / count),
    maxThrottledForOneOrder: Math.max(0, ...throttledByOrder.values()),
    submittedOnce: orders.filter((o) => kk.orders.get(o.code)?.submitCount === 1).length,
    dlq,
  };
  progress(`backpressure: drained in ${figures.drainSeconds} s (×${figures.drainRatio} the ${figures.floorSeconds} s floor; ${figures.unlimitedSeconds} s without a limit), ${throttled} 429s`);
  return figures;
}

export function backpressureRows(b: BackpressureFigures): Row[] {
  const allowedRatio = BACKPRESSURE.drainRatio + b.unlimitedSeconds / b.floorSeconds;
  return [
    {
      metric: `backpressure: ${b.orders} orders at Komfortkasse's ${b.requestsPerSecond} req/s, drain time ÷ floor`,
      value: `×${b.drainRatio} (${b.drainSeconds} s / ${b.floorSeconds} s)`,
      target: `≤ ${BACKPRESSURE.drainRatio} + the pipeline's own ${b.unlimitedSeconds} s: ×${round(allowedRatio)}`,
      ok: b.drainRatio <= allowedRatio,
    },
    {
      metric: 'backpressure: 429s per order (most for one order)',
      value: `${b.throttledPerOrder} (${b.throttled}; ${b.maxThrottledForOneOrder})`,
      target: `≤ ${BACKPRESSURE.throttledPerOrder}`,
      ok: b.throttledPerOrder <= BACKPRESSURE.throttledPerOrder,
    },
    {
      metric: 'backpressure: submitted once / in the DLQ',
      value: `${b.submittedOnce} / ${b.dlq}`,
      target: `${b.orders} / 0`,
      ok: b.submittedOnce === b.orders && b.dlq === 0,
    },
  ];
}
