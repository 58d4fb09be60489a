import * as z from '../domain/schema.ts';
import { addToTimeline, newestInTimeline } from './table.ts';

/** Readings of Klar's import state (poll-klar-state), newest first. */
const PARTITION = 'KLAR#STATE';
const PREFIX = 'READING#';

export const klarReadingSchema = z.object({
  at: z.string(),
  total: z.optional(z.number()),
  lastBatchCount: z.optional(z.number()),
  lastSuccess: z.optional(z.string()),
  lastFailure: z.optional(z.string()),
  failing: z.boolean(),
  endpoint: z.string(),
  /** DRY_RUN as the poller saw it: the deployed functions' setting, for `orderbridge status` */
  dryRun: z.optional(z.boolean()),
});
export type KlarReading = z.infer<typeof klarReadingSchema>;

export async function recordKlarReading(reading: KlarReading, now = new Date()): Promise<void> {
  await addToTimeline(PARTITION, PREFIX, reading.at, klarReadingSchema.parse(reading), now);
}

export async function listKlarReadings(limit = 10): Promise<KlarReading[]> {
  return (await newestInTimeline(PARTITION, PREFIX, limit)).map((item) =>
    klarReadingSchema.parse({ ...item, failing: Boolean(item.failing), endpoint: String(item.endpoint ?? '') }),
  );
}
