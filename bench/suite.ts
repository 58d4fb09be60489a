import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { CreateQueueCommand, PurgeQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { signatureHeader } from '../lib/webhook/auth.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators/index.ts';
import { startHttpApi } from '../local/runtime.ts';
import { seedOrder } from '../local/simulators/fixtures.ts';
import { REPO_ROOT, startStack, type RunningStack } from '../local/stack.ts';
import { buildBundles, measureInit, type BundleFigures } from './bundles.ts';
import { runLoad, type LoadResult, type PreparedRequest } from './load.ts';
import { measureKlarBatchMemory, type MemoryFigures } from './memory.ts';
import { percentile, progress, round, table, type Row } from './stats.ts';

export const BENCH_SECRET = 'bench-secret';
const WEBHOOK_PATH = '/webhooks/versacommerce';
const CONCURRENCY = [1, 10, 50] as const;
/** Requests per concurrency level and server, split over two alternating rounds. */
const REQUESTS: Record<(typeof CONCURRENCY)[number], number> = { 1: 400, 10: 2000, 50: 3000 };
const HEADLINE_CONCURRENCY = 10;
const E2E_ORDERS = 2000;
const TARGETS = { p50Ratio: 1.3, bundleKb: 350, initMs: 150, callsPerChange: 1, memoryMb: 512 };

interface LevelFigures {
  concurrency: number;
  requests: number;
  ingest: { p50Ms: number; p99Ms: number; rps: number };
  baseline: { p50Ms: number; p99Ms: number; rps: number };
  p50Ratio: number;
}

/** Webhook bodies for distinct orders, signed as the shop signs them. */
function webhooks(count: number, firstId: number): PreparedRequest[] {
  const createdAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const id = firstId + i;
    const order = seedOrder({
      id,
      code: `B-${id}`,
      created_at: createdAt,
      items: [{ id: id * 10, order_id: id, product_id: 10000, code: `SKU-${id % 97}`, title: 'T-Shirt', quantity: 1 }],
    });
    const body = Buffer.from(JSON.stringify({ order }));
    return { path: WEBHOOK_PATH, body, headers: { 'content-type': 'application/json', 'x-orderbridge-signature': signatureHeader(BENCH_SECRET, body) } };
  });
}

function summarize(results: LoadResult[]) {
  const latencies = results.flatMap((r) => r.latencies);
  const requests = latencies.length;
  const seconds = results.reduce((sum, r) => sum + r.durationMs, 0) / 1000;
  const statuses = results.flatMap((r) => r.statuses);
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), rps: requests / seconds, statuses };
}

function expectAll(statuses: number[], status: number, what: string): void {
  const wrong = statuses.filter((s) => s !== status);
  if (wrong.length) throw new Error(`${what}: ${wrong.length} request(s) did not get ${status} (e.g. ${wrong[0]})`);
}

