import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ProbeMessage } from '../domain/probe.ts';
import { documentClient } from './dynamo.ts';
import { isConditionFailure, tableName } from './table.ts';

/** PROBE#<id> / PROBE: the order worker saw a check's probe. Kept a day: it only proves the path. */
const SORT_KEY = 'PROBE';
const PROBE_TTL_SECONDS = 86_400;

export function probeKey(probeId: string) {
  return { pk: `PROBE#${probeId}`, sk: SORT_KEY };
}

export interface ProbeRecord {
  probeId: string;
  receivedAt: string;
  recordedAt: string;
}

/** Written once; a redelivered probe finds its record and is done. */
export async function recordProbe(message: ProbeMessage, now = new Date()): Promise<void> {
  try {
    await documentClient().send(
      new PutCommand({
        TableName: tableName(),
        Item: {
          ...probeKey(message.probeId),
          probeId: message.probeId,
          receivedAt: message.receivedAt,
          recordedAt: now.toISOString(),
          correlationId: message.correlationId,
          expiresAt: Math.floor(now.getTime() / 1000) + PROBE_TTL_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}

/** The probe's record, read consistently (the check polls for it). */
export async function getProbe(probeId: string): Promise<ProbeRecord | undefined> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: tableName(), Key: probeKey(probeId), ConsistentRead: true }));
  if (!Item) return undefined;
  return { probeId: String(Item.probeId), receivedAt: String(Item.receivedAt), recordedAt: String(Item.recordedAt) };
}
