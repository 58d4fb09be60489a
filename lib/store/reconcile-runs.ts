import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { documentClient } from './dynamo.ts';
import { expiresAt, tableName, type Key } from './table.ts';

/** One reconciliation run (scheduled or from the CLI), for `orderbridge status`. */
export const reconcileRunKeys = {
  partition: 'RECONCILE#RUN',
  run: (at: string): Key => ({ pk: 'RECONCILE#RUN', sk: `RUN#${at}` }),
  prefix: 'RUN#',
};

export const reconcileRunSchema = z.object({
  at: z.string(),
  since: z.string(),
  checked: z.number(),
  enqueued: z.number(),
  needsAttention: z.number(),
  invalid: z.number(),
  dryRun: z.boolean(),
  /** how it was started: the schedule, the console or the CLI */
  trigger: z.string(),
  /** set when the run stopped with an error */
  error: z.string().optional(),
});
export type ReconcileRun = z.infer<typeof reconcileRunSchema>;

export async function recordReconcileRun(run: ReconcileRun, now = new Date()): Promise<void> {
  await documentClient().send(
    new PutCommand({ TableName: tableName(), Item: { ...reconcileRunKeys.run(run.at), ...reconcileRunSchema.parse(run), expiresAt: expiresAt(now) } }),
  );
}

export async function lastReconcileRun(): Promise<ReconcileRun | undefined> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': reconcileRunKeys.partition, ':prefix': reconcileRunKeys.prefix },
      ScanIndexForward: false,
      Limit: 1,
    }),
  );
  const item = result.Items?.[0];
  return item ? reconcileRunSchema.parse({ ...item, pk: undefined }) : undefined;
}

/** The newest runs first: `status` looks past a failed or dry run for the last one that did the work. */
export async function listReconcileRuns(limit = 25): Promise<ReconcileRun[]> {
  const result = await documentClient().send(
    new QueryCommand({
      TableName: tableName(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': reconcileRunKeys.partition, ':prefix': reconcileRunKeys.prefix },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return (result.Items ?? []).map((item) => reconcileRunSchema.parse(item));
}
