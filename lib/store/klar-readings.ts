import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { documentClient } from './dynamo.ts';
import { expiresAt, tableName, type Key } from './table.ts';

/** Readings of Klar's import state, newest first by key. */
export const klarReadingKeys = {
  partition: 'KLAR#STATE',
  reading: (at: string): Key => ({ pk: 'KLAR#STATE', sk: `READING#${at}` }),
  prefix: 'READING#',
};

export const klarReadingSchema = z.object({
  at: z.string(),
  total: z.number().optional(),
  lastBatchCount: z.number().optional(),
  lastSuccess: z.string().optional(),
  lastFailure: z.string().optional(),
  failing: z.boolean(),
  endpoint: z.string(),
  /** DRY_RUN as the poller saw it: the deployed functions' setting, for `orderbridge status` */
  dryRun: z.boolean().optional(),
});
export type KlarReading = z.infer<typeof klarReadingSchema>;

export async function recordKlarReading(reading: KlarReading, now = new Date()): Promise<void> {
  await documentClient().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...klarReadingKeys.reading(reading.at), ...klarReadingSchema.parse(reading), expiresAt: expiresAt(now) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function listKlarReadings(limit = 10): Promise<KlarReading[]> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': klarReadingKeys.partition, ':prefix': klarReadingKeys.prefix },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return (result.Items ?? []).map((item) =>
    klarReadingSchema.parse({
      at: item.at,
      total: item.total,
      lastBatchCount: item.lastBatchCount,
      lastSuccess: item.lastSuccess,
      lastFailure: item.lastFailure,
      failing: Boolean(item.failing),
      endpoint: String(item.endpoint ?? ''),
      dryRun: item.dryRun,
    }),
  );
}
