import * as z from 'zod';
import { timeline } from './table.ts';

/** Readings of Klar's import state (poll-klar-state), newest first. */
const PARTITION = 'KLAR#STATE';
const PREFIX = 'READING#';

export const klarReadingSchema = z.object({
  at: z.string(),
  total: z.number().optional(),
  lastBatchCount: z.number().optional(),
  lastSuccess: z.string().optional(),
  lastFailure: z.string().optional(),
  failing: z.boolean(),
  endpoint: z.string(),
  /** DRY_RUN as the poller saw it: the deployed functions' setting, for `orderbridge status` */
  dryRun: z.boolean().optional(),
});
export type KlarReading = z.infer<typeof klarReadingSchema>;

export async function recordKlarReading(reading: KlarReading, now = new Date()): Promise<void> {
  await timeline.add(PARTITION, PREFIX, reading.at, klarReadingSchema.parse(reading), now);
}

export async function listKlarReadings(limit = 10): Promise<KlarReading[]> {
  return (await timeline.newest(PARTITION, PREFIX, limit)).map((item) =>
    klarReadingSchema.parse({ ...item, failing: Boolean(item.failing), endpoint: String(item.endpoint ?? '') }),
  );
}
