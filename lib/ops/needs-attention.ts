import * as z from 'zod';
import { KLAR_STATES, KOMFORTKASSE_STATES, listNeedsAttention, type OrderRecord } from '../store/history.ts';
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
 * Every order in needs-attention on either side, oldest first. The index is sparse and
 * cleared when both sides recover; the state check guards against a lagging index.
 */
export async function needsAttention(): Promise<NeedsAttentionEntry[]> {
  const records = await listNeedsAttention();
  return records
    .filter((r: OrderRecord) => r.komfortkasse.state === 'needs-attention' || r.klar.state === 'needs-attention')
    .map((r) => needsAttentionEntrySchema.parse(r));
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
  println(io.stdout, '\nFix the cause, then: orderbridge replay <order> (or wait for the next change of the order).');
  return EXIT.ok;
}
