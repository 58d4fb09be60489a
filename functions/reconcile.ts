import { config } from '../lib/config/index.ts';
import { InvalidMessageError, describeError } from '../lib/domain/errors.ts';
import * as z from '../lib/domain/schema.ts';
import { logger } from '../lib/observability/logger.ts';
import { lambdaHandler } from '../lib/observability/handler.ts';
import { count } from '../lib/observability/metrics.ts';
import { SINCE_FORMAT_HINT, parseSinceDate } from '../lib/ops/since.ts';
import { reconcile } from '../lib/sync/reconcile.ts';

config(); // validate the environment at cold start, naming any bad variable

export const DEFAULT_SINCE_DAYS = 14;

/**
 * The schedule sends `{"sinceDays":14}`; a console test event may send `since` or `dryRun`,
 * and `openMaxAgeDays` (how far back Komfortkasse's open orders are read, default 120).
 * A bare EventBridge scheduled event (no input) reconciles the default window.
 */
export const reconcileEventSchema = z.looseObject({
  sinceDays: z.optional(z.coerce.number().check(z.int(), z.gte(1), z.lte(365))),
  since: z.optional(z.string().check(z.refine((value) => parseSinceDate(value) !== undefined, { message: SINCE_FORMAT_HINT }))),
  dryRun: z.optional(z.boolean()),
  openMaxAgeDays: z.optional(z.coerce.number().check(z.int(), z.gte(1), z.lte(3650))),
});

/** When the reconciliation window starts; a malformed event fails loudly instead of guessing. */
export function sinceFromEvent(event: unknown, now = new Date()): { since: Date; dryRun: boolean; openMaxAgeDays?: number } {
  const parsed = reconcileEventSchema.safeParse(event ?? {});
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(event)'}: ${issue.message}`).join('; ');
    throw new InvalidMessageError(`invalid reconcile event — ${fields}`);
  }
  const input = parsed.data;
  const since = input.since ? parseSinceDate(input.since)! : new Date(now.getTime() - (input.sinceDays ?? DEFAULT_SINCE_DAYS) * 86_400_000);
  return { since, dryRun: input.dryRun ?? false, ...(input.openMaxAgeDays === undefined ? {} : { openMaxAgeDays: input.openMaxAgeDays }) };
}

async function run(event: unknown) {
  try {
    const { since, dryRun, openMaxAgeDays } = sinceFromEvent(event);
    // The schedule sends its constant input (no `source`); a console test event is anything else.
    const trigger = (event as { sinceDays?: unknown } | undefined)?.sinceDays !== undefined || (event as { source?: unknown } | undefined)?.source === 'aws.events' ? 'schedule' : 'console';
    const summary = await reconcile({ since, dryRun, openMaxAgeDays, trigger });
    logger.info('reconcile', { ...summary, enqueuedOrderIds: summary.enqueuedOrderIds.slice(0, 50) });
    return summary;
  } catch (error) {
    count('errors');
    logger.error('reconcile failed', { error: describeError(error) });
    throw error;
  }
}

export const handler = lambdaHandler(run);
