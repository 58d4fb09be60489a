import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { OrderbridgeError } from '../domain/errors.ts';
import type { OrderRecord } from '../domain/sync-state.ts';
import { encodeQueueMessage } from '../queue/encode.ts';
import { deduplicationId } from '../queue/orders.ts';
import { queueCounts, sqsClient } from '../queue/sqs.ts';
import { getOrderRecords } from '../store/order-record.ts';
import { EXIT, println, renderTable, type CliIo } from './io.ts';
import type { QueueUrls } from './target.ts';

export const REDRIVE_QUEUES = ['orders', 'klar-costs'] as const;
export type RedriveQueue = (typeof REDRIVE_QUEUES)[number];

/** How long a received DLQ message stays hidden while it is being moved. */
const HOLD_SECONDS = 60;

export class QueueNotFoundError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

export interface RedrivePair {
  queue: RedriveQueue;
  source: string;
  dlq: string;
}

export interface RedriveOptions extends RedrivePair {
  /** move at most this many messages */
  max?: number;
  /** list what would move, move nothing */
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: { moved: number; failed: number; listed: number }) => void;
}

export interface DeadLetter {
  messageId: string;
  groupId?: string;
  kind?: string;
  orderId?: number;
  orderCode?: string;
  receiveCount?: number;
}

export interface RedriveResult {
  queue: RedriveQueue;
  dryRun: boolean;
  moved: number;
  failed: { messageId: string; reason: string }[];
  /** dry run: the messages that would move */
  listed: DeadLetter[];
  /** why it ended before the DLQ looked empty */
  stopped?: 'max' | 'aborted' | 'seen-again';
}

/** The queue pair for a name: URLs from the target, the DLQ otherwise from the redrive policy. */
export async function resolveRedrivePair(queue: RedriveQueue, queues: QueueUrls, env: NodeJS.ProcessEnv = process.env): Promise<RedrivePair> {
  const source = queue === 'orders' ? (queues.orders ?? env.ORDERS_QUEUE_URL) : (queues.klarCosts ?? env.KLAR_COSTS_QUEUE_URL);
  if (!source) throw new QueueNotFoundError(`no URL for the ${queue} queue (${queue === 'orders' ? 'ORDERS_QUEUE_URL' : 'KLAR_COSTS_QUEUE_URL'})`);
  const dlq = (queue === 'orders' ? queues.ordersDlq : queues.klarCostsDlq) ?? (await deadLetterQueueOf(source));
  return { queue, source, dlq };
}

async function deadLetterQueueOf(source: string): Promise<string> {
  const { Attributes } = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: source, AttributeNames: ['RedrivePolicy'] }));
  const arn = Attributes?.RedrivePolicy ? (JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn?: string }).deadLetterTargetArn : undefined;
  if (!arn) throw new QueueNotFoundError(`${queueName(source)} has no redrive policy, so no dead-letter queue to redrive from`);
  const { QueueUrl } = await sqsClient().send(new GetQueueUrlCommand({ QueueName: arn.split(':').pop() }));
  if (!QueueUrl) throw new QueueNotFoundError(`cannot find the dead-letter queue ${arn}`);
  return QueueUrl;
}

export function queueName(url: string): string {
  return url.split('/').pop() ?? url;
}

/**
 * Moves dead-lettered messages back to their source queue. Each message is sent to the
 * source first and deleted from the DLQ only once the send succeeded, so an interruption
 * can duplicate a message (harmless: sync is level-triggered) but never lose one. FIFO
 * messages keep their group (the order id) and get a fresh deduplication id, so the
 * queue's 5-minute deduplication cannot swallow them.
 */
