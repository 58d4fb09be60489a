import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { reloadConfig } from '../../lib/config/index.ts';
import { parseEnv, sideSwitchOn } from '../../lib/config/env.ts';
import { ConfigError } from '../../lib/domain/errors.ts';
import { klarCostMessageFor, type OrderChangedMessage } from '../../lib/domain/messages.ts';
import { orderLogger } from '../../lib/observability/logger.ts';
import { resetSqsClient } from '../../lib/queue/sqs.ts';
import { resetDocumentClient } from '../../lib/store/dynamo.ts';
import { KLAR_OFF_REASON, uploadKlarCosts } from '../../lib/sync/klar.ts';
import { syncOrder } from '../../lib/sync/sync-order.ts';
import { SERVERLESS_YML, readStackDefinition } from '../../local/infra.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { buildParsedOrder } from '../factories/sync-state.ts';

// KLAR_ENABLED / KOMFORTKASSE_ENABLED: the configuration, the schedule the local stack reads
// from serverless.yml, and what the workers do (and do not send) with a side switched off.

function configErrorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseEnv(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the side switches in the configuration', () => {
  it('has both sides on by default', () => {
    // act
    const env = parseEnv({});

    // assess
    expect(env.KLAR_ENABLED).toBe(true);
    expect(env.KOMFORTKASSE_ENABLED).toBe(true);
  });

  it.each([
    ['false', false],
    ['0', false],
    [' FALSE ', false],
    ['true', true],
    ['1', true],
  ])('reads KLAR_ENABLED=%j as %s', (value, expected) => {
    // act
    const env = parseEnv({ KLAR_ENABLED: value });

    // assess
    expect(env.KLAR_ENABLED).toBe(expected);
    expect(env.KOMFORTKASSE_ENABLED).toBe(true);
  });

  it('refuses a value osls could not package, naming the variable', () => {
    // act
    const error = configErrorOf({ KOMFORTKASSE_ENABLED: 'maybe' });

    // assess
    expect(error.variables).toEqual(['KOMFORTKASSE_ENABLED']);
    expect(error.message).toContain('KOMFORTKASSE_ENABLED');
  });

  it('refuses both sides off, naming both variables', () => {
    // act
    const error = configErrorOf({ KLAR_ENABLED: 'false', KOMFORTKASSE_ENABLED: '0' });

    // assess
    expect(error.variables).toEqual(expect.arrayContaining(['KLAR_ENABLED', 'KOMFORTKASSE_ENABLED']));
    expect(error.message).toMatch(/KLAR_ENABLED and KOMFORTKASSE_ENABLED are both false/);
  });

  it('reads another process environment the same way (unset = on, refused = undefined)', () => {
    // act
    const values = [undefined, 'false', '1', 'off'].map(sideSwitchOn);

    // assess
    expect(values).toEqual([true, false, true, undefined]);
  });
});

