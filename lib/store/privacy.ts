import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from './dynamo.ts';
import { isConditionFailure, orderPartition, queryAll, tableName } from './table.ts';

/**
 * GDPR erasure ahead of the TTL: drops what may identify a person — would-be request
 * bodies and upstream messages — from every item of the order, and marks the order
 * forgotten so that no later event writes such data back (the workers check the mark).
 */
export async function forgetOrderPersonalData(orderId: number, now = new Date()): Promise<{ attempts: number }> {
  // The mark first: from then on every worker write of texts is conditioned on its absence,
  // so whatever the clean-up below reads cannot be followed by new texts.
  await stripItem({ pk: orderPartition(orderId), sk: 'STATE' }, now);
  const items = await queryAll({
    TableName: tableName(),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': orderPartition(orderId) },
  });
  let attempts = 0;
  for (const item of items) {
    if (item.sk === 'STATE') continue;
    await stripItem({ pk: item.pk, sk: item.sk }, now);
    if (String(item.sk).startsWith('ATTEMPT#')) attempts++;
  }
  return { attempts };
}

/** Marks one item of the order forgotten and drops its texts; an item gone meanwhile is fine. */
async function stripItem(item: { pk: unknown; sk: unknown }, now: Date): Promise<void> {
  const isState = item.sk === 'STATE';
  try {
    await documentClient().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: { pk: item.pk, sk: item.sk },
        // `request` and `error` are DynamoDB reserved words: name them through placeholders.
        UpdateExpression: isState ? 'SET forgottenAt = :now REMOVE kkError, klarError' : 'SET forgottenAt = :now REMOVE #request, #error',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: isState ? undefined : { '#request': 'request', '#error': 'error' },
        ExpressionAttributeValues: { ':now': now.toISOString() },
      }),
    );
  } catch (error) {
    // Gone meanwhile (an attention item cleared, an attempt expired): nothing left to forget there.
    if (!isConditionFailure(error)) throw error;
  }
}
