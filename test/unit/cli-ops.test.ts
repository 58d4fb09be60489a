import { CloudWatchClient, GetMetricDataCommand, type GetMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../bin/cli.ts';
import { fetchOrder } from '../../lib/clients/versacommerce.ts';
import { OrderVanishedError } from '../../lib/domain/errors.ts';
import { formatAge, statusJsonSchema, whatNeedsALook, type StatusJson } from '../../lib/ops/status.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { buildParsedOrder, buildStateItem } from '../factories/sync-state.ts';

// The replay path is checked without a shop: fetchOrder is replaced, the rest is real.
vi.mock('../../lib/clients/versacommerce.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../lib/clients/versacommerce.ts')>()),
  fetchOrder: vi.fn(),
}));

// The CLI's operations commands against a deployed stage (`--stage prod`), with SQS,
// CloudWatch and DynamoDB mocked: the AWS path the local integration suite cannot reach.
const sqs = mockClient(SQSClient);
const cloudWatch = mockClient(CloudWatchClient);
const dynamo = mockClient(DynamoDBDocumentClient);
// The deployed order worker's environment: which sides are switched on.
const lambda = mockClient(LambdaClient);

const ACCOUNT_URL = 'https://sqs.eu-central-1.amazonaws.com/123456789012';
const QUEUES = {
  orders: 'orderbridge-prod-orders.fifo',
  ordersDlq: 'orderbridge-prod-orders-dlq.fifo',
  klarCosts: 'orderbridge-prod-klar-costs',
  klarCostsDlq: 'orderbridge-prod-klar-costs-dlq',
};
const urlOf = (name: string) => `${ACCOUNT_URL}/${name}`;
const NOW = Date.now();
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const savedEnv = { ...process.env };
beforeAll(() => {
  // Nothing of a local stack may leak in: the stage path talks to "AWS" (the mocks).
  for (const name of ['AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_DYNAMODB', 'STAGE', 'HISTORY_TABLE_NAME', 'ORDERS_QUEUE_URL', 'KLAR_COSTS_QUEUE_URL', 'DRY_RUN']) {
    delete process.env[name];
  }
  process.env.AWS_REGION = 'eu-central-1';
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
});
afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  sqs.restore();
  cloudWatch.restore();
  dynamo.restore();
  lambda.restore();
});

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
    { env: process.env, defaultStateFile: '/nonexistent/orderbridge-state.json' },
  );
  return { code, stdout, stderr };
}

/** The DynamoDB content of a stage, by what each query asks for. */
interface TableContent {
  attention?: Record<string, unknown>[];
  states?: Record<string, unknown>[];
  klarReadings?: Record<string, unknown>[];
  reconcileRuns?: Record<string, unknown>[];
  /** the SHOP#API CHECK item */
  shopApiCheck?: Record<string, unknown>;
}
function stageTable(content: TableContent) {
  dynamo.on(GetCommand).callsFake((input) => {
    if (input.Key.pk === 'SHOP#API') return { Item: content.shopApiCheck };
    throw new Error(`unexpected get ${JSON.stringify(input)}`);
  });
  dynamo.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    if (input.IndexName === 'gsi2') return { Items: content.attention ?? [] };
    const pk = input.ExpressionAttributeValues?.[':pk'];
    if (pk === 'KLAR#STATE') return { Items: (content.klarReadings ?? []).slice(0, input.Limit) };
    if (pk === 'RECONCILE#RUN') return { Items: (content.reconcileRuns ?? []).slice(0, input.Limit) };
    throw new Error(`unexpected query ${JSON.stringify(input)}`);
  });
  dynamo.on(BatchGetCommand).callsFake((input) => {
    const table = Object.keys(input.RequestItems)[0]!;
    const wanted = new Set((input.RequestItems[table].Keys as { pk: string }[]).map((k) => k.pk));
    return { Responses: { [table]: (content.states ?? []).filter((item) => wanted.has(String(item.pk))) } };
  });
}

