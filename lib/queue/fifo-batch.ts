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
  /**
   * A failure an upstream's "slow down" caused (its Retry-After, in ms), else undefined. Such
   * a record and the rest of its group are handed back (`handBack`) to come again after about
   * that long instead of the full visibility timeout; the group stays in order.
   */
  retryAfterMs?: (error: unknown) => number | undefined;
  handBack?: (records: SQSRecord[], retryAfterMs: number) => Promise<void>;
}

/**
 * Processes one FIFO batch: message groups (orders) concurrently, bounded; the records of
 * a group strictly in order. A failed record fails the rest of its group only (they must
 * not overtake it), and a record that could not finish before the function's deadline is
 * not started: both come back as batch item failures, so SQS redelivers them in order — a
 * group an upstream throttled after about its Retry-After, the others after the visibility timeout.
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
      } catch (error) {
        // The handler logged and counted it; this record and the rest of its group go back.
        failed.add(record.messageId);
        failRest(list, i + 1, 'group-failed');
        const retryAfter = options.retryAfterMs?.(error);
        if (retryAfter !== undefined && options.handBack) await options.handBack(list.slice(i), retryAfter);
        return;
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
