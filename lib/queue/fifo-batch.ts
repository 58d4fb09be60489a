import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { mapWithConcurrency } from '../sync/concurrency.ts';

export interface FifoBatchOptions {
  /** message groups processed at the same time */
  concurrency: number;
  /** milliseconds left in the invocation (Lambda context) */
  remainingMs: () => number;
  /** the longest one record may take (its upstream deadlines plus a margin) */
  recordBudgetMs: number;
  /** records of groups that failed, or that were not started for lack of time */
  onSkipped?: (record: SQSRecord, why: 'group-failed' | 'no-time') => void;
}

/**
 * Processes one FIFO batch: message groups (orders) concurrently, bounded; the records of
 * a group strictly in order. A failed record fails the rest of its group only (they must
 * not overtake it), and a record that could not finish before the function's deadline is
 * not started: both come back as batch item failures, so SQS redelivers them in order.
 */
export async function processFifoBatch(
  records: readonly SQSRecord[],
  handle: (record: SQSRecord) => Promise<unknown>,
  options: FifoBatchOptions,
): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of records) {
    const group = record.attributes?.MessageGroupId ?? record.messageId;
    const list = groups.get(group) ?? [];
    list.push(record);
    groups.set(group, list);
  }
  const failed = new Set<string>();
  const runGroup = async (list: SQSRecord[]) => {
    for (let i = 0; i < list.length; i++) {
      const record = list[i]!;
      if (options.remainingMs() < options.recordBudgetMs) return failRest(list, i, 'no-time');
      try {
        await handle(record);
      } catch {
        // The handler logged and counted it; this record and the rest of its group go back.
        failed.add(record.messageId);
        return failRest(list, i + 1, 'group-failed');
      }
    }
  };
  const failRest = (list: SQSRecord[], from: number, why: 'group-failed' | 'no-time') => {
    for (const record of list.slice(from)) {
      failed.add(record.messageId);
      options.onSkipped?.(record, why);
    }
  };

  await mapWithConcurrency([...groups.values()], options.concurrency, runGroup);
  // In batch order, as Lambda expects them.
  return { batchItemFailures: records.filter((r) => failed.has(r.messageId)).map((r) => ({ itemIdentifier: r.messageId })) };
}