/** GetQueueUrl by name, and each queue's counts. */
function stageQueues(counts: Partial<Record<keyof typeof QUEUES, [visible: number, inFlight: number]>> = {}) {
  sqs.on(GetQueueUrlCommand).callsFake((input) => ({ QueueUrl: urlOf(input.QueueName) }));
  sqs.on(GetQueueAttributesCommand).callsFake((input) => {
    const queue = (Object.keys(QUEUES) as (keyof typeof QUEUES)[]).find((q) => urlOf(QUEUES[q]) === input.QueueUrl)!;
    const [visible, inFlight] = counts[queue] ?? [0, 0];
    return { Attributes: { ApproximateNumberOfMessages: String(visible), ApproximateNumberOfMessagesNotVisible: String(inFlight) } };
  });
}

const attentionItem = (orderId: number, target: 'komfortkasse' | 'klar', error: string) => ({
  pk: `ORDER#${orderId}`,
  sk: `ATTENTION#${target}`,
  gsi2pk: 'NEEDS_ATTENTION',
  orderId,
  orderCode: `P-${orderId}`,
  target,
  error,
  since: ago(HOUR),
});
const parkedState = (orderId: number, side: 'komfortkasse' | 'klar', error: string) =>
  buildStateItem(orderId, { orderCode: `P-${orderId}`, ...(side === 'komfortkasse' ? { kkState: 'needs-attention', kkError: error } : { klarState: 'needs-attention', klarError: error }) });
const reconcileRun = (at: string, overrides: Record<string, unknown> = {}) => ({
  pk: 'RECONCILE#RUN',
  sk: `RUN#${at}`,
  at,
  since: ago(15 * DAY),
  checked: 240,
  enqueued: 3,
  needsAttention: 0,
  invalid: 0,
  dryRun: false,
  trigger: 'schedule',
  ...overrides,
});

beforeEach(() => {
  sqs.reset();
  cloudWatch.reset();
  dynamo.reset();
  lambda.reset();
  lambda.on(GetFunctionConfigurationCommand).resolves({ Environment: { Variables: { KLAR_ENABLED: 'true', KOMFORTKASSE_ENABLED: 'true' } } });
  vi.mocked(fetchOrder).mockReset();
});

