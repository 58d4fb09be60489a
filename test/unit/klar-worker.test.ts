import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { BatchGetCommand, DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetSecrets, reloadConfig } from '../../lib/config/index.ts';
import { klarCostMessageFor } from '../../lib/domain/messages.ts';
import { orderLogger } from '../../lib/observability/logger.ts';
import { metrics } from '../../lib/observability/metrics.ts';
import { resetDocumentClient } from '../../lib/store/dynamo.ts';
import { uploadKlarCosts } from '../../lib/sync/klar.ts';
import { buildParsedOrder, buildStateItem } from '../factories/sync-state.ts';

// The Klar worker (lib/sync/klar.ts) on its requests: DynamoDB mocked, Klar a small HTTP
// server answering as each test says, SSM mocked. What happens to a record when a POST may
// have landed unconfirmed, and when a setting or secret cannot be read.
const dynamo = mockClient(DynamoDBDocumentClient);
const ssm = mockClient(SSMClient);
const TABLE = 'orderbridge-test-history';
const log = orderLogger({ correlationId: 'klar-worker-test' });

/** Klar: answers each POST with the next status of `answers` (200 VALID when they run out). */
let answers: number[] = [];
let posts = 0;
let server: Server;
let klarUrl: string;
let saved: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      const status = answers.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status === 200 ? { status: 'VALID' } : { error: 'upstream trouble' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  klarUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  saved = { ...process.env };
});
afterAll(async () => {
  dynamo.restore();
  ssm.restore();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  Object.assign(process.env, {
    AWS_REGION: 'eu-central-1',
    HISTORY_TABLE_NAME: TABLE,
    KLAR_BASE_URL: klarUrl,
    KLAR_API_TOKEN: 'klar-test-token',
    KLAR_ENABLED: 'true',
    DRY_RUN: 'false',
    UPSTREAM_RETRY_LIMIT: '0',
    KLAR_TOTAL_TIMEOUT_MS: '2000',
  });
  reloadConfig();
  forgetSecrets();
  resetDocumentClient();
  dynamo.reset();
  ssm.reset();
  answers = [];
  posts = 0;
  dynamo.on(UpdateCommand).resolves({});
  dynamo.on(TransactWriteCommand).resolves({});
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
  reloadConfig();
  forgetSecrets();
});

/** A cost message for order `id` (PayPal, so the cost is never 0) of the given copy. */
const cost = (id: number, total: string, updatedAt: string) =>
  klarCostMessageFor(buildParsedOrder({ id, code: `KW-${id}`, payment_type: 'paypal', total, updated_at: updatedAt }), {
    receivedAt: new Date().toISOString(),
    correlationId: `c-${id}`,
  });
/** Klar holds an older cost (1.00) for the order, as another batch recorded it (version 4). */
const recorded = (id: number) =>
  buildStateItem(id, { orderCode: `KW-${id}`, klarState: 'uploaded', klarCosts: 1, klarCurrency: 'EUR', klarSourceUpdatedAt: '2026-03-01T10:00:00+01:00', klarVersion: 4 });
const records = (...items: Record<string, unknown>[]) => ({ Responses: { [TABLE]: items } });
/** Another batch recorded a cost between our read and our write: our compare-and-set fails. */
const lostRace = () =>
  new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: {}, CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }] });
/** The markKlarUnconfirmed writes: pending, version bumped, for these orders. */
const unconfirmedMarks = () =>
  dynamo
    .commandCalls(UpdateCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.UpdateExpression?.startsWith('SET klarState = :pending'))
    .map((input) => input.Key?.pk);
/** The sum a metric was counted with, from the calls of a spy on `metrics.addMetric`. */
const metricCount = (calls: unknown[][], name: string) =>
  calls.filter((call) => call[0] === name).reduce((sum: number, call) => sum + Number(call[2] ?? 1), 0);

