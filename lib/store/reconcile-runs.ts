import * as z from '../domain/schema.ts';
import { addToTimeline, newestInTimeline } from './table.ts';

/** One reconciliation run (scheduled, console or CLI), for `orderbridge status`. */
const PARTITION = 'RECONCILE#RUN';
const PREFIX = 'RUN#';

export const reconcileRunSchema = z.object({
  at: z.string(),
  since: z.string(),
  checked: z.number(),
  /** orders the shop listing returned for the window (absent in runs recorded before it was counted) */
  shopListed: z.optional(z.number()),
  /** open orders Komfortkasse listed, and how many of them the run re-checked in the shop (absent: side off) */
  komfortkasseOpen: z.optional(z.number()),
  komfortkasseRechecked: z.optional(z.number()),
  enqueued: z.number(),
  needsAttention: z.number(),
  invalid: z.number(),
  dryRun: z.boolean(),
  /** how it was started: the schedule, the console or the CLI */
  trigger: z.string(),
  /** set when the run stopped with an error */
  error: z.optional(z.string()),
});
export type ReconcileRun = z.infer<typeof reconcileRunSchema>;

export async function recordReconcileRun(run: ReconcileRun, now = new Date()): Promise<void> {
  await addToTimeline(PARTITION, PREFIX, run.at, reconcileRunSchema.parse(run), now);
}

/** The newest runs first: `status` looks past a failed or dry run for the last one that did the work. */
export async function listReconcileRuns(limit = 25): Promise<ReconcileRun[]> {
  return (await newestInTimeline(PARTITION, PREFIX, limit)).map((item) => reconcileRunSchema.parse(item));
}