describe('orderbridge status --stage (AWS)', () => {
  it('reads SQS counts, CloudWatch ages, needs-attention, Klar, reconcile and DRY_RUN into the JSON document', async () => {
    // prepare
    stageQueues({ orders: [3, 1], ordersDlq: [2, 0] });
    cloudWatch.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => ({
      MetricDataResults: input.MetricDataQueries!.map((query) => {
        // the latest datapoint counts, whatever order CloudWatch lists them in
        const points: Record<string, [Date, number][]> = {
          age_orders: [[new Date(NOW - 120_000), 30], [new Date(NOW - 60_000), 42]],
          age_ordersDlq: [[new Date(NOW - 180_000), 7200]],
          age_klarCosts: [[new Date(NOW - 60_000), 0]],
          age_klarCostsDlq: [], // no datapoint in the window
        };
        const list = points[query.Id!] ?? [];
        return { Id: query.Id, Timestamps: list.map(([at]) => at), Values: list.map(([, v]) => v) };
      }),
    }));
    stageTable({
      attention: [attentionItem(501, 'komfortkasse', 'amount mismatch'), attentionItem(502, 'klar', 'unknown order'), attentionItem(503, 'komfortkasse', 'x')],
      states: [
        parkedState(501, 'komfortkasse', 'amount mismatch'),
        parkedState(502, 'klar', 'unknown order'),
        buildStateItem(503, { orderCode: 'P-503', kkState: 'submitted' }), // recovered meanwhile: not counted
      ],
      klarReadings: [{ pk: 'KLAR#STATE', sk: `READING#${ago(5 * 60_000)}`, at: ago(5 * 60_000), total: 812, lastSuccess: ago(2 * HOUR), lastFailure: ago(HOUR), failing: true, endpoint: '/transaction-costs/state', dryRun: true }],
      reconcileRuns: [reconcileRun(ago(3 * DAY))],
    });
    // act
    const result = await cli('status', '--stage', 'prod', '--json');
    // assess
    expect(result.code).toBe(0);
    const status = statusJsonSchema.parse(JSON.parse(result.stdout));
    expect(status.target).toMatch(/^AWS stage prod/);
    expect(status.queues).toEqual([
      { queue: 'orders', name: QUEUES.orders, deadLetter: false, visible: 3, inFlight: 1, oldestAgeSeconds: 42, oldestAgeFrom: 'cloudwatch', oldestAgeAt: new Date(NOW - 60_000).toISOString() },
      { queue: 'ordersDlq', name: QUEUES.ordersDlq, deadLetter: true, visible: 2, inFlight: 0, oldestAgeSeconds: 7200, oldestAgeFrom: 'cloudwatch', oldestAgeAt: new Date(NOW - 180_000).toISOString() },
      { queue: 'klarCosts', name: QUEUES.klarCosts, deadLetter: false, visible: 0, inFlight: 0, oldestAgeSeconds: 0, oldestAgeFrom: 'cloudwatch', oldestAgeAt: expect.any(String) },
      { queue: 'klarCostsDlq', name: QUEUES.klarCostsDlq, deadLetter: true, visible: 0, inFlight: 0, oldestAgeSeconds: null, oldestAgeFrom: 'cloudwatch' },
    ]);
    expect(status.needsAttention).toEqual({ orders: 2, komfortkasse: 1, klar: 1 });
    expect(status.klar).toMatchObject({ failing: true, lastReading: { total: 812, dryRun: true } });
    expect(status.reconcile.lastRun).toMatchObject({ trigger: 'schedule', checked: 240, enqueued: 3 });
    expect(status.dryRun).toEqual({ value: true, source: `as reported by poll-klar-state at ${status.klar.lastReading!.at}` });
    expect(status.needsALook).toEqual([
      expect.stringMatching(/^orderbridge-prod-orders-dlq\.fifo holds 2 message\(s\), the oldest 2h 0m old: .*redrive orders --dry-run/),
      expect.stringMatching(/^2 order\(s\) need attention \(komfortkasse 1, klar 1\)/),
      expect.stringMatching(/^Klar's import is failing/),
      expect.stringMatching(/^no reconcile in the last 2 days \(last completed /),
    ]);
    // one CloudWatch call for all four queues: the latest 15 minutes of ApproximateAgeOfOldestMessage by QueueName
    expect(cloudWatch).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    const query = cloudWatch.commandCalls(GetMetricDataCommand)[0]!.args[0].input;
    expect(query.EndTime!.getTime() - query.StartTime!.getTime()).toBe(15 * 60_000);
    expect(query.MetricDataQueries!.map((q) => q.MetricStat!.Metric)).toContainEqual({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: QUEUES.ordersDlq }],
    });
    // never measured by receiving: that would count as a delivery
    expect(sqs).not.toHaveReceivedCommand(ReceiveMessageCommand);
  });

  it('prints one screen with "no data" for a queue CloudWatch has no datapoint for, and what needs a look', async () => {
    // prepare
    stageQueues({ ordersDlq: [1, 0] });
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: 'age_ordersDlq', Timestamps: [new Date(NOW - 60_000)], Values: [95] }] });
    stageTable({ attention: [attentionItem(601, 'klar', 'unknown order')], states: [parkedState(601, 'klar', 'unknown order')], reconcileRuns: [reconcileRun(ago(HOUR))] });
    // act
    const result = await cli('status', '--stage', 'prod');
    // assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Orderbridge status — AWS stage prod/);
    expect(result.stdout).toMatch(/QUEUE\s+VISIBLE\s+IN FLIGHT\s+OLDEST/);
    expect(result.stdout).toMatch(/orderbridge-prod-orders\.fifo\s+0\s+0\s+no data/);
    expect(result.stdout).toMatch(/orderbridge-prod-orders-dlq\.fifo\s+1\s+0\s+1m 35s/);
    expect(result.stdout).toContain('Needs attention:  1 order(s) — komfortkasse 0, klar 1');
    expect(result.stdout).toContain('Klar import:      no reading yet');
    expect(result.stdout).toMatch(/Last reconcile:   \S+ \(schedule\) — 240 checked, 3 enqueued/);
    expect(result.stdout).toContain('DRY_RUN:          unknown — unknown: no Klar reading');
    expect(result.stdout).toMatch(/Needs a look \(2\):\n {2}! orderbridge-prod-orders-dlq\.fifo holds 1 message\(s\)/);
    expect(result.stdout).toMatch(/ {2}! 1 order\(s\) need attention/);
    expect(result.stdout).not.toMatch(/reconcile in the last 2 days/);
  });

  it('says all clear when nothing needs a look', async () => {
    stageQueues();
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    stageTable({
      klarReadings: [{ at: ago(60_000), total: 10, lastSuccess: ago(60_000), failing: false, endpoint: '/transaction-costs/state', dryRun: false }],
      reconcileRuns: [reconcileRun(ago(HOUR))],
    });
    const result = await cli('status', '--stage', 'prod');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Klar import:      ok — read /);
    expect(result.stdout).toMatch(/DRY_RUN:          false — as reported by poll-klar-state at /);
    expect(result.stdout.trimEnd()).toMatch(/All clear: nothing needs a look\.$/);
  });

  it("says Klar: off as the deployed order worker has it, and reads nothing into Klar's old readings", async () => {
    // prepare
    stageQueues();
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Environment: { Variables: { KLAR_ENABLED: 'false', KOMFORTKASSE_ENABLED: 'true' } } });
    stageTable({
      klarReadings: [{ at: ago(3 * DAY), total: 10, lastSuccess: ago(4 * DAY), lastFailure: ago(3 * DAY), failing: true, endpoint: '/transaction-costs/state', dryRun: false }],
      reconcileRuns: [reconcileRun(ago(HOUR))],
    });

    // act
    const text = await cli('status', '--stage', 'prod');
    const json = await cli('status', '--stage', 'prod', '--json');

    // assess
    expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'orderbridge-prod-sync-order' });
    expect(text.stdout).toMatch(/^Komfortkasse:\s+on — the deployed orderbridge-prod-sync-order$/m);
    expect(text.stdout).toMatch(/^Klar:\s+off \(KLAR_ENABLED=false\): nothing is sent to Klar/m);
    expect(text.stdout).toContain('Klar import:      not polled (Klar is off)');
    expect(text.stdout.trimEnd()).toMatch(/All clear: nothing needs a look\.$/);
    const status = statusJsonSchema.parse(JSON.parse(json.stdout));
    expect(status.sides).toEqual({ komfortkasse: true, klar: false, source: 'the deployed orderbridge-prod-sync-order' });
  });

  it('says a side is unknown when the deployed order worker cannot be read', async () => {
    // prepare
    stageQueues();
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    lambda.on(GetFunctionConfigurationCommand).rejects(Object.assign(new Error('not authorized to perform lambda:GetFunctionConfiguration'), { name: 'AccessDeniedException' }));
    stageTable({ reconcileRuns: [reconcileRun(ago(HOUR))] });

    // act
    const result = await cli('status', '--stage', 'prod', '--json');

    // assess
    expect(result.code).toBe(0);
    const status = statusJsonSchema.parse(JSON.parse(result.stdout));
    expect(status.sides).toMatchObject({ komfortkasse: null, klar: null, error: expect.stringContaining('AccessDeniedException') });
  });

  it('shows a failing shop API check (a 404 the API did not confirm) in the last day, and not an old or recovered one', async () => {
    // prepare
    stageQueues();
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const check = (item: Record<string, unknown>) => stageTable({ reconcileRuns: [reconcileRun(ago(HOUR))], shopApiCheck: { pk: 'SHOP#API', sk: 'CHECK', ...item } });
    const statusNow = async () => statusJsonSchema.parse(JSON.parse((await cli('status', '--stage', 'prod', '--json')).stdout));

    // act + assess: failing an hour ago
    check({ lastFailureAt: ago(HOUR), lastError: 'VersaCommerce 404: Not found', lastOkAt: ago(DAY) });
    const failing = await statusNow();
    expect(failing.shopApi).toEqual({ lastCheck: { lastFailureAt: ago(HOUR), lastError: 'VersaCommerce 404: Not found', lastOkAt: ago(DAY) }, failing: true });
    expect(failing.needsALook).toEqual([expect.stringMatching(/^the shop answered 404 for an order and its API did not answer either/)]);
    expect((await cli('status', '--stage', 'prod')).stdout).toContain(`Shop API:         FAILING — ${ago(HOUR)}: VersaCommerce 404: Not found`);

    // act + assess: confirmed since
    check({ lastFailureAt: ago(HOUR), lastError: 'VersaCommerce 404: Not found', lastOkAt: ago(60_000) });
    expect((await statusNow()).shopApi.failing).toBe(false);
    expect((await cli('status', '--stage', 'prod')).stdout).toContain(`Shop API:         ok — last confirmed ${ago(60_000)}, last failure ${ago(HOUR)}`);

    // act + assess: two days old, never confirmed
    check({ lastFailureAt: ago(2 * DAY), lastError: 'VersaCommerce 404: Not found' });
    expect((await statusNow()).needsALook).toEqual([]);
  });

  it('shows what it could read when CloudWatch refuses (exit 0), and names the refusal', async () => {
    // prepare
    stageQueues({ klarCostsDlq: [4, 0] });
    cloudWatch.on(GetMetricDataCommand).rejects(Object.assign(new Error('not authorized to perform cloudwatch:GetMetricData'), { name: 'AccessDenied' }));
    stageTable({ reconcileRuns: [reconcileRun(ago(HOUR))] });
    // act
    const result = await cli('status', '--stage', 'prod', '--json');
    // assess
    expect(result.code).toBe(0);
    const status = statusJsonSchema.parse(JSON.parse(result.stdout));
    const dlq = status.queues.find((q) => q.queue === 'klarCostsDlq')!;
    expect(dlq).toMatchObject({ visible: 4, inFlight: 0, oldestAgeSeconds: null, error: expect.stringContaining('AccessDenied') });
    expect(status.needsALook).toEqual(expect.arrayContaining([expect.stringMatching(/could not be read \(oldest age: AccessDenied/), expect.stringMatching(/klar-costs-dlq holds 4 message\(s\): /)]));
  });
});

