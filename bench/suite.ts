import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateQueueCommand, GetQueueAttributesCommand, PurgeQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { sqsClient } from '../lib/queue/sqs.ts';
import { documentClient } from '../lib/store/dynamo.ts';
import { signatureHeader } from '../lib/webhook/auth.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators/index.ts';
import { matchRoute, startHttpApi, type Handler } from '../local/runtime.ts';
import { seedOrder } from '../local/simulators/fixtures.ts';
import { REPO_ROOT, startStack, type RunningStack } from '../local/stack.ts';
import { BACKPRESSURE, backpressureRows, benchBackpressure, type BackpressureFigures } from './backpressure.ts';
import { buildBundles, measureInit, type BundleFigures } from './bundles.ts';
import { RequestCounter, sum, type Counts } from './counters.ts';
import { runLoad, type LoadResult, type PreparedRequest } from './load.ts';
import { measureKlarBatchMemory, type MemoryFigures } from './memory.ts';
import { percentile, progress, round, table, type Row } from './stats.ts';

export const BENCH_SECRET = 'bench-secret';
const WEBHOOK_PATH = '/webhooks/versacommerce';
const CONCURRENCY = [1, 10, 50] as const;
/** Requests per concurrency level and server, split over ROUNDS alternating rounds. */
const REQUESTS: Record<(typeof CONCURRENCY)[number], number> = { 1: 400, 10: 2000, 50: 3000 };
/** Short alternating rounds: a burst of outside load (other work on the two cores) hits both servers alike. */
const ROUNDS = 8;
const WARMUP_REQUESTS = 200;
const HEADLINE_CONCURRENCY = 10;
const E2E_ORDERS = 2000;
/** The end-to-end leg posts at the headline concurrency: pipelineRatio compares it with ingest there. */
const E2E_CONCURRENCY = HEADLINE_CONCURRENCY;
const E2E_DEADLINE_MS = 300_000;
/**
 * Orders pushed through the whole pipeline before the measured leg, as the ingest leg warms
 * its handlers: DynamoDB Local's JVM (and the workers' code) start cold. Exactly one Klar
 * batch (1000), so no cost of the warm-up waits in the Klar worker's batching window.
 */
const E2E_WARMUP_ORDERS = 1000;
const TARGETS = {
  p50Ratio: 1.3,
  sqsSendsPerWebhook: 1,
  fetchesPerNotification: 1,
  dynamoPerChange: 3,
  dynamoPerDuplicate: 1,
  pipelineRatio: 0.2,
  initRatio: 1.2,
  bundleKb: 350,
  callsPerChange: 1,
  memoryMb: 512,
};

interface LevelFigures {
  concurrency: number;
  requests: number;
  ingest: { p50Ms: number; p99Ms: number; rps: number; cpuMsPerRequest: CpuPerRequest };
  baseline: { p50Ms: number; p99Ms: number; rps: number; cpuMsPerRequest: CpuPerRequest };
  p50Ratio: number;
}

/** CPU per request: this process (load generator, HTTP front, handler, SDK) and the SQS emulator. */
interface CpuPerRequest {
  node: number;
  sqsEmulator?: number;
}

interface IngestFigures {
  levels: LevelFigures[];
  webhooks: number;
  sqsSends: number;
  sqsSendsByQueue: { orders: number; klarCosts: number; other: number };
  sqsSendsPerWebhook: number;
  /** what the emulator holds afterwards (nothing consumes during this leg) */
  emulator: { ordersQueueMessages: number; klarCostsQueueMessages: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signed(body: Buffer, headers: Record<string, string> = {}): PreparedRequest {
  return { path: WEBHOOK_PATH, body, headers: { 'content-type': 'application/json', 'x-orderbridge-signature': signatureHeader(BENCH_SECRET, body), ...headers } };
}

function benchOrder(id: number, createdAt: string): Record<string, unknown> {
  return seedOrder({
    id,
    code: `B-${id}`,
    created_at: createdAt,
    items: [{ id: id * 10, order_id: id, product_id: 10000, code: `SKU-${id % 97}`, title: 'T-Shirt', quantity: 1 }],
  });
}

/** Order-snapshot webhooks (`{"order":{…}}`) for distinct orders, signed as the shop signs them. */
function snapshotWebhooks(count: number, firstId: number): PreparedRequest[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => signed(Buffer.from(JSON.stringify({ order: benchOrder(firstId + i, createdAt) }))));
}

/** VersaCommerce notification envelopes: the worker fetches each order from the shop. */
function notifications(ids: readonly number[], deliveryPrefix: string): PreparedRequest[] {
  return ids.map((id) =>
    signed(
      Buffer.from(JSON.stringify({ from: 'shop@example.com', to: 'orderbridge@example.com', subject: `update order: ${id}`, shop_id: 1, subscription_id: 7, domain: 'bench.example.com' })),
      // A delivery id of its own per post: orders.fifo must not deduplicate a second notification.
      { 'x-orderbridge-delivery': `${deliveryPrefix}-${id}` },
    ),
  );
}

function summarize(results: LoadResult[]) {
  const latencies = results.flatMap((r) => r.latencies);
  const requests = latencies.length;
  const seconds = results.reduce((total, r) => total + r.durationMs, 0) / 1000;
  const statuses = results.flatMap((r) => r.statuses);
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), rps: requests / seconds, statuses };
}

function expectAll(statuses: number[], status: number, what: string): void {
  const wrong = statuses.filter((s) => s !== status);
  if (wrong.length) throw new Error(`${what}: ${wrong.length} request(s) did not get ${status} (e.g. ${wrong[0]})`);
}

