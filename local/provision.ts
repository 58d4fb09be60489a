import {
  CreateTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { QueueDefinition, StackDefinition } from './infra.ts';

export interface ProvisionedQueue {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
  fifo: boolean;
  visibilityTimeout: number;
  maxReceiveCount?: number;
  deadLetterLogicalId?: string;
}

/**
 * Creates the queues of serverless.yml, DLQs first so the redrive policies can name them.
 * `visibilityTimeoutOverride` lets tests shorten the retry loop; everything else is as deployed.
 */
export async function createQueues(
  sqs: SQSClient,
  definition: StackDefinition,
  options: { visibilityTimeoutOverride?: number } = {},
): Promise<Map<string, ProvisionedQueue>> {
  const created = new Map<string, ProvisionedQueue>();
  const ordered = [...definition.queues].sort((a, b) => Number(Boolean(a.redrive)) - Number(Boolean(b.redrive)));
  for (const queue of ordered) {
    created.set(queue.logicalId, await createQueue(sqs, queue, created, options.visibilityTimeoutOverride));
  }
  return created;
}

async function createQueue(
  sqs: SQSClient,
  queue: QueueDefinition,
  created: Map<string, ProvisionedQueue>,
  visibilityTimeoutOverride?: number,
): Promise<ProvisionedQueue> {
  const visibilityTimeout = visibilityTimeoutOverride ?? queue.visibilityTimeout ?? 30;
  const attributes: Record<string, string> = { VisibilityTimeout: String(visibilityTimeout) };
  if (queue.fifo) {
    attributes.FifoQueue = 'true';
    attributes.ContentBasedDeduplication = String(queue.contentBasedDeduplication);
  }
  if (queue.messageRetentionPeriod) attributes.MessageRetentionPeriod = String(queue.messageRetentionPeriod);
  if (queue.redrive) {
    const dlq = created.get(queue.redrive.deadLetterLogicalId);
    if (!dlq) throw new Error(`${queue.logicalId}: dead-letter queue ${queue.redrive.deadLetterLogicalId} is not declared`);
    attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: queue.redrive.maxReceiveCount });
  }
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }));
  const url = QueueUrl!;
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return {
    logicalId: queue.logicalId,
    name: queue.name,
    url,
    arn: Attributes!.QueueArn!,
    fifo: queue.fifo,
    visibilityTimeout,
    maxReceiveCount: queue.redrive?.maxReceiveCount,
    deadLetterLogicalId: queue.redrive?.deadLetterLogicalId,
  };
}

/** Creates the history table (keys, GSIs, TTL) exactly as declared. */
export async function createTable(dynamodb: DynamoDBClient, definition: StackDefinition): Promise<string> {
  const table = definition.table;
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: table.tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: table.attributeDefinitions,
        KeySchema: table.keySchema,
        GlobalSecondaryIndexes: table.globalSecondaryIndexes.length ? table.globalSecondaryIndexes : undefined,
      }),
    );
  } catch (error) {
    // --persist keeps the table from the last run.
    if ((error as { name?: string }).name !== 'ResourceInUseException') throw error;
  }
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 30, minDelay: 1, maxDelay: 2 }, { TableName: table.tableName });
  if (table.ttlAttribute) {
    const ttl = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: table.tableName }));
    if (ttl.TimeToLiveDescription?.TimeToLiveStatus !== 'ENABLED') {
      await dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: table.tableName,
          TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
        }),
      );
    }
  }
  return table.tableName;
}