describe('what status asks to look at', () => {
  const now = new Date(NOW);
  const clear: Omit<StatusJson, 'needsALook'> = {
    at: now.toISOString(),
    target: 'test',
    queues: [],
    needsAttention: { orders: 0, komfortkasse: 0, klar: 0 },
    klar: { lastReading: null, failing: null },
    reconcile: { lastRun: null, lastCompletedAt: ago(DAY) },
    sides: { komfortkasse: true, klar: true, source: 'test' },
    shopApi: { lastCheck: null, failing: false },
    dryRun: { value: false, source: 'test' },
  };
  const run = (overrides: Record<string, unknown>) => ({ at: ago(HOUR), since: ago(14 * DAY), checked: 1, enqueued: 0, needsAttention: 0, invalid: 0, dryRun: false, trigger: 'cli', ...overrides });

  it('nothing, when all is well', () => {
    expect(whatNeedsALook(clear, now)).toEqual([]);
  });

  it('a failed last run, but not staleness while a completed run is recent', () => {
    const look = whatNeedsALook({ ...clear, reconcile: { lastRun: run({ error: 'UpstreamError: VersaCommerce answered 503' }), lastCompletedAt: ago(DAY) } }, now);
    expect(look).toEqual([expect.stringMatching(/^the last reconcile \(\S+, cli\) failed: UpstreamError: VersaCommerce answered 503$/)]);
  });

  it('staleness after 2 days, and when no run completed at all', () => {
    expect(whatNeedsALook({ ...clear, reconcile: { lastRun: run({ dryRun: true }), lastCompletedAt: ago(2 * DAY + 60_000) } }, now)).toEqual([
      expect.stringMatching(/^no reconcile in the last 2 days \(last completed /),
    ]);
    expect(whatNeedsALook({ ...clear, reconcile: { lastRun: null, lastCompletedAt: null } }, now)).toEqual([
      expect.stringMatching(/^no reconcile in the last 2 days \(none completed on record\)/),
    ]);
  });

  it("Klar's failing import, but not once Klar is switched off", () => {
    // prepare
    const reading = { at: ago(HOUR), endpoint: '/transaction-costs/state', lastSuccess: ago(2 * HOUR), lastFailure: ago(HOUR), failing: true };
    const failing = { ...clear, klar: { lastReading: reading, failing: true } };

    // act
    const on = whatNeedsALook(failing, now);
    const off = whatNeedsALook({ ...failing, sides: { ...failing.sides, klar: false } }, now);

    // assess
    expect(on).toEqual([expect.stringMatching(/^Klar's import is failing/)]);
    expect(off).toEqual([]);
  });

  it('a shop API that did not answer after a 404, until a later check succeeds', () => {
    const failing = { lastFailureAt: ago(HOUR), lastError: 'VersaCommerce 404: Not found' };
    expect(whatNeedsALook({ ...clear, shopApi: { lastCheck: failing, failing: true } }, now)).toEqual([
      expect.stringMatching(/^the shop answered 404 for an order and its API did not answer either \(\S+: VersaCommerce 404: Not found\): check VERSACOMMERCE_BASE_URL .*redrive orders/),
    ]);
    expect(whatNeedsALook({ ...clear, shopApi: { lastCheck: { ...failing, lastOkAt: ago(60_000) }, failing: false } }, now)).toEqual([]);
  });

  it('a source queue with messages is normal; a dead-letter queue with one is not', () => {
    const queue = (name: 'orders' | 'ordersDlq', visible: number) => ({ queue: name, name, deadLetter: name === 'ordersDlq', visible, inFlight: 0, oldestAgeSeconds: 5, oldestAgeFrom: 'emulator' as const });
    expect(whatNeedsALook({ ...clear, queues: [queue('orders', 50), queue('ordersDlq', 0)] }, now)).toEqual([]);
    expect(whatNeedsALook({ ...clear, queues: [queue('orders', 0), queue('ordersDlq', 1)] }, now)).toHaveLength(1);
  });

  it.each([
    [0, '0s'],
    [59, '59s'],
    [95, '1m 35s'],
    [7200, '2h 0m'],
    [3 * 86_400 + 4 * 3600 + 59, '3d 4h'],
  ])('formats an age of %is as %s', (seconds, text) => {
    expect(formatAge(seconds)).toBe(text);
  });
});

describe('orderbridge replay --needs-attention --stage (AWS)', () => {
  const parked = [
    ...Array.from({ length: 8 }, (_, i) => ({ id: 700 + i, side: 'komfortkasse' as const })),
    ...Array.from({ length: 4 }, (_, i) => ({ id: 800 + i, side: 'klar' as const })),
  ];
  const content = (): TableContent => ({
    attention: parked.map(({ id, side }) => attentionItem(id, side, `rejected ${id}`)),
    states: parked.map(({ id, side }) => parkedState(id, side, `rejected ${id}`)),
  });

  it('re-queues every parked order through the replay path, at most five at a time, and reports a failure per target with exit 1', async () => {
    // prepare: the shop has every order but one (vanished: 404); SQS refuses the message of another
    stageQueues();
    stageTable(content());
    sqs.on(SendMessageCommand).callsFake(() => ({ MessageId: `m-${Math.random()}` }));
    sqs.on(SendMessageCommand, { MessageGroupId: '802' }).rejects(Object.assign(new Error('not allowed to send'), { name: 'AccessDenied' }));
    let inFlight = 0;
    let maxInFlight = 0;
    vi.mocked(fetchOrder).mockImplementation(async (orderId) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 15));
      inFlight--;
      if (orderId === 803) throw new OrderVanishedError(orderId);
      const raw = buildVersaCommerceOrder({ id: orderId, code: `P-${orderId}` });
      return { order: buildParsedOrder({ id: orderId, code: `P-${orderId}` }), raw };
    });
    // act
    const result = await cli('replay', '--needs-attention', '--stage', 'prod');
    // assess
    expect(result.code).toBe(1);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(5);
    const sent = sqs
      .commandCalls(SendMessageCommand)
      .map((call) => call.args[0].input)
      .filter((input) => input.MessageGroupId !== '802');
    expect(sent).toHaveLength(11);
    for (const message of sent) {
      const body = JSON.parse(message.MessageBody!);
      expect(message.QueueUrl).toBe(urlOf(QUEUES.orders));
      expect(message.MessageGroupId).toBe(String(body.orderId));
      // the order the shop answers 404 for goes without a snapshot: the worker confirms the deletion
      if (body.orderId === 803) expect(body).not.toHaveProperty('order');
      else expect(body).toMatchObject({ kind: 'order-changed', source: 'replay', order: { id: body.orderId } });
    }
    expect(new Set(sent.map((m) => m.MessageDeduplicationId)).size).toBe(11);
    expect(result.stderr).toMatch(/^replay: 12\/12 re-queued, 1 failed$/m);
    expect(result.stdout).toContain('re-queued 11 of 12 order(s) in needs-attention on orders.fifo; 1 failed');
    expect(result.stdout).toMatch(/ {2}komfortkasse\s+8 re-queued\n/);
    expect(result.stdout).toMatch(/ {2}klar\s+3 re-queued, 1 failed\n/);
    expect(result.stdout).toContain('1 the shop answers 404 for went without a snapshot; the order worker confirms the deletion and closes them');
    expect(result.stdout).toMatch(/Not re-queued \(still parked\):\n.*\nP-802\s+802\s+klar\s+AccessDenied: not allowed to send/);
  });

  it('--target klar takes only the Klar-parked orders; --dry-run lists them and enqueues nothing', async () => {
    // prepare
    stageQueues();
    stageTable(content());
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    vi.mocked(fetchOrder).mockImplementation(async (orderId) => ({ order: buildParsedOrder({ id: orderId, code: `P-${orderId}` }), raw: buildVersaCommerceOrder({ id: orderId }) }));
    // act
    const dry = await cli('replay', '--needs-attention', '--target', 'klar', '--dry-run', '--stage', 'prod');
    // assess
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry run: would re-queue 4 order\(s\) parked on klar \(klar 4\); nothing enqueued\n/);
    for (const { id, side } of parked) {
      if (side === 'klar') expect(dry.stdout).toMatch(new RegExp(`P-${id}\\s+${id}\\s+klar\\s+rejected ${id}`));
      else expect(dry.stdout).not.toContain(`P-${id}`);
    }
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(fetchOrder).not.toHaveBeenCalled();
    // act
    const real = await cli('replay', '--needs-attention', '--target', 'klar', '--stage', 'prod');
    // assess
    expect(real.code).toBe(0);
    const ids = sqs.commandCalls(SendMessageCommand).map((call) => JSON.parse(call.args[0].input.MessageBody!).orderId);
    expect(ids.sort()).toEqual([800, 801, 802, 803]);
    expect(real.stdout).toContain('re-queued 4 of 4 order(s) parked on klar on orders.fifo; 0 failed');
  });

  it('nothing parked: says so, exit 0', async () => {
    stageQueues();
    stageTable({});
    const result = await cli('replay', '--needs-attention', '--stage', 'prod');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('No order in needs-attention; nothing to re-queue.\n');
  });

  it.each([
    [['replay', '196-083-565', '--needs-attention'], /replay takes either <orderCode> or --needs-attention, not both/],
    [['replay', '196-083-565', '--target', 'klar'], /--target only goes with --needs-attention/],
    [['replay', '--target', 'klar'], /--target only goes with --needs-attention/],
    [['replay', '196-083-565', '--dry-run'], /--dry-run only goes with --needs-attention/],
    [['replay', '--needs-attention', '--target', 'shop'], /unknown --target "shop": use komfortkasse or klar/],
    [['replay'], /replay needs <orderCode> or --needs-attention/],
    [['status', 'now'], /status takes no arguments/],
  ])('%j is a usage error (exit 2) before connecting', async (args, message) => {
    const result = await cli(...args, '--stage', 'prod');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage: orderbridge (replay|status) /);
    expect(sqs).not.toHaveReceivedAnyCommand();
  });
});

