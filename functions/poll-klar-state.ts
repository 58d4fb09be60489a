import type { ScheduledEvent } from 'aws-lambda';
import { config } from '../lib/config/index.ts';
import { describeError } from '../lib/domain/errors.ts';
import { logger } from '../lib/observability/logger.ts';
import { lambdaHandler } from '../lib/observability/handler.ts';
import { count } from '../lib/observability/metrics.ts';
import { pollKlarState } from '../lib/sync/klar-state.ts';

config(); // validate the environment at cold start, naming any bad variable

async function poll(event: ScheduledEvent | Record<string, unknown>) {
  // Its schedule is disabled with Klar off; a console invocation reads nothing either.
  if (!config().KLAR_ENABLED) {
    logger.info('Klar is switched off (KLAR_ENABLED=false): its import state is not read');
    return { klar: 'off' };
  }
  try {
    const reading = await pollKlarState();
    logger.info('klar state', { trigger: (event as ScheduledEvent)?.source ?? 'console', ...reading });
    if (reading.failing) logger.warn('Klar reports a failed import newer than its last success', { ...reading });
    return reading;
  } catch (error) {
    count('errors');
    logger.error('klar state poll failed', { error: describeError(error) });
    throw error; // a failed scheduled invocation shows in the function's Errors metric
  }
}

export const handler = lambdaHandler(poll);
