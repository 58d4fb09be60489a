import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reloadConfig } from '../../lib/config/index.ts';
import { handBackOrders } from '../../lib/queue/orders.ts';
import { resetSqsClient } from '../../lib/queue/sqs.ts';
import { buildFifoBatch } from '../factories/sqs.ts';

// An order an upstream throttled goes back to orders.fifo for about its Retry-After
// (ChangeMessageVisibility on its receipt handle), not for the whole visibility timeout.

const QUEUE_URL = 'https://sqs.eu-central-1.amazonaws.com/123456789012/orderbridge-test-orders.fifo';
const saved = { ORDERS_QUEUE_URL: process.env.ORDERS_QUEUE_URL, AWS_REGION: process.env.AWS_REGION };
const sqs = mockClient(SQSClient);

beforeAll(() => {
  Object.assign(process.env, { ORDERS_QUEUE_URL: QUEUE_URL, AWS_REGION: 'eu-central-1' });
  reloadConfig();
  resetSqsClient();
});
afterAll(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  reloadConfig();
  resetSqsClient();
});
beforeEach(() => {
  sqs.reset();
  sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
});

const handles = (count: number) => buildFifoBatch(Array.from({ length: count }, (_, i) => ['A', `m${i}`] as [string, string])).map((r) => r.receiptHandle);

describe('handBackOrders', () => {
  it('sets the visibility of each receipt handle to the Retry-After in whole seconds, rounded up', async () => {
    // prepare
    const receipts = handles(2);

    // act
    const refused = await handBackOrders(receipts, 1200);

    // assess
    expect(refused).toEqual([]);
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, {
      QueueUrl: QUEUE_URL,
      Entries: [
        { Id: '0', ReceiptHandle: receipts[0], VisibilityTimeout: 2 },
        { Id: '1', ReceiptHandle: receipts[1], VisibilityTimeout: 2 },
      ],
    });
  });

  it.each([
    [0, 1],
    [999, 1],
    [86_400_000, 43_200],
  ])('keeps %i ms within what SQS allows (%i s)', async (afterMs, seconds) => {
    // prepare
    const receipts = handles(1);

    // act
    await handBackOrders(receipts, afterMs);

    // assess
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand)[0]!.args[0].input.Entries![0]!.VisibilityTimeout).toBe(seconds);
  });

  it('sends ten entries per request and returns the receipt handles SQS refused', async () => {
    // prepare
    const receipts = handles(12);
    sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .resolvesOnce({ Successful: [], Failed: [{ Id: '3', Code: 'ReceiptHandleIsInvalid', SenderFault: true }] })
      .resolves({ Successful: [], Failed: [] });

    // act
    const refused = await handBackOrders(receipts, 1000);

    // assess
    const calls = sqs.commandCalls(ChangeMessageVisibilityBatchCommand).map((call) => call.args[0].input.Entries!.length);
    expect(calls).toEqual([10, 2]);
    expect(refused).toEqual([receipts[3]]);
  });
});
