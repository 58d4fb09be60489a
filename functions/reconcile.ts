import middy from '@middy/core';
import * as z from 'zod';
import { config } from '../lib/config/index.ts';
import { describeError } from '../lib/domain/errors.ts';
import { logger } from '../lib/observability/logger.ts';
import { count, flushMetrics } from '../lib/observability/metrics.ts';
import { reconcile } from '../lib/sync/reconcile.ts';

config(); // validate the environment at cold start, naming any bad variable

/** The schedule sends `{"sinceDays":14}`; a console test event may send `since` or `dryRun`. */
const reconcileEventSchema = z.looseObject({
  sinceDays: z.coerce.number().int().min(1).max(365).optional(),
  since: z.iso.date().or(z.iso.datetime({ offset: true })).optional(),
  dryRun: z.boolean().optional(),
});

async function run(event: unknown) {
  const parsed = reconcileEventSchema.safeParse(event ?? {});
  const input = parsed.success ? parsed.data : {};
  const since = input.since ? new Date(input.since) : new Date(Date.now() - (input.sinceDays ?? 14) * 86_400_000);
  try {
    const summary = await reconcile({ since, dryRun: input.dryRun });
    logger.info('reconcile', { ...summary, enqueuedOrderIds: summary.enqueuedOrderIds.slice(0, 50) });
    return summary;
  } catch (error) {
    count('errors');
    logger.error('reconcile failed', { error: describeError(error) });
    throw error;
  } finally {
    flushMetrics();
  }
}

export const handler = middy(run);