describe('the Klar poller schedule as the local stack reads serverless.yml', () => {
  const pollerSchedule = (env: NodeJS.ProcessEnv) =>
    readStackDefinition({ env })
      .functions.find((fn) => fn.name === 'poll-klar-state')!
      .events.find((event) => event.type === 'schedule');

  it('is enabled with Klar on and disabled with KLAR_ENABLED=false', () => {
    // act
    const on = pollerSchedule({});
    const off = pollerSchedule({ KLAR_ENABLED: 'false' });

    // assess
    expect(on).toMatchObject({ type: 'schedule', enabled: true });
    expect(off).toMatchObject({ type: 'schedule', enabled: false });
  });

  it('keeps the reconcile schedule whatever the Klar switch says', () => {
    // act
    const reconcile = readStackDefinition({ env: { KLAR_ENABLED: '0' } }).functions.find((fn) => fn.name === 'reconcile')!;

    // assess
    expect(reconcile.events).toEqual([expect.objectContaining({ type: 'schedule', enabled: true })]);
  });

  it('fails on a switch value strToBool refuses, as packaging does', () => {
    // prepare
    const dir = mkdtempSync(join(tmpdir(), 'orderbridge-sides-'));
    const file = join(dir, 'serverless.yml');
    writeFileSync(file, readFileSync(SERVERLESS_YML, 'utf8'));

    try {
      // act
      const read = () => readStackDefinition({ file, env: { KLAR_ENABLED: 'maybe' } });

      // assess
      expect(read).toThrow(/strToBool expects true, false, 1 or 0, got "maybe"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the workers with a side switched off', () => {
  const dynamo = mockClient(DynamoDBDocumentClient);
  const sqs = mockClient(SQSClient);
  const fetchSpy = vi.spyOn(globalThis, 'fetch');
  let saved: NodeJS.ProcessEnv = {};

  const switchSides = (sides: { KLAR_ENABLED: string; KOMFORTKASSE_ENABLED: string }) => {
    Object.assign(process.env, sides);
    reloadConfig();
  };
  const message = (): OrderChangedMessage => ({
    kind: 'order-changed',
    orderId: 100,
    orderCode: '196-083-565',
    order: buildVersaCommerceOrder({ payment_type: 'cod' }),
    source: 'webhook',
    receivedAt: '2024-05-01T08:00:01.000Z',
    deliveryId: 'delivery-1',
    correlationId: 'corr-1',
  });
  const log = orderLogger({ orderId: 100, orderCode: '196-083-565', correlationId: 'corr-1' });

  beforeAll(() => {
    process.env.AWS_REGION ??= 'eu-central-1';
    process.env.KLAR_COSTS_QUEUE_URL = 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-klar-costs';
    // Any upstream call would go here and fail the test.
    process.env.KOMFORTKASSE_BASE_URL = 'http://127.0.0.1:9/api/v2';
    process.env.KLAR_BASE_URL = 'http://127.0.0.1:9';
    saved = { ...process.env };
    resetDocumentClient();
    resetSqsClient();
  });
  beforeEach(() => {
    dynamo.reset();
    sqs.reset();
    fetchSpy.mockClear();
    dynamo.on(GetCommand).resolves({});
    dynamo.on(BatchWriteCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  });
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    reloadConfig();
  });
  afterAll(() => {
    dynamo.restore();
    sqs.restore();
    fetchSpy.mockRestore();
    resetDocumentClient();
    resetSqsClient();
  });

  it('Komfortkasse off: forwards the Klar cost and neither leases, records nor calls Komfortkasse', async () => {
    // prepare
    switchSides({ KLAR_ENABLED: 'true', KOMFORTKASSE_ENABLED: 'false' });

    // act
    const result = await syncOrder(message(), { log });

    // assess
    expect(result).toEqual({ komfortkasse: 'off', klarForwarded: true });
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, { QueueUrl: process.env.KLAR_COSTS_QUEUE_URL });
    // one read of the record; no lease (UpdateItem) and no settle (TransactWriteItems)
    expect(dynamo.calls().map((call) => call.args[0].constructor.name)).toEqual(['GetCommand']);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('Klar off: forwards nothing to klar-costs', async () => {
    // prepare
    switchSides({ KLAR_ENABLED: 'false', KOMFORTKASSE_ENABLED: 'true' });
    // DRY_RUN: the Komfortkasse side plans, claims and records without a network call
    process.env.DRY_RUN = 'true';
    reloadConfig();
    dynamo.onAnyCommand().resolves({});
    dynamo.on(GetCommand).resolves({});

    // act
    const result = await syncOrder(message(), { log });

    // assess
    expect(result.klarForwarded).toBe(false);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('Klar off: a cost that still reaches the Klar worker is recorded as not applicable, not uploaded, and leaves the queue', async () => {
    // prepare
    switchSides({ KLAR_ENABLED: 'false', KOMFORTKASSE_ENABLED: 'true' });
    const cost = klarCostMessageFor(buildParsedOrder(), { receivedAt: '2024-05-01T08:00:01.000Z', correlationId: 'corr-1' });

    // act
    const result = await uploadKlarCosts([{ recordId: 'r-1', message: cost }], { log });

    // assess
    expect(result).toMatchObject({ failed: [], uploaded: 0, skipped: 1, requests: 0 });
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(dynamo).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    const [write] = dynamo.commandCalls(BatchWriteCommand);
    const items = Object.values(write!.args[0].input.RequestItems ?? {}).flat();
    expect(items).toHaveLength(1);
    expect(items[0]!.PutRequest?.Item).toMatchObject({ target: 'klar', action: 'upload', outcome: 'not-applicable', error: KLAR_OFF_REASON });
  });
});
