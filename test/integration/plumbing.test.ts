import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStack } from '../../local/stack.ts';
import { bootStack, peekMessages, waitFor } from './harness.ts';

// The local stack's own plumbing, with recording handlers in place of the real workers.
describe('local stack plumbing (real DynamoDB Local and SQS emulator)', () => {
  let stack: RunningStack;
  const received: Record<string, SQSEvent[]> = { 'sync-order': [], 'upload-klar-costs': [] };
  const poison = new Set<string>();

  const recorder = (name: string) => async (event: SQSEvent): Promise<SQSBatchResponse> => {
    received[name]!.push(event);
    return { batchItemFailures: event.Records.filter((r) => poison.has(r.body)).map((r) => ({ itemIdentifier: r.messageId })) };
  };

  beforeAll(async () => {
    stack = await bootStack({
      visibilityTimeoutSeconds: 1,
      retryDelaySeconds: undefined,
      handlers: { 'sync-order': recorder('sync-order'), 'upload-klar-costs': recorder('upload-klar-costs') },
    });
  });
  afterAll(async () => stack?.stop());

  const records = (name: string) => received[name]!.flatMap((event) => event.Records);

  it('delivers a message on orders.fifo to sync-order as a real SQS event', async () => {
    // prepare
    const body = JSON.stringify({ probe: 'orders' });
    // act
    await stack.sqsClient.send(
      new SendMessageCommand({ QueueUrl: stack.queues.orders.url, MessageBody: body, MessageGroupId: '42', MessageDeduplicationId: 'probe-1', MessageAttributes: { correlationId: { DataType: 'String', StringValue: 'c-1' } } }),
    );
    // assess
    const record = await waitFor(() => records('sync-order').find((r) => r.body === body), 'the orders message');
    expect(record.eventSource).toBe('aws:sqs');
    expect(record.eventSourceARN).toBe(stack.queues.orders.arn);
    expect(record.attributes.MessageGroupId).toBe('42');
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(record.messageAttributes.correlationId?.stringValue).toBe('c-1');
    expect(record.receiptHandle).toBeTruthy();
  });

  it('delivers a message on klar-costs to upload-klar-costs as a real SQS event', async () => {
    const body = JSON.stringify({ probe: 'klar' });
    await stack.sqsClient.send(new SendMessageCommand({ QueueUrl: stack.queues.klarCosts.url, MessageBody: body }));
    const record = await waitFor(() => records('upload-klar-costs').find((r) => r.body === body), 'the klar-costs message');
    expect(record.eventSourceARN).toBe(stack.queues.klarCosts.arn);
    expect(record.md5OfBody).toMatch(/^[0-9a-f]{32}$/);
  });

  it('redelivers a reported batch item failure and parks it in the DLQ after maxReceiveCount', async () => {
    // prepare
    const body = JSON.stringify({ probe: 'poison' });
    poison.add(body);
    const maxReceiveCount = stack.queues.klarCosts.maxReceiveCount!;
    // act
    await stack.sqsClient.send(new SendMessageCommand({ QueueUrl: stack.queues.klarCosts.url, MessageBody: body }));
    // assess
    const parked = await waitFor(async () => (await peekMessages(stack, stack.queues.klarCostsDlq.url)).find((m) => m.Body === body), 'the DLQ to hold the message', 30_000);
    const deliveries = records('upload-klar-costs').filter((r) => r.body === body);
    expect(deliveries).toHaveLength(maxReceiveCount);
    expect(deliveries.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(Array.from({ length: maxReceiveCount }, (_, i) => String(i + 1)));
    expect(parked.Body).toBe(body);
  });

  it('creates the history table from serverless.yml with TTL enabled', async () => {
    const ttl = await stack.dynamoDbClient.send(new DescribeTimeToLiveCommand({ TableName: stack.tableName }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'expiresAt' });
    const table = await stack.dynamoDbClient.send(new DescribeTableCommand({ TableName: stack.tableName }));
    expect(table.Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(['gsi1', 'gsi2']);
    expect(stack.queues.orders.name).toMatch(/\.fifo$/);
    expect(stack.queues.orders.maxReceiveCount).toBe(5);
  });
});