export async function redrive(options: RedriveOptions): Promise<RedriveResult> {
  const sqs = sqsClient();
  const fifo = options.source.endsWith('.fifo');
  const result: RedriveResult = { queue: options.queue, dryRun: options.dryRun ?? false, moved: 0, failed: [], listed: [] };
  // A message seen twice in one run went round (redriven, failed again): stop, don't loop.
  const seen = new Set<string>();
  const held: Message[] = [];
  let empty = 0;
  try {
    for (;;) {
      if (options.signal?.aborted) {
        result.stopped = 'aborted';
        break;
      }
      const done = result.dryRun ? result.listed.length : result.moved + result.failed.length;
      const room = options.max === undefined ? 10 : Math.min(10, options.max - done);
      if (room <= 0) {
        result.stopped = 'max';
        break;
      }
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.dlq,
          MaxNumberOfMessages: room,
          WaitTimeSeconds: 1,
          VisibilityTimeout: HOLD_SECONDS,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) {
        // Long polls can come back empty while messages remain; two in a row means empty.
        if (++empty >= 2) break;
        continue;
      }
      empty = 0;
      const again = Messages.filter((m) => seen.has(m.MessageId!));
      const fresh = Messages.filter((m) => !seen.has(m.MessageId!));
      for (const m of fresh) seen.add(m.MessageId!);
      if (result.dryRun) {
        held.push(...fresh);
        result.listed.push(...fresh.map(describeDeadLetter));
      } else if (fresh.length) {
        for (const id of await move(fresh, options, fifo, result)) seen.add(id);
      }
      options.onProgress?.({ moved: result.moved, failed: result.failed.length, listed: result.listed.length });
      if (again.length) {
        await release(options.dlq, again);
        result.stopped = 'seen-again';
        break;
      }
    }
  } finally {
    // A dry run hid what it listed; hand it back at once.
    if (held.length) await release(options.dlq, held);
  }
  return result;
}

/** Sends a batch to the source queue, then deletes what arrived there. Returns the new message ids. */
async function move(messages: Message[], options: RedriveOptions, fifo: boolean, result: RedriveResult): Promise<string[]> {
  const sqs = sqsClient();
  let sent;
  try {
    const bodies = await bodiesToSend(messages);
    sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: options.source,
        Entries: messages.map((m, index) => ({
          Id: String(index),
          MessageBody: bodies[index]!,
          MessageAttributes: copyAttributes(m.MessageAttributes),
          ...(fifo
            ? {
                MessageGroupId: m.Attributes?.MessageGroupId ?? String(describeDeadLetter(m).orderId ?? 'redrive'),
                MessageDeduplicationId: deduplicationId('redrive', m.MessageId ?? '', randomUUID()),
              }
            : {}),
        })),
      }),
    );
  } catch (error) {
    await release(options.dlq, messages).catch(() => undefined);
    throw error;
  }
  const arrived = new Set((sent.Successful ?? []).map((s) => s.Id));
  const refused = messages.filter((_, index) => !arrived.has(String(index)));
  for (const failure of sent.Failed ?? []) {
    const message = messages[Number(failure.Id)];
    result.failed.push({ messageId: message?.MessageId ?? '?', reason: `${failure.Code ?? 'error'}: ${failure.Message ?? 'refused by the source queue'}` });
  }
  if (refused.length) await release(options.dlq, refused);
  const toDelete = messages.filter((_, index) => arrived.has(String(index)));
  if (toDelete.length) {
    // Should a delete fail, the message reappears in the DLQ and is moved again: a duplicate, never a loss.
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.dlq,
        Entries: toDelete.map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  result.moved += toDelete.length;
  return (sent.Successful ?? []).map((s) => s.MessageId).filter((id): id is string => Boolean(id));
}

/**
 * Privacy follows the data: the order snapshot in an order-changed message may hold a
 * person's data, and an order forgotten (`orderbridge forget`) since the message was parked
 * must not get it back through the queue. Such a message goes back without its snapshot —
 * the worker then fetches the order from the shop. Every other body goes back byte for byte.
 * One batched read of the orders' records per batch; if it fails, nothing is sent.
 */
async function bodiesToSend(messages: Message[]): Promise<string[]> {
  const snapshots = messages.map((m) => orderSnapshotOf(m.Body));
  const orderIds = snapshots.flatMap((s) => (s ? [s.orderId] : []));
  const records = orderIds.length ? await getOrderRecords(orderIds) : new Map<number, OrderRecord>();
  return messages.map((m, index) => {
    const snapshot = snapshots[index];
    if (!snapshot || !records.get(snapshot.orderId)?.forgottenAt) return m.Body ?? '';
    const { order: _dropped, ...withoutSnapshot } = snapshot.body;
    return encodeQueueMessage(withoutSnapshot);
  });
}