describe('finding 1: a Klar POST that may have landed without a confirming compare-and-set', () => {
  it('an unclear failure (a 502 after the request went out) marks the order unconfirmed before its record fails', async () => {
    // prepare
    dynamo.on(BatchGetCommand).resolves(records(recorded(501)));
    answers = [502];
    // act
    const result = await uploadKlarCosts([{ recordId: 'r-501', message: cost(501, '100.00', '2026-03-02T10:00:00+01:00') }], { log });
    // assess
    expect(posts).toBe(1);
    expect(unconfirmedMarks()).toEqual(['ORDER#501']);
    expect(result.failed).toEqual(['r-501']);
    expect(result.needsAttention).toBe(0);
  });

  it('a refusal that cannot have landed (429) fails the record without marking it', async () => {
    // prepare
    dynamo.on(BatchGetCommand).resolves(records(recorded(502)));
    answers = [429];
    // act
    const result = await uploadKlarCosts([{ recordId: 'r-502', message: cost(502, '100.00', '2026-03-02T10:00:00+01:00') }], { log });
    // assess
    expect(unconfirmedMarks()).toEqual([]);
    expect(result.failed).toEqual(['r-502']);
  });

  it('a repair round that cannot finish before the deadline does not start: the lost orders are marked unconfirmed, then fail', async () => {
    // prepare: the first POST lands, its compare-and-set loses; 3 s are left (a round may take 2 s + 2 s)
    dynamo.on(BatchGetCommand).resolves(records(recorded(503)));
    dynamo.on(TransactWriteCommand).rejects(lostRace());
    // act
    const result = await uploadKlarCosts([{ recordId: 'r-503', message: cost(503, '100.00', '2026-03-02T10:00:00+01:00') }], { log, remainingMs: () => 3_000 });
    // assess: one POST, no repair round, the order marked before its record fails
    expect(posts).toBe(1);
    expect(dynamo.commandCalls(BatchGetCommand)).toHaveLength(1);
    expect(unconfirmedMarks()).toEqual(['ORDER#503']);
    expect(result.failed).toEqual(['r-503']);
  });

  it('a repair round that fails (DynamoDB unreachable) marks what was posted before the batch fails', async () => {
    // prepare: the first POST lands, its compare-and-set loses, the repair round cannot read the record
    dynamo.on(BatchGetCommand).resolvesOnce(records(recorded(504))).rejects(Object.assign(new Error('connect ECONNREFUSED'), { name: 'NetworkingError' }));
    dynamo.on(TransactWriteCommand).rejects(lostRace());
    // act
    const act = uploadKlarCosts([{ recordId: 'r-504', message: cost(504, '100.00', '2026-03-02T10:00:00+01:00') }], { log, remainingMs: () => 60_000 });
    // assess
    await expect(act).rejects.toThrow(/ECONNREFUSED/);
    expect(posts).toBe(1);
    expect(unconfirmedMarks()).toEqual(['ORDER#504']);
  });
});

describe('finding 2: a setting or secret that cannot be read', () => {
  it('an SSM read failure (throttling) fails the records, counted and alarmed, and parks nothing', async () => {
    // prepare: the token comes from SSM, which throttles
    delete process.env.KLAR_API_TOKEN;
    process.env.KLAR_API_TOKEN_PARAMETER = '/orderbridge/test/klar-api-token';
    reloadConfig();
    forgetSecrets();
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: {} }));
    dynamo.on(BatchGetCommand).resolves(records());
    const added = vi.spyOn(metrics, 'addMetric');
    // act
    const result = await uploadKlarCosts(
      [
        { recordId: 'r-601', message: cost(601, '10.00', '2026-03-02T10:00:00+01:00') },
        { recordId: 'r-602', message: cost(602, '20.00', '2026-03-02T10:00:00+01:00') },
      ],
      { log },
    );
    // assess: both records fail (SQS retries them); no needs-attention, no Klar call
    expect(result.failed.sort()).toEqual(['r-601', 'r-602']);
    expect(result.needsAttention).toBe(0);
    expect(dynamo).not.toHaveReceivedCommand(TransactWriteCommand);
    expect(posts).toBe(0);
    expect(metricCount(added.mock.calls, 'configReadFailed')).toBe(1);
    expect(metricCount(added.mock.calls, 'failedTransient')).toBe(2);
  }, 20_000);
});