/** The reference: parse JSON, one SendMessage to the same emulator, nothing else. */
async function startBaseline(stack: RunningStack): Promise<{ server: Server; url: string; client: SQSClient }> {
  const client = new SQSClient({ endpoint: stack.sqs.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 3 });
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'orderbridge-bench-baseline' }));
  const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const body = JSON.parse(event.body ?? 'null') as unknown;
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(body) }));
    return { statusCode: 202, headers: { 'content-type': 'application/json' }, body: '{"accepted":true}' };
  };
  const server = await startHttpApi(0, { functionName: 'baseline', routeKeyFor: () => `POST ${WEBHOOK_PATH}`, handler: () => handler, timeoutSeconds: 10 });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}`, client };
}

async function benchIngest(stack: RunningStack, baselineUrl: string): Promise<LevelFigures[]> {
  let nextId = 1_000_000;
  const take = (n: number) => {
    const batch = webhooks(n, nextId);
    nextId += n;
    return batch;
  };
  progress('ingest: warming up both handlers');
  await runLoad(baselineUrl, take(200), 10);
  await runLoad(stack.url, take(200), 10);
  const levels: LevelFigures[] = [];
  for (const concurrency of CONCURRENCY) {
    const half = REQUESTS[concurrency] / 2;
    const ingest: LoadResult[] = [];
    const baseline: LoadResult[] = [];
    // Alternate the two servers so drift (GC, emulator queue growth) hits both alike.
    for (let round = 0; round < 2; round++) {
      baseline.push(await runLoad(baselineUrl, take(half), concurrency));
      ingest.push(await runLoad(stack.url, take(half), concurrency));
    }
    const i = summarize(ingest);
    const b = summarize(baseline);
    expectAll(i.statuses, 202, `ingest at concurrency ${concurrency}`);
    expectAll(b.statuses, 202, `baseline at concurrency ${concurrency}`);
    const level: LevelFigures = {
      concurrency,
      requests: REQUESTS[concurrency],
      ingest: { p50Ms: round(i.p50Ms), p99Ms: round(i.p99Ms), rps: Math.round(i.rps) },
      baseline: { p50Ms: round(b.p50Ms), p99Ms: round(b.p99Ms), rps: Math.round(b.rps) },
      p50Ratio: round(i.p50Ms / b.p50Ms),
    };
    levels.push(level);
    progress(`ingest c=${concurrency}: p50 ${level.ingest.p50Ms} ms vs baseline ${level.baseline.p50Ms} ms (×${level.p50Ratio}), ${level.ingest.rps} req/s`);
  }
  return levels;
}

interface E2eFigures {
  orders: number;
  seconds: number;
  ordersPerSecond: number;
  webhookToKomfortkasseP50Ms: number;
  webhookToKomfortkasseP99Ms: number;
  komfortkasseCalls: number;
  komfortkasseCallsPerChange: number;
  klarRequests: number;
  klarRequestsExpected: number;
  lost: number;
  duplicated: number;
}

async function benchEndToEnd(stack: RunningStack): Promise<E2eFigures> {
  const kk = stack.simulators.komfortkasse!;
  const klar = stack.simulators.klar!;
  const firstId = 2_000_000;
  const requests = webhooks(E2E_ORDERS, firstId);
  const codes = requests.map((_, i) => `B-${firstId + i}`);
  progress(`e2e: posting ${E2E_ORDERS} webhooks (concurrency 20) with the workers running`);
  stack.startWorkers();
  const load = await runLoad(stack.url, requests, 20);
  expectAll(load.statuses, 202, 'e2e webhooks');
  progress(`e2e: all accepted after ${(load.durationMs / 1000).toFixed(1)} s; waiting for Komfortkasse and Klar`);
  const deadline = Date.now() + 200_000;
  let lastReport = 0;
  for (;;) {
    const inKk = codes.filter((c) => kk.orders.has(c)).length;
    const inKlar = requests.filter((_, i) => klar.costs.has(String(firstId + i))).length;
    if (inKk === E2E_ORDERS && inKlar === E2E_ORDERS) break;
    if (Date.now() > deadline) throw new Error(`e2e incomplete after 200 s: Komfortkasse ${inKk}, Klar ${inKlar} of ${E2E_ORDERS}`);
    if (Date.now() - lastReport > 5000) {
      progress(`e2e: Komfortkasse ${inKk}/${E2E_ORDERS}, Klar ${inKlar}/${E2E_ORDERS}`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let stragglers (a duplicate call, a second Klar upload) show up before counting.
  await new Promise((r) => setTimeout(r, 1500));
  await stack.stopWorkers();

  const origin = performance.timeOrigin;
  const firstArrival = new Map<string, number>();
  let komfortkasseCalls = 0;
  const ours = new Set(codes.map((c) => `/api/v2/order/${c}`));
  for (const r of kk.requests) {
    if (r.method !== 'POST' || !ours.has(r.path)) continue;
    komfortkasseCalls++;
    const code = r.path.slice('/api/v2/order/'.length);
    if (!firstArrival.has(code)) firstArrival.set(code, Date.parse(r.at));
  }
  const latencies = codes.map((code, i) => firstArrival.get(code)! - (origin + load.sentAt[i]!));
  const klarRequests = klar.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/transaction-costs/json')).length;
  const lastKk = Math.max(...firstArrival.values());
  const lastKlar = Math.max(...requests.map((_, i) => Date.parse(klar.costs.get(String(firstId + i))!.lastUploadedAt)));
  const seconds = (Math.max(lastKk, lastKlar) - (origin + Math.min(...load.sentAt))) / 1000;
  const submitCounts = codes.map((c) => kk.orders.get(c)?.submitCount ?? 0);
  return {
    orders: E2E_ORDERS,
    seconds: round(seconds),
    ordersPerSecond: round(E2E_ORDERS / seconds),
    webhookToKomfortkasseP50Ms: Math.round(percentile(latencies, 50)),
    webhookToKomfortkasseP99Ms: Math.round(percentile(latencies, 99)),
    komfortkasseCalls,
    komfortkasseCallsPerChange: round(komfortkasseCalls / E2E_ORDERS),
    klarRequests,
    klarRequestsExpected: Math.ceil(E2E_ORDERS / 1000),
    lost: submitCounts.filter((n) => n === 0).length,
    duplicated: submitCounts.filter((n) => n > 1).length,
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

export async function runBenchmark(): Promise<void> {
  const benchStarted = performance.now();
  mkdirSync(join(REPO_ROOT, '.orderbridge'), { recursive: true });
  // Inside the repo, so the bundles' external @aws-sdk/* imports resolve from node_modules
  // as they resolve from the Lambda runtime.
  const workDir = mkdtempSync(join(REPO_ROOT, '.orderbridge', 'bench-'));
  let stack: RunningStack | undefined;
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  const cleanup = async () => {
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
    stack = await startStack({
      port: 0,
      schedules: false,
      workers: false,
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
    await stack.stopWorkers();

    progress('bundling every function with esbuild (serverless.yml custom.esbuild settings)');
    const files = await buildBundles(stack.definition.functions, workDir);
    progress('cold start: node -e "await import(bundle)" minus an empty node, median of 7 (and the AWS SDK alone)');
    const bundles = measureInit(files, coldStartEnv(stack));

    baseline = await startBaseline(stack);
    const levels = await benchIngest(stack, baseline.url);
    for (const queue of [stack.queues.orders, stack.queues.klarCosts]) await stack.sqsClient.send(new PurgeQueueCommand({ QueueUrl: queue.url }));
    stack.simulators.komfortkasse!.reset();
    stack.simulators.klar!.reset();

    const e2e = await benchEndToEnd(stack);
    progress(`e2e: ${e2e.ordersPerSecond} orders/s, p99 webhook→Komfortkasse ${e2e.webhookToKomfortkasseP99Ms} ms`);

    progress('memory: upload-klar-costs bundle on a 1,000-record batch in a fresh process');
    const memory = await measureKlarBatchMemory({ bundle: files.get('upload-klar-costs')!, workDir, env: coldStartEnv(stack), queueArn: stack.queues.klarCosts.arn });
    if (memory.failures !== 0) throw new Error(`the 1,000-record batch reported ${memory.failures} failure(s)`);
    progress(`memory: peak RSS ${round(memory.peakRssMb)} MB, batch ${Math.round(memory.batchMs)} ms`);

    const results = toResults(levels, e2e, bundles, memory, (performance.now() - benchStarted) / 1000, swallowed);
    writeFileSync(join(REPO_ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    write(`\n${table(rows(levels, e2e, bundles, memory))}\n\nwritten to bench/results.json (${round(results.durationSeconds)} s)\n`);
  } finally {
    process.stdout.write = write as typeof process.stdout.write;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

function headline(levels: LevelFigures[]): LevelFigures {
  return levels.find((l) => l.concurrency === HEADLINE_CONCURRENCY)!;
}

function toResults(levels: LevelFigures[], e2e: E2eFigures, bundles: Map<string, BundleFigures>, memory: MemoryFigures, durationSeconds: number, handlerLogLines: number) {
  const h = headline(levels);
  return {
    generatedAt: new Date().toISOString(),
    machine: { node: process.version, platform: process.platform, arch: process.arch },
    durationSeconds: round(durationSeconds),
    ingest: {
      concurrency: HEADLINE_CONCURRENCY,
      p50Ms: h.ingest.p50Ms,
      baselineP50Ms: h.baseline.p50Ms,
      p50Ratio: h.p50Ratio,
      p99Ms: h.ingest.p99Ms,
      rps: h.ingest.rps,
      worstP50Ratio: Math.max(...levels.map((l) => l.p50Ratio)),
      target: { p50Ratio: TARGETS.p50Ratio },
      levels,
      handlerLogLines,
    },
    e2e: { ...e2e, target: { komfortkasseCallsPerChange: TARGETS.callsPerChange, klarRequests: e2e.klarRequestsExpected } },
    functions: Object.fromEntries(
      [...bundles].map(([name, f]) => [name, {
          bundleBytes: f.bundleBytes,
          bundleKb: round(f.bundleBytes / 1024),
          initMs: round(f.initMs),
          sdkInitMs: round(f.sdkInitMs),
          sdkPackages: f.sdkPackages,
          importMedianMs: round(f.importMedianMs),
        }]),
    ),
    functionTargets: { bundleKb: TARGETS.bundleKb, initMs: TARGETS.initMs },
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

function rows(levels: LevelFigures[], e2e: E2eFigures, bundles: Map<string, BundleFigures>, memory: MemoryFigures): Row[] {
  const out: Row[] = [];
  for (const l of levels) {
    out.push({ metric: `ingest c=${l.concurrency} p50 (baseline)`, value: `${l.ingest.p50Ms} ms (${l.baseline.p50Ms} ms)`, target: `≤ ${TARGETS.p50Ratio}× baseline: ×${l.p50Ratio}`, ok: l.p50Ratio <= TARGETS.p50Ratio });
    out.push({ metric: `ingest c=${l.concurrency} p99 (baseline)`, value: `${l.ingest.p99Ms} ms (${l.baseline.p99Ms} ms)`, target: '-' });
    out.push({ metric: `ingest c=${l.concurrency} throughput (baseline)`, value: `${l.ingest.rps} req/s (${l.baseline.rps})`, target: '-' });
  }
  out.push({ metric: 'e2e orders', value: String(e2e.orders), target: `${E2E_ORDERS}; lost ${e2e.lost}, duplicated ${e2e.duplicated}`, ok: e2e.lost === 0 && e2e.duplicated === 0 });
  out.push({ metric: 'e2e orders/second (webhook → both upstreams)', value: String(e2e.ordersPerSecond), target: '-' });
  out.push({ metric: 'e2e webhook → Komfortkasse p50 / p99', value: `${e2e.webhookToKomfortkasseP50Ms} / ${e2e.webhookToKomfortkasseP99Ms} ms`, target: '-' });
  out.push({ metric: 'e2e Komfortkasse calls per order change', value: String(e2e.komfortkasseCallsPerChange), target: `= ${TARGETS.callsPerChange}`, ok: e2e.komfortkasseCalls === e2e.orders });
  out.push({ metric: 'e2e Klar requests', value: String(e2e.klarRequests), target: `= ceil(${e2e.orders}/1000) = ${e2e.klarRequestsExpected}`, ok: e2e.klarRequests === e2e.klarRequestsExpected });
  for (const [name, f] of bundles) {
    out.push({ metric: `${name} bundle (minified)`, value: `${round(f.bundleBytes / 1024)} KB`, target: `≤ ${TARGETS.bundleKb} KB`, ok: f.bundleBytes <= TARGETS.bundleKb * 1024 });
    out.push({ metric: `${name} cold-start init (AWS SDK part)`, value: `${round(f.initMs)} ms (${round(f.sdkInitMs)})`, target: `≤ ${TARGETS.initMs} ms`, ok: f.initMs <= TARGETS.initMs });
  }
  out.push({ metric: `worker peak RSS (${memory.records}-record Klar batch)`, value: `${round(memory.peakRssMb)} MB`, target: `≤ ${TARGETS.memoryMb} MB (memorySize)`, ok: memory.peakRssMb <= TARGETS.memoryMb });
  return out;
}