/**
 * The physical floor of the endpoint: parse the JSON and ONE SendMessage to a FIFO queue on
 * the same emulator, with a message group (the order id) and a deduplication id (a hash of
 * the body), as any correct FIFO ingest needs. Nothing else.
 */
async function startBaseline(stack: RunningStack): Promise<{ server: Server; url: string; client: SQSClient; queueUrl: string }> {
  const client = new SQSClient({ endpoint: stack.sqs.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 3 });
  // The same counting middleware the handlers' client carries (its counts are not used): alike overhead.
  new RequestCounter().attach(client, 'sqs');
  const { QueueUrl } = await client.send(
    new CreateQueueCommand({ QueueName: 'orderbridge-bench-baseline.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' } }),
  );
  const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const raw = event.body ?? 'null';
    const body = JSON.parse(raw) as { order?: { id?: unknown } } | null;
    await client.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: JSON.stringify(body),
        MessageGroupId: String(body?.order?.id ?? 'none'),
        MessageDeduplicationId: createHash('sha256').update(raw).digest('hex'),
      }),
    );
    return { statusCode: 202, headers: { 'content-type': 'application/json' }, body: '{"accepted":true}' };
  };
  // The same front door as the stack's (API Gateway's route matching): only the function differs.
  const routes = [{ method: 'POST', path: WEBHOOK_PATH }];
  const server = await startHttpApi(0, { functionName: 'baseline', routeKeyFor: (method, path) => matchRoute(routes, method, path), handler: () => handler, timeoutSeconds: 10 });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}`, client, queueUrl: QueueUrl! };
}

async function queueDepth(stack: RunningStack, url: string): Promise<number> {
  const { Attributes } = await stack.sqsClient.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

async function benchIngest(stack: RunningStack, baselineUrl: string, counter: RequestCounter): Promise<IngestFigures> {
  let nextId = 1_000_000;
  const take = (n: number) => {
    const batch = snapshotWebhooks(n, nextId);
    nextId += n;
    return batch;
  };
  // No worker runs in this leg: every request on the handlers' SQS client is the ingest's.
  counter.reset();
  let webhooks = 0;
  progress('ingest: warming up both handlers');
  await runLoad(baselineUrl, take(WARMUP_REQUESTS), 10);
  const warm = await runLoad(stack.url, take(WARMUP_REQUESTS), 10);
  expectAll(warm.statuses, 202, 'ingest warm-up');
  webhooks += warm.statuses.length;
  const levels: LevelFigures[] = [];
  for (const concurrency of CONCURRENCY) {
    const perRound = REQUESTS[concurrency] / ROUNDS;
    const ingest: LoadResult[] = [];
    const baseline: LoadResult[] = [];
    const cpu = { ingest: { node: 0, sqsEmulator: 0 }, baseline: { node: 0, sqsEmulator: 0 } };
    const measured = async (side: 'ingest' | 'baseline', url: string) => {
      const before = cpuSnapshot(stack);
      const result = await runLoad(url, take(perRound), concurrency);
      const after = cpuSnapshot(stack);
      cpu[side].node += after.node - before.node;
      cpu[side].sqsEmulator += (after.sqsEmulator ?? Number.NaN) - (before.sqsEmulator ?? Number.NaN);
      (side === 'ingest' ? ingest : baseline).push(result);
    };
    // Alternate the two servers (and which goes first) so drift hits both alike.
    for (let round = 0; round < ROUNDS; round++) {
      const pair = [() => measured('baseline', baselineUrl), () => measured('ingest', stack.url)];
      if (round % 2) pair.reverse();
      for (const run of pair) await run();
    }
    const perRequest = (c: { node: number; sqsEmulator: number }): CpuPerRequest => ({
      node: round(c.node / REQUESTS[concurrency]),
      ...(Number.isFinite(c.sqsEmulator) ? { sqsEmulator: round(c.sqsEmulator / REQUESTS[concurrency]) } : {}),
    });
    const i = summarize(ingest);
    const b = summarize(baseline);
    expectAll(i.statuses, 202, `ingest at concurrency ${concurrency}`);
    expectAll(b.statuses, 202, `baseline at concurrency ${concurrency}`);
    webhooks += i.statuses.length;
    const level: LevelFigures = {
      concurrency,
      requests: REQUESTS[concurrency],
      ingest: { p50Ms: round(i.p50Ms), p99Ms: round(i.p99Ms), rps: Math.round(i.rps), cpuMsPerRequest: perRequest(cpu.ingest) },
      baseline: { p50Ms: round(b.p50Ms), p99Ms: round(b.p99Ms), rps: Math.round(b.rps), cpuMsPerRequest: perRequest(cpu.baseline) },
      p50Ratio: round(i.p50Ms / b.p50Ms),
    };
    levels.push(level);
    progress(
      `ingest c=${concurrency}: p50 ${level.ingest.p50Ms} ms vs baseline ${level.baseline.p50Ms} ms (×${level.p50Ratio}), ${level.ingest.rps} req/s (baseline ${level.baseline.rps}); CPU/request node ${level.ingest.cpuMsPerRequest.node} vs ${level.baseline.cpuMsPerRequest.node} ms, SQS emulator ${level.ingest.cpuMsPerRequest.sqsEmulator} vs ${level.baseline.cpuMsPerRequest.sqsEmulator} ms`,
    );
  }
  const orders = counter.sentToQueue(stack.queues.orders.url);
  const klarCosts = counter.sentToQueue(stack.queues.klarCosts.url);
  const sqsSends = counter.total('sqs', 'unattributed', 'commands', /^SendMessage/);
  const emulator = { ordersQueueMessages: await queueDepth(stack, stack.queues.orders.url), klarCostsQueueMessages: await queueDepth(stack, stack.queues.klarCosts.url) };
  progress(`ingest: ${sqsSends} SendMessage for ${webhooks} webhooks (orders.fifo ${orders}, klar-costs ${klarCosts}); the emulator holds ${emulator.ordersQueueMessages} + ${emulator.klarCostsQueueMessages}`);
  return {
    levels,
    webhooks,
    sqsSends,
    sqsSendsByQueue: { orders, klarCosts, other: sqsSends - orders - klarCosts },
    sqsSendsPerWebhook: round(sqsSends / webhooks),
    emulator,
  };
}

/** CPU time (ms) a process has used so far: /proc on Linux, else undefined. */
function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, at USER_HZ = 100
  } catch {
    return undefined;
  }
}

function cpuSnapshot(stack: RunningStack) {
  const own = process.cpuUsage();
  return { node: (own.user + own.system) / 1000, dynamoDbLocal: cpuMsOf(stack.dynamoDb.process.child.pid), sqsEmulator: cpuMsOf(stack.sqs.process.child.pid) };
}

interface LegCounts {
  notifications: number;
  versaCommerceFetches: number;
  dynamo: Counts;
  klarDynamo: Counts;
  klarForwards: number;
  komfortkasseCalls: number;
  klarRequests: number;
  workerFailures: number;
}

interface E2eFigures {
  orders: number;
  webhooks: 'notification';
  postConcurrency: number;
  seconds: number;
  ordersPerSecond: number;
  ingestRps: number;
  pipelineRatio: number;
  webhookToKomfortkasseP50Ms: number;
  webhookToKomfortkasseP99Ms: number;
  versaCommerceFetchesPerNotification: number;
  dynamoRequestsPerChange: number;
  dynamoRequestsPerDuplicate: number;
  klarDynamoRequestsPerOrder: number;
  klarForwardsPerChange: number;
  klarForwardsPerDuplicate: number;
  komfortkasseCalls: number;
  komfortkasseCallsPerChange: number;
  klarRequests: number;
  klarRequestsExpected: number;
  lost: number;
  duplicated: number;
  legs: { new: LegCounts; duplicate: LegCounts };
  cpuMsPerOrder: { node?: number; dynamoDbLocal?: number; sqsEmulator?: number };
  coresBusy: number;
  /** the unmeasured warm-up leg (cold DynamoDB Local JVM), for the record */
  warmup: { orders: number; seconds: number; ordersPerSecond: number; cpuMsPerOrder: { node?: number; dynamoDbLocal?: number; sqsEmulator?: number } };
  /** where the order worker's time goes (first leg): its invocations and the median latency of each call it makes */
  diagnostics: Record<string, unknown>;
}

async function benchEndToEnd(stack: RunningStack, counter: RequestCounter, ingestRps: number): Promise<E2eFigures> {
  const kk = stack.simulators.komfortkasse!;
  const klar = stack.simulators.klar!;
  const vc = stack.simulators.versaCommerce!;
  const firstId = 2_000_000;
  const ids = Array.from({ length: E2E_ORDERS }, (_, i) => firstId + i);
  const codes = ids.map((id) => `B-${id}`);
  const createdAt = new Date().toISOString();
  for (const id of ids) vc.addOrder(benchOrder(id, createdAt));
  const ourFetch = new Set(ids.map((id) => `/api/orders/${id}.json`));
  const ourKk = new Set(codes.map((c) => `/api/v2/order/${c}`));
  const isKlarUpload = (r: { method: string; path: string }) => r.method === 'POST' && r.path.endsWith('/transaction-costs/json');

  /** What one leg cost, from the simulators' logs (from index `from`) and the SDK counters. */
  const legCounts = (from: { vc: number; kk: number; klar: number }, notificationCount: number): LegCounts => ({
    notifications: notificationCount,
    versaCommerceFetches: vc.requests.slice(from.vc).filter((r) => r.method === 'GET' && ourFetch.has(r.path)).length,
    dynamo: counter.byCommand('dynamodb', 'sync-order'),
    klarDynamo: counter.byCommand('dynamodb', 'upload-klar-costs'),
    klarForwards: counter.sentToQueue(stack.queues.klarCosts.url),
    komfortkasseCalls: kk.requests.slice(from.kk).filter((r) => r.method === 'POST' && ourKk.has(r.path)).length,
    klarRequests: klar.requests.slice(from.klar).filter(isKlarUpload).length,
    workerFailures: counter.failures('sync-order') + counter.failures('upload-klar-costs'),
  });
  const marks = () => ({ vc: vc.requests.length, kk: kk.requests.length, klar: klar.requests.length });

  // ---- warm-up: other orders, the same path, not counted
  const warmIds = Array.from({ length: E2E_WARMUP_ORDERS }, (_, i) => 3_000_000 + i);
  for (const id of warmIds) vc.addOrder(benchOrder(id, createdAt));
  progress(`e2e: warming up the pipeline with ${E2E_WARMUP_ORDERS} other orders (DynamoDB Local's JVM starts cold)`);
  counter.reset();
  counter.attributing = true;
  const warmCpu = cpuSnapshot(stack);
  const warmStarted = performance.now();
  stack.startWorkers();
  expectAll((await runLoad(stack.url, notifications(warmIds, 'warmup'), E2E_CONCURRENCY)).statuses, 202, 'e2e warm-up webhooks');
  const warmDeadline = Date.now() + E2E_DEADLINE_MS;
  while (
    warmIds.some((id) => !kk.orders.has(`B-${id}`) || !klar.costs.has(String(id))) ||
    counter.finished('sync-order') < E2E_WARMUP_ORDERS ||
    counter.finished('upload-klar-costs') < E2E_WARMUP_ORDERS
  ) {
    if (Date.now() > warmDeadline) throw new Error('e2e warm-up incomplete');
    await sleep(100);
  }
  const warmSeconds = (performance.now() - warmStarted) / 1000;
  const warmCpuAfter = cpuSnapshot(stack);
  const perWarmOrder = (after: number | undefined, before: number | undefined) => (after === undefined || before === undefined ? undefined : round((after - before) / E2E_WARMUP_ORDERS));
  const warmup = {
    orders: E2E_WARMUP_ORDERS,
    seconds: round(warmSeconds),
    ordersPerSecond: round(E2E_WARMUP_ORDERS / warmSeconds),
    cpuMsPerOrder: {
      node: perWarmOrder(warmCpuAfter.node, warmCpu.node),
      dynamoDbLocal: perWarmOrder(warmCpuAfter.dynamoDbLocal, warmCpu.dynamoDbLocal),
      sqsEmulator: perWarmOrder(warmCpuAfter.sqsEmulator, warmCpu.sqsEmulator),
    },
  };
  progress(`e2e: warm-up ${warmup.ordersPerSecond} orders/s (CPU/order node ${warmup.cpuMsPerOrder.node}, DynamoDB Local ${warmup.cpuMsPerOrder.dynamoDbLocal} ms)`);
  await sleep(500);

  // ---- leg 1: every order is new
  counter.reset();
  const start1 = marks();
  const cpuBefore = cpuSnapshot(stack);
  const wallBefore = performance.now();
  progress(`e2e: ${E2E_ORDERS} notification webhooks (concurrency ${E2E_CONCURRENCY}) with the workers running; each order is fetched from the VersaCommerce simulator`);
  const load = await runLoad(stack.url, notifications(ids, 'new'), E2E_CONCURRENCY);
  expectAll(load.statuses, 202, 'e2e webhooks');
  progress(`e2e: all accepted after ${(load.durationMs / 1000).toFixed(1)} s; waiting for Komfortkasse and Klar`);
  const deadline = Date.now() + E2E_DEADLINE_MS;
  let lastReport = 0;
  for (;;) {
    const inKk = codes.filter((c) => kk.orders.has(c)).length;
    const inKlar = ids.filter((id) => klar.costs.has(String(id))).length;
    const synced = counter.finished('sync-order');
    const settled = counter.finished('upload-klar-costs');
    if (inKk === E2E_ORDERS && inKlar === E2E_ORDERS && synced >= E2E_ORDERS && settled >= E2E_ORDERS) break;
    if (Date.now() > deadline) throw new Error(`e2e incomplete after ${E2E_DEADLINE_MS / 1000} s: Komfortkasse ${inKk}, Klar ${inKlar}, synced ${synced}, Klar settled ${settled} of ${E2E_ORDERS}`);
    if (Date.now() - lastReport > 5000) {
      progress(`e2e: Komfortkasse ${inKk}/${E2E_ORDERS}, Klar ${inKlar}/${E2E_ORDERS} (worker records done ${synced}, Klar records done ${settled})`);
      lastReport = Date.now();
    }
    await sleep(100);
  }
  const cpuAfter = cpuSnapshot(stack);
  const wallMs = performance.now() - wallBefore;
  const diagnostics = {
    'sync-order': {
      ...counter.invocationStats('sync-order'),
      callP50Ms: { ...counter.latencyP50('http', 'sync-order'), ...counter.latencyP50('dynamodb', 'sync-order'), ...counter.latencyP50('sqs', 'sync-order') },
    },
    'upload-klar-costs': {
      ...counter.invocationStats('upload-klar-costs'),
      callP50Ms: { ...counter.latencyP50('http', 'upload-klar-costs'), ...counter.latencyP50('dynamodb', 'upload-klar-costs') },
    },
  };
  progress(`e2e: order worker ${JSON.stringify(diagnostics['sync-order'])}`);
  // Let stragglers (a duplicate call, a second Klar upload) show up before counting.
  await sleep(1500);
  const leg1 = legCounts(start1, E2E_ORDERS);

  const origin = performance.timeOrigin;
  const firstArrival = new Map<string, number>();
  for (const r of kk.requests.slice(start1.kk)) {
    if (r.method !== 'POST' || !ourKk.has(r.path)) continue;
    const code = r.path.slice('/api/v2/order/'.length);
    if (!firstArrival.has(code)) firstArrival.set(code, Date.parse(r.at));
  }
  const latencies = codes.map((code, i) => firstArrival.get(code)! - (origin + load.sentAt[i]!));
  const lastKk = Math.max(...firstArrival.values());
  const lastKlar = Math.max(...ids.map((id) => Date.parse(klar.costs.get(String(id))!.lastUploadedAt)));
  const seconds = (Math.max(lastKk, lastKlar) - (origin + Math.min(...load.sentAt))) / 1000;
  const ordersPerSecond = E2E_ORDERS / seconds;
  progress(`e2e: ${round(ordersPerSecond)} orders/s (ingest alone at c=${HEADLINE_CONCURRENCY}: ${ingestRps} req/s), p99 webhook→Komfortkasse ${Math.round(percentile(latencies, 99))} ms`);

  // ---- leg 2: the same orders again, as separate deliveries: nothing changed
  counter.reset();
  const start2 = marks();
  progress(`e2e: the same ${E2E_ORDERS} notifications again as new deliveries (nothing changed)`);
  const again = await runLoad(stack.url, notifications(ids, 'again'), E2E_CONCURRENCY);
  expectAll(again.statuses, 202, 'e2e duplicate webhooks');
  const deadline2 = Date.now() + E2E_DEADLINE_MS;
  while (counter.finished('sync-order') < E2E_ORDERS) {
    if (Date.now() > deadline2) throw new Error(`e2e duplicates: only ${counter.finished('sync-order')} of ${E2E_ORDERS} records done`);
    await sleep(100);
  }
  await sleep(1500);
  const leg2 = legCounts(start2, E2E_ORDERS);
  await stack.stopWorkers();
  counter.attributing = false;

  const submitCounts = codes.map((c) => kk.orders.get(c)?.submitCount ?? 0);
  const perOrder = (cpu: number | undefined, before: number | undefined) => (cpu === undefined || before === undefined ? undefined : round((cpu - before) / E2E_ORDERS));
  const cpuMsPerOrder = {
    node: perOrder(cpuAfter.node, cpuBefore.node),
    dynamoDbLocal: perOrder(cpuAfter.dynamoDbLocal, cpuBefore.dynamoDbLocal),
    sqsEmulator: perOrder(cpuAfter.sqsEmulator, cpuBefore.sqsEmulator),
  };
  const busyMs = [cpuAfter.node - cpuBefore.node, (cpuAfter.dynamoDbLocal ?? 0) - (cpuBefore.dynamoDbLocal ?? 0), (cpuAfter.sqsEmulator ?? 0) - (cpuBefore.sqsEmulator ?? 0)].reduce((a, b) => a + b, 0);
  const komfortkasseCalls = leg1.komfortkasseCalls + leg2.komfortkasseCalls;
  return {
    orders: E2E_ORDERS,
    webhooks: 'notification',
    postConcurrency: E2E_CONCURRENCY,
    seconds: round(seconds),
    ordersPerSecond: round(ordersPerSecond),
    ingestRps,
    pipelineRatio: round(ordersPerSecond / ingestRps),
    webhookToKomfortkasseP50Ms: Math.round(percentile(latencies, 50)),
    webhookToKomfortkasseP99Ms: Math.round(percentile(latencies, 99)),
    versaCommerceFetchesPerNotification: round((leg1.versaCommerceFetches + leg2.versaCommerceFetches) / (leg1.notifications + leg2.notifications)),
    dynamoRequestsPerChange: round(sum(leg1.dynamo) / E2E_ORDERS),
    dynamoRequestsPerDuplicate: round(sum(leg2.dynamo) / E2E_ORDERS),
    klarDynamoRequestsPerOrder: round(sum(leg1.klarDynamo) / E2E_ORDERS),
    klarForwardsPerChange: round(leg1.klarForwards / E2E_ORDERS),
    klarForwardsPerDuplicate: round(leg2.klarForwards / E2E_ORDERS),
    komfortkasseCalls,
    // Changes: each order's first notification; the second round changes nothing.
    komfortkasseCallsPerChange: round(komfortkasseCalls / E2E_ORDERS),
    klarRequests: leg1.klarRequests + leg2.klarRequests,
    klarRequestsExpected: Math.ceil(E2E_ORDERS / 1000),
    lost: submitCounts.filter((n) => n === 0).length,
    duplicated: submitCounts.filter((n) => n > 1).length,
    legs: { new: leg1, duplicate: leg2 },
    cpuMsPerOrder,
    coresBusy: round(busyMs / wallMs),
    diagnostics,
    warmup,
  };
}