describe('orderbridge redrive orders --stage (AWS): privacy follows the data', () => {
  it("drops the snapshot of a forgotten order's message, keeps the others byte for byte, with one batched record read", async () => {
    // prepare: two parked messages with snapshots; order 901 was forgotten since
    stageQueues();
    const body = (orderId: number) =>
      JSON.stringify({ kind: 'order-changed', orderId, orderCode: `P-${orderId}`, order: buildVersaCommerceOrder({ id: orderId, customer_email: 'someone@example.org' }), source: 'webhook', receivedAt: ago(HOUR), deliveryId: `d-${orderId}`, correlationId: `c-${orderId}` });
    const parkedMessages = [901, 902].map((orderId) => ({ MessageId: `dlq-${orderId}`, ReceiptHandle: `rh-${orderId}`, Body: body(orderId), Attributes: { MessageGroupId: String(orderId), ApproximateReceiveCount: '5' } }));
    sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: parkedMessages }).resolves({ Messages: [] });
    sqs.on(SendMessageBatchCommand).callsFake((input) => ({ Successful: input.Entries.map((e: { Id: string }) => ({ Id: e.Id, MessageId: `new-${e.Id}` })) }));
    sqs.on(DeleteMessageBatchCommand).resolves({});
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({});
    stageTable({ states: [buildStateItem(901, { orderCode: 'P-901', forgottenAt: ago(DAY) }), buildStateItem(902, { orderCode: 'P-902' })] });
    // act
    const result = await cli('redrive', 'orders', '--stage', 'prod');
    // assess
    expect(result.code).toBe(0);
    const [batch] = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input);
    const byOrder = new Map(batch!.Entries!.map((e) => [JSON.parse(e.MessageBody!).orderId as number, e]));
    const forgotten = JSON.parse(byOrder.get(901)!.MessageBody!);
    expect(forgotten).not.toHaveProperty('order');
    expect(forgotten).toMatchObject({ kind: 'order-changed', orderId: 901, deliveryId: 'd-901' });
    expect(byOrder.get(901)!.MessageBody).not.toContain('example.org');
    expect(byOrder.get(902)!.MessageBody).toBe(body(902));
    expect(byOrder.get(901)!.MessageGroupId).toBe('901');
    expect(dynamo).toHaveReceivedCommandTimes(BatchGetCommand, 1);
    // sent before deleted
    const kinds = sqs.calls().map((call) => (call.args[0] as object).constructor.name);
    expect(kinds.indexOf('SendMessageBatchCommand')).toBeLessThan(kinds.indexOf('DeleteMessageBatchCommand'));
  });

  it('sends nothing when the records cannot be read, and hands the messages back', async () => {
    stageQueues();
    const message = { MessageId: 'dlq-1', ReceiptHandle: 'rh-1', Body: JSON.stringify({ kind: 'order-changed', orderId: 1, order: { id: 1 } }), Attributes: { MessageGroupId: '1' } };
    sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [message] }).resolves({ Messages: [] });
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({});
    dynamo.on(BatchGetCommand).rejects(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' }));
    const result = await cli('redrive', 'orders', '--stage', 'prod');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ProvisionedThroughputExceededException/);
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, { Entries: [{ Id: '0', ReceiptHandle: 'rh-1', VisibilityTimeout: 0 }] });
  });
});
