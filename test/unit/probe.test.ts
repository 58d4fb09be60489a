import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ProbeMessage } from '../../lib/domain/probe.ts';
import { asProbe } from '../../lib/sync/probe.ts';
import { buildSqsRecord } from '../factories/sqs.ts';

// The order worker's whole handling of `orderbridge check`'s probe, through the real
// sync-order handler: one history item, no upstream call, nothing forwarded to Klar.

vi.hoisted(() => {
  Object.assign(process.env, {
    AWS_REGION: 'eu-central-1',
    HISTORY_TABLE_NAME: 'orderbridge-test-history',
    ORDERS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-orders.fifo',
    KLAR_COSTS_QUEUE_URL: 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-klar-costs',
  });
});
const { handler } = await import('../../functions/sync-order.ts');

const dynamo = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
const context = { awsRequestId: 'lambda-req-1', functionName: 'sync-order', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

const probe = (id: string): ProbeMessage => ({ kind: 'probe', probeId: id, receivedAt: '2026-12-06T18:00:00.000Z', correlationId: `check-${id}` });
const batch = (...bodies: unknown[]): SQSEvent => ({ Records: bodies.map((body, i) => buildSqsRecord({ body: JSON.stringify(body), groupId: `probe-${i}` })) });
const invoke = (event: SQSEvent) => (handler as unknown as (e: SQSEvent, c: Context) => Promise<SQSBatchResponse>)(event, context);

let fetchSpy: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  fetchSpy = vi.spyOn(globalThis, 'fetch');
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => {
  dynamo.restore();
  sqs.restore();
});

describe('the order worker and a probe', () => {
  it('records PROBE#<id> once and calls nothing else: no upstream, no Klar cost, no order read', async () => {
    // prepare
    dynamo.on(PutCommand).resolves({});
    // act
    const result = await invoke(batch(probe('7c0e2d4a-1b3f-4e5d-8a9b-0c1d2e3f4a5b')));
    // assess
    expect(result).toEqual({ batchItemFailures: [] });
    expect(dynamo).toHaveReceivedCommandTimes(PutCommand, 1);
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'orderbridge-test-history',
      Item: expect.objectContaining({ pk: 'PROBE#7c0e2d4a-1b3f-4e5d-8a9b-0c1d2e3f4a5b', sk: 'PROBE', probeId: '7c0e2d4a-1b3f-4e5d-8a9b-0c1d2e3f4a5b', expiresAt: expect.any(Number) }),
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    expect(dynamo).not.toHaveReceivedCommand(GetCommand);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('a redelivered probe finds its record and is done; a failed write fails the record (SQS retries it)', async () => {
    // prepare
    const exists = Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
    dynamo.on(PutCommand).callsFake((input) => {
      throw input.Item.probeId === 'again-0001' ? exists : new Error('DynamoDB is down');
    });
    const event = batch(probe('again-0001'), probe('broken-0001'));
    // act
    const result = await invoke(event);
    // assess
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: event.Records[1]!.messageId }]);
  });

  it('only a probe message is taken for one: an order message or garbage is not', () => {
    expect(asProbe(probe('7c0e2d4a-1b3f'))).toMatchObject({ probeId: '7c0e2d4a-1b3f' });
    expect(asProbe({ kind: 'order-changed', orderId: 1, source: 'webhook', receivedAt: '2026-12-06T18:00:00.000Z', deliveryId: 'd', correlationId: 'c' })).toBeUndefined();
    expect(asProbe({ kind: 'probe', probeId: '../../etc', receivedAt: '2026-12-06T18:00:00.000Z', correlationId: 'c' })).toBeUndefined();
    expect(asProbe(undefined)).toBeUndefined();
  });
});