/** Environment a handler gets at cold start in AWS (values only need to be well-formed). */
function coldStartEnv(stack: RunningStack): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    ...stack.env,
    POWERTOOLS_SERVICE_NAME: 'orderbridge',
    POWERTOOLS_METRICS_NAMESPACE: 'Orderbridge',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    NODE_OPTIONS: '',
  };
}

/** The workers whose AWS requests are attributed to them (they run concurrently in this process). */
const ATTRIBUTED = ['sync-order', 'upload-klar-costs'] as const;

/** A section that runs alone (`npm run bench -- --only backpressure`); the others need the whole run. */
export type BenchSection = 'backpressure';

export async function runBenchmark(options: { only?: BenchSection } = {}): Promise<void> {
  const benchStarted = performance.now();
  mkdirSync(join(REPO_ROOT, '.orderbridge'), { recursive: true });
  // Inside the repo, so the bundles' external @aws-sdk/* imports resolve from node_modules
  // as they resolve from the Lambda runtime.
  const workDir = mkdtempSync(join(REPO_ROOT, '.orderbridge', 'bench-'));
  let stack: RunningStack | undefined;
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  let restoreFetch: (() => void) | undefined;
  const cleanup = async () => {
    restoreFetch?.();
    if (baseline) {
      baseline.server.closeAllConnections();
      await new Promise((r) => baseline!.server.close(r));
      baseline.client.destroy();
      baseline = undefined;
    }
    await stack?.stop();
    rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // Handler output (JSON log lines and EMF metrics, as in Lambda at INFO) is formatted as
  // usual but not printed: it would bury the table. Our own output goes to stderr/stdout directly.
  const write = process.stdout.write.bind(process.stdout);
  let swallowed = 0;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (text.startsWith('{')) {
      swallowed++;
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }
    return write(chunk as string, ...(rest as []));
  }) as typeof process.stdout.write;

  try {
    progress('starting the local stack (DynamoDB Local, SQS emulator, simulators)');
    const counter = new RequestCounter();
    const real = new Map<string, Handler>();
    const handlers = Object.fromEntries(ATTRIBUTED.map((name) => [name, counter.wrap(name, () => real.get(name)!)]));
    stack = await startStack({
      port: 0,
      schedules: false,
      workers: false,
      handlers,
      env: {
        ...process.env,
        WEBHOOK_SECRETS: BENCH_SECRET,
        KOMFORTKASSE_BASE_URL: '',
        KLAR_BASE_URL: '',
        VERSACOMMERCE_BASE_URL: '',
        // as deployed (serverless.yml): Klar batches fill to 1000 or wait 60 s
        KLAR_BATCH_WINDOW_SECONDS: '60',
      },
    });
    // The real handlers, loaded as the stack loads them (same module instances), now that
    // the stack has set the environment they validate at import.
    for (const name of ATTRIBUTED) {
      const fn = stack.definition.functions.find((f) => f.name === name)!;
      real.set(name, (await import(pathToFileURL(join(REPO_ROOT, fn.module)).href))[fn.exportName] as Handler);
    }
    // The handlers' own clients (one per process; the stack dropped any older one above).
    counter.attach(sqsClient(), 'sqs');
    counter.attach(documentClient(), 'dynamodb');
    const upstreams: Record<string, string> = {};
    for (const [name, simulator] of Object.entries(stack.simulators)) if (simulator) upstreams[new URL(simulator.url).origin] = name;
    restoreFetch = counter.attachFetch(upstreams);

    if (options.only === 'backpressure') {
      const backpressure = await benchBackpressure(stack, BENCH_SECRET);
      const sectionRows = backpressureRows(backpressure);
      // The other sections' figures in bench/results.json stay as the last whole run left them.
      const file = join(REPO_ROOT, 'bench', 'results.json');
      let previous: Record<string, unknown> = {};
      try {
        previous = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      } catch {
        /* no earlier run */
      }
      writeFileSync(file, `${JSON.stringify({ ...previous, backpressure: backpressureResults(backpressure) }, null, 2)}\n`);
      const missed = sectionRows.filter((r) => r.ok === false).length;
      write(`\n${table(sectionRows)}\n\n${missed ? `${missed} target(s) missed` : 'every target met'}; backpressure written to bench/results.json (${round((performance.now() - benchStarted) / 1000)} s)\n`);
      return;
    }

    progress('bundling every function with esbuild (serverless.yml custom.esbuild settings)');
    const files = await buildBundles(stack.definition.functions, workDir);
    progress('cold start: `await import(bundle)` vs the AWS SDK it imports (same packages, same clients) alone, each in a fresh node, median of 9');
    const bundles = await measureInit(stack.definition.functions, files, coldStartEnv(stack));

    baseline = await startBaseline(stack);
    const ingest = await benchIngest(stack, baseline.url, counter);
    for (const queue of [stack.queues.orders.url, stack.queues.klarCosts.url, baseline.queueUrl]) await stack.sqsClient.send(new PurgeQueueCommand({ QueueUrl: queue }));
    for (const simulator of Object.values(stack.simulators)) simulator?.reset();

    const e2e = await benchEndToEnd(stack, counter, headline(ingest.levels).ingest.rps);
    progress(
      `e2e: VersaCommerce fetches/notification ${e2e.versaCommerceFetchesPerNotification}, DynamoDB requests/change ${e2e.dynamoRequestsPerChange} (${JSON.stringify(e2e.legs.new.dynamo)}), /duplicate ${e2e.dynamoRequestsPerDuplicate} (${JSON.stringify(e2e.legs.duplicate.dynamo)}), Klar worker ${e2e.klarDynamoRequestsPerOrder}/order`,
    );

    const backpressure = await benchBackpressure(stack, BENCH_SECRET);

    progress('memory: upload-klar-costs bundle on a 1,000-record batch in a fresh process');
    const memory = await measureKlarBatchMemory({ bundle: files.get('upload-klar-costs')!, workDir, env: coldStartEnv(stack), queueArn: stack.queues.klarCosts.arn });
    if (memory.failures !== 0) throw new Error(`the 1,000-record batch reported ${memory.failures} failure(s)`);
    progress(`memory: peak RSS ${round(memory.peakRssMb)} MB, batch ${Math.round(memory.batchMs)} ms`);

    const allRows = [...rows(ingest, e2e, bundles, memory), ...backpressureRows(backpressure)];
    const results = { ...toResults(ingest, e2e, bundles, memory, allRows, (performance.now() - benchStarted) / 1000, swallowed), backpressure: backpressureResults(backpressure) };
    writeFileSync(join(REPO_ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    const missed = allRows.filter((r) => r.ok === false).length;
    write(`\n${table(allRows)}\n\n${missed ? `${missed} target(s) missed` : 'every target met'}; written to bench/results.json (${round(results.durationSeconds)} s)\n`);
  } finally {
    process.stdout.write = write as typeof process.stdout.write;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

function backpressureResults(b: BackpressureFigures) {
  return { ...b, target: { drainRatio: `≤ ${BACKPRESSURE.drainRatio} + unlimitedSeconds ÷ floorSeconds`, throttledPerOrder: BACKPRESSURE.throttledPerOrder, dlq: 0 } };
}

function headline(levels: LevelFigures[]): LevelFigures {
  return levels.find((l) => l.concurrency === HEADLINE_CONCURRENCY)!;
}

function toResults(ingest: IngestFigures, e2e: E2eFigures, bundles: Map<string, BundleFigures>, memory: MemoryFigures, allRows: Row[], durationSeconds: number, handlerLogLines: number) {
  const h = headline(ingest.levels);
  return {
    generatedAt: new Date().toISOString(),
    machine: { node: process.version, platform: process.platform, arch: process.arch },
    durationSeconds: round(durationSeconds),
    targetsMet: allRows.every((r) => r.ok !== false),
    missed: allRows.filter((r) => r.ok === false).map((r) => `${r.metric}: ${r.value} (${r.target})`),
    ingest: {
      // The target holds at every level: the headline figure is the worst one.
      p50Ratio: Math.max(...ingest.levels.map((l) => l.p50Ratio)),
      p50RatioByConcurrency: Object.fromEntries(ingest.levels.map((l) => [l.concurrency, l.p50Ratio])),
      concurrency: HEADLINE_CONCURRENCY,
      p50Ms: h.ingest.p50Ms,
      baselineP50Ms: h.baseline.p50Ms,
      p99Ms: h.ingest.p99Ms,
      rps: h.ingest.rps,
      baseline: 'JSON.parse + one SendMessage to a FIFO queue (MessageGroupId = order id, MessageDeduplicationId = sha256(body)) on the same emulator',
      sqsSendsPerWebhook: ingest.sqsSendsPerWebhook,
      sqsSends: ingest.sqsSends,
      sqsSendsByQueue: ingest.sqsSendsByQueue,
      webhooks: ingest.webhooks,
      emulator: ingest.emulator,
      target: { p50Ratio: TARGETS.p50Ratio, sqsSendsPerWebhook: TARGETS.sqsSendsPerWebhook },
      levels: ingest.levels,
      handlerLogLines,
    },
    e2e: {
      ...e2e,
      target: {
        versaCommerceFetchesPerNotification: TARGETS.fetchesPerNotification,
        dynamoRequestsPerChange: TARGETS.dynamoPerChange,
        dynamoRequestsPerDuplicate: TARGETS.dynamoPerDuplicate,
        pipelineRatio: TARGETS.pipelineRatio,
        komfortkasseCallsPerChange: TARGETS.callsPerChange,
        klarRequests: e2e.klarRequestsExpected,
      },
    },
    functions: Object.fromEntries(
      [...bundles].map(([name, f]) => [
        name,
        {
          bundleBytes: f.bundleBytes,
          bundleKb: round(f.bundleBytes / 1024),
          initMs: round(f.initMs),
          sdkInitMs: round(f.sdkInitMs),
          initRatio: round(f.initRatio),
          sdkPackages: f.sdkPackages,
          clientsAtInit: f.clientsAtInit,
          sdkFilesMatch: f.sdkFilesMatch,
          sdkFilesLoaded: f.sdkFilesLoaded,
          extraFiles: f.extraFiles,
          ownCodeInitMs: round(f.bodyMs),
          initBreakdown: f.initBreakdown,
        },
      ]),
    ),
    functionTargets: { bundleKb: TARGETS.bundleKb, initRatio: TARGETS.initRatio },
    worker: {
      function: 'upload-klar-costs',
      records: memory.records,
      peakRssMb: round(memory.peakRssMb),
      sampledPeakRssMb: round(memory.sampledPeakRssMb),
      afterInitRssMb: round(memory.afterInitRssMb),
      batchMs: Math.round(memory.batchMs),
      target: { peakRssMb: TARGETS.memoryMb },
    },
  };
}

function rows(ingest: IngestFigures, e2e: E2eFigures, bundles: Map<string, BundleFigures>, memory: MemoryFigures): Row[] {
  const out: Row[] = [];
  for (const l of ingest.levels) {
    out.push({ metric: `ingest c=${l.concurrency} p50 (baseline)`, value: `${l.ingest.p50Ms} ms (${l.baseline.p50Ms} ms)`, target: `≤ ${TARGETS.p50Ratio}× baseline: ×${l.p50Ratio}`, ok: l.p50Ratio <= TARGETS.p50Ratio });
    out.push({ metric: `ingest c=${l.concurrency} p99 (baseline)`, value: `${l.ingest.p99Ms} ms (${l.baseline.p99Ms} ms)`, target: '-' });
    out.push({ metric: `ingest c=${l.concurrency} throughput (baseline)`, value: `${l.ingest.rps} req/s (${l.baseline.rps})`, target: '-' });
    out.push({
      metric: `ingest c=${l.concurrency} CPU/request node, SQS emulator (baseline)`,
      value: `${l.ingest.cpuMsPerRequest.node}, ${l.ingest.cpuMsPerRequest.sqsEmulator ?? '?'} ms (${l.baseline.cpuMsPerRequest.node}, ${l.baseline.cpuMsPerRequest.sqsEmulator ?? '?'})`,
      target: '-',
    });
  }
  out.push({
    metric: 'ingest SQS sends per webhook (counted)',
    value: `${ingest.sqsSendsPerWebhook} (${ingest.sqsSends}/${ingest.webhooks})`,
    target: `= ${TARGETS.sqsSendsPerWebhook}; klar-costs ${ingest.sqsSendsByQueue.klarCosts}, emulator holds ${ingest.emulator.ordersQueueMessages}`,
    ok: ingest.sqsSends === ingest.webhooks && ingest.sqsSendsByQueue.orders === ingest.webhooks,
  });
  out.push({ metric: 'e2e orders (notification webhooks)', value: String(e2e.orders), target: `${e2e.orders}; lost ${e2e.lost}, duplicated ${e2e.duplicated}`, ok: e2e.lost === 0 && e2e.duplicated === 0 });
  out.push({ metric: `e2e orders/s (webhook → both upstreams, c=${e2e.postConcurrency})`, value: String(e2e.ordersPerSecond), target: '-' });
  out.push({ metric: `e2e warm-up leg before it (${e2e.warmup.orders} other orders, cold JVM)`, value: `${e2e.warmup.ordersPerSecond} orders/s`, target: '- (not measured)' });
  out.push({ metric: `e2e pipeline ratio (e2e orders/s ÷ ingest req/s at c=${HEADLINE_CONCURRENCY})`, value: `${e2e.pipelineRatio} (${e2e.ordersPerSecond}/${e2e.ingestRps})`, target: `≥ ${TARGETS.pipelineRatio}`, ok: e2e.pipelineRatio >= TARGETS.pipelineRatio });
  out.push({ metric: 'e2e webhook → Komfortkasse p50 / p99', value: `${e2e.webhookToKomfortkasseP50Ms} / ${e2e.webhookToKomfortkasseP99Ms} ms`, target: '-' });
  out.push({ metric: 'e2e CPU per order: node / DynamoDB Local / SQS emulator', value: `${e2e.cpuMsPerOrder.node ?? '?'} / ${e2e.cpuMsPerOrder.dynamoDbLocal ?? '?'} / ${e2e.cpuMsPerOrder.sqsEmulator ?? '?'} ms`, target: `- (cores busy ${e2e.coresBusy})` });
  const fetches = e2e.legs.new.versaCommerceFetches + e2e.legs.duplicate.versaCommerceFetches;
  out.push({ metric: 'e2e VersaCommerce fetches per notification', value: `${e2e.versaCommerceFetchesPerNotification} (${fetches}/${e2e.legs.new.notifications + e2e.legs.duplicate.notifications})`, target: `= ${TARGETS.fetchesPerNotification}`, ok: fetches === e2e.legs.new.notifications + e2e.legs.duplicate.notifications });
  const fmt = (c: Counts) => Object.entries(c).map(([k, n]) => `${k} ${round(n / e2e.orders)}`).join(', ');
  out.push({ metric: 'e2e order worker DynamoDB requests per change', value: String(e2e.dynamoRequestsPerChange), target: `≤ ${TARGETS.dynamoPerChange} (${fmt(e2e.legs.new.dynamo)})`, ok: e2e.dynamoRequestsPerChange <= TARGETS.dynamoPerChange });
  out.push({ metric: 'e2e order worker DynamoDB requests per duplicate', value: String(e2e.dynamoRequestsPerDuplicate), target: `= ${TARGETS.dynamoPerDuplicate} (${fmt(e2e.legs.duplicate.dynamo)})`, ok: e2e.dynamoRequestsPerDuplicate === TARGETS.dynamoPerDuplicate });
  out.push({ metric: 'e2e Klar worker DynamoDB requests per order', value: String(e2e.klarDynamoRequestsPerOrder), target: `- (${fmt(e2e.legs.new.klarDynamo)})` });
  out.push({ metric: 'e2e Klar costs forwarded per change / per duplicate', value: `${e2e.klarForwardsPerChange} / ${e2e.klarForwardsPerDuplicate}`, target: '= 1 / = 0', ok: e2e.legs.new.klarForwards === e2e.orders && e2e.legs.duplicate.klarForwards === 0 });
  out.push({ metric: 'e2e Komfortkasse calls per order change', value: `${e2e.komfortkasseCallsPerChange} (${e2e.komfortkasseCalls}, ${e2e.legs.duplicate.komfortkasseCalls} on duplicates)`, target: `= ${TARGETS.callsPerChange}`, ok: e2e.komfortkasseCalls === e2e.orders });
  out.push({ metric: 'e2e Klar requests', value: String(e2e.klarRequests), target: `= ceil(${e2e.orders}/1000) = ${e2e.klarRequestsExpected}`, ok: e2e.klarRequests === e2e.klarRequestsExpected });
  out.push({ metric: 'e2e worker records failed (retried)', value: String(e2e.legs.new.workerFailures + e2e.legs.duplicate.workerFailures), target: '-' });
  for (const [name, f] of bundles) {
    out.push({ metric: `${name} bundle (minified)`, value: `${round(f.bundleBytes / 1024)} KB`, target: `≤ ${TARGETS.bundleKb} KB`, ok: f.bundleBytes <= TARGETS.bundleKb * 1024 });
    out.push({
      metric: `${name} init ÷ AWS SDK alone`,
      value: `${round(f.initMs)} / ${round(f.sdkInitMs)} ms = ×${round(f.initRatio)}`,
      target: `≤ ${TARGETS.initRatio}× (${f.sdkPackages.join(' ')}; ${f.clientsAtInit.length ? f.clientsAtInit.join(', ') : 'no client'} at import${f.sdkFilesMatch ? '' : '; bundle loads more node_modules files!'})`,
      ok: f.initRatio <= TARGETS.initRatio && f.sdkFilesMatch,
    });
  }
  out.push({ metric: `worker peak RSS (${memory.records}-record Klar batch)`, value: `${round(memory.peakRssMb)} MB`, target: `≤ ${TARGETS.memoryMb} MB (memorySize)`, ok: memory.peakRssMb <= TARGETS.memoryMb });
  return out;
}
