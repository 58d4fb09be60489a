import * as z from 'zod';
import { KLAR_STATES, KOMFORTKASSE_STATES, type SyncTarget } from '../domain/sync-state.ts';
import { listAttention } from '../store/attention.ts';
import { getOrderRecords } from '../store/order-record.ts';
import { EXIT, printJson, println, renderTable, type CliIo } from './io.ts';

/** One order that needs a human, with what the upstream said. */
export const needsAttentionEntrySchema = z.object({
  orderId: z.number(),
  orderCode: z.string().optional(),
  komfortkasse: z.object({ state: z.enum(KOMFORTKASSE_STATES), error: z.string().optional() }),
  klar: z.object({ state: z.enum(KLAR_STATES), error: z.string().optional() }),
  updatedAt: z.string().optional(),
});
export type NeedsAttentionEntry = z.infer<typeof needsAttentionEntrySchema>;

/**
 * Every order in needs-attention on either side (or on `target` only), oldest first. The
 * index holds one item per parked side; the records add both sides' states, and guard
 * against an index entry whose side has recovered meanwhile.
 */
export async function needsAttention(target?: SyncTarget): Promise<NeedsAttentionEntry[]> {
  const parked = (await listAttention()).filter((entry) => target === undefined || entry.target === target);
  const orderIds = [...new Set(parked.map((entry) => entry.orderId))];
  const records = await getOrderRecords(orderIds);
  return orderIds.flatMap((orderId) => {
    const record = records.get(orderId);
    const stillParked = record && parked.some((entry) => entry.orderId === orderId && record[entry.target].state === 'needs-attention');
    return stillParked ? [needsAttentionEntrySchema.parse(record)] : [];
  });
}

export async function runNeedsAttention(options: { json?: boolean }, io: CliIo): Promise<number> {
  const entries = await needsAttention();
  if (options.json) {
    printJson(io, entries);
    return EXIT.ok;
  }
  if (entries.length === 0) {
    println(io.stdout, 'No order needs attention.');
    return EXIT.ok;
  }
  println(io.stdout, `${entries.length} order(s) need attention:`);
  const side = (state: string, error: string | undefined) => (state === 'needs-attention' ? error ?? '(no message)' : undefined);
  println(
    io.stdout,
    renderTable(
      ['ORDER', 'ID', 'KOMFORTKASSE', 'KLAR', 'SINCE', 'UPSTREAM MESSAGE'],
      entries.map((e) => [
        e.orderCode ?? '-',
        e.orderId,
        e.komfortkasse.state,
        e.klar.state,
        e.updatedAt,
        [side(e.komfortkasse.state, e.komfortkasse.error), side(e.klar.state, e.klar.error)].filter(Boolean).join(' | '),
      ]),
    ),
  );
  println(io.stdout, '\nFix the cause, then: orderbridge replay <order>, or all at once: orderbridge replay --needs-attention (--dry-run first).');
  return EXIT.ok;
}