/** The parsed body of an order-changed message that carries an order snapshot. */
function orderSnapshotOf(body: string | undefined): { orderId: number; body: Record<string, unknown> } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const message = parsed as Record<string, unknown>;
  if (message.kind !== 'order-changed' || typeof message.orderId !== 'number' || message.order === undefined) return undefined;
  return { orderId: message.orderId, body: message };
}

function copyAttributes(attributes: Record<string, MessageAttributeValue> | undefined): Record<string, MessageAttributeValue> | undefined {
  if (!attributes) return undefined;
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      { DataType: value.DataType, ...(value.StringValue !== undefined ? { StringValue: value.StringValue } : {}), ...(value.BinaryValue ? { BinaryValue: value.BinaryValue } : {}) },
    ]),
  );
}

async function release(queueUrl: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    await sqsClient().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.slice(i, i + 10).map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
      }),
    );
  }
}

/** What an operator needs to recognise a message — ids only, never the order's data. */
export function describeDeadLetter(message: Message): DeadLetter {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(message.Body ?? '');
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    /* unreadable bodies are listed by id only */
  }
  return {
    messageId: message.MessageId ?? '?',
    groupId: message.Attributes?.MessageGroupId,
    kind: typeof body.kind === 'string' ? body.kind : undefined,
    orderId: typeof body.orderId === 'number' ? body.orderId : undefined,
    orderCode: typeof body.orderCode === 'string' ? body.orderCode : undefined,
    receiveCount: message.Attributes?.ApproximateReceiveCount ? Number(message.Attributes.ApproximateReceiveCount) : undefined,
  };
}

async function approximateDepth(queueUrl: string): Promise<number | undefined> {
  try {
    const { visible, inFlight } = await queueCounts(queueUrl);
    return visible + inFlight;
  } catch {
    return undefined;
  }
}

export async function runRedrive(
  queue: RedriveQueue,
  options: { max?: number; dryRun?: boolean; queues: QueueUrls },
  io: CliIo,
): Promise<number> {
  const pair = await resolveRedrivePair(queue, options.queues);
  const from = queueName(pair.dlq);
  const to = queueName(pair.source);
  const depth = await approximateDepth(pair.dlq);
  const of = depth === undefined ? '' : ` of ~${depth}`;
  println(io.stderr, `redrive ${queue}: ${from} → ${to}${depth === undefined ? '' : `, ~${depth} message(s) waiting`}${options.dryRun ? ' (dry run)' : ''}`);
  const result = await redrive({
    ...pair,
    max: options.max,
    dryRun: options.dryRun,
    signal: io.signal,
    onProgress: (p) =>
      println(io.stderr, options.dryRun ? `redrive ${queue}: listed ${p.listed}${of}` : `redrive ${queue}: moved ${p.moved}${of}${p.failed ? `, ${p.failed} failed` : ''}`),
  });
  if (result.dryRun) {
    println(io.stdout, `dry run: would move ${result.listed.length} message(s) from ${from} back to ${to}; nothing moved`);
    if (result.listed.length) {
      println(io.stdout, renderTable(['MESSAGE', 'GROUP', 'KIND', 'ORDER', 'ID', 'RECEIVES'], result.listed.map((m) => [m.messageId, m.groupId, m.kind, m.orderCode, m.orderId, m.receiveCount])));
    }
  } else {
    println(io.stdout, `moved ${result.moved} message(s) from ${from} back to ${to}`);
  }
  if (result.stopped === 'aborted') println(io.stderr, `redrive ${queue}: interrupted; what is left stays in ${from}`);
  if (result.stopped === 'max') println(io.stderr, `redrive ${queue}: stopped at --max ${options.max}; the rest stays in ${from}`);
  if (result.stopped === 'seen-again') println(io.stderr, `redrive ${queue}: a message came back to ${from} during this run (it keeps failing); stopped`);
  for (const failure of result.failed) println(io.stderr, `redrive ${queue}: ${failure.messageId} not moved (${failure.reason}); it stays in ${from}`);
  return result.failed.length ? EXIT.failed : EXIT.ok;
}
