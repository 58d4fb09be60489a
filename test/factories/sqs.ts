/**
 * SQS records as Lambda hands them to a queue worker (FIFO: with a message group id).
 * Overrides are shallow.
 */
import type { SQSRecord } from 'aws-lambda';

let sequence = 0;

export function buildSqsRecord(overrides: Partial<SQSRecord> & { groupId?: string } = {}): SQSRecord {
  const { groupId, ...rest } = overrides;
  sequence += 1;
  const messageId = rest.messageId ?? `msg-${sequence}`;
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: '{}',
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '1714557600000',
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: '1714557600000',
      ...(groupId === undefined ? {} : { MessageGroupId: groupId, MessageDeduplicationId: `dedup-${messageId}`, SequenceNumber: String(sequence) }),
    },
    messageAttributes: {},
    md5OfBody: '99914b932bd37a50b983c5e7c90ae93b',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-central-1:123456789012:orderbridge-test-orders.fifo',
    awsRegion: 'eu-central-1',
    ...rest,
  };
}

/** One FIFO batch: `[group, id]` pairs in batch order; the message id is the given id. */
export function buildFifoBatch(entries: [group: string, id: string][]): SQSRecord[] {
  return entries.map(([groupId, messageId]) => buildSqsRecord({ groupId, messageId }));
}
