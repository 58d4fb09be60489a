import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger } from './logger.ts';
import { flushTallies, metrics } from './metrics.ts';

/** What middy hands a handler besides event and context: aborted at the early timeout. */
export interface Invocation {
  signal: AbortSignal;
}

/**
 * Every Lambda handler, wrapped the way the libraries' authors intend: middy, Powertools
 * `injectLambdaContext` (request id, function name and cold start on every log line; never
 * the event — bodies are personal data) and `logMetrics` (one EMF blob per invocation,
 * plus the ColdStart metric). middy aborts `signal` `timeoutEarlyInMillis` before the
 * Lambda deadline, so upstream calls in flight stop in time.
 */
export function lambdaHandler<E, R>(
  handler: (event: E, context: Context, invocation: Invocation) => Promise<R>,
  options: { timeoutEarlyInMillis?: number } = {},
) {
  return middy<E, R>(handler as never, { timeoutEarlyInMillis: options.timeoutEarlyInMillis ?? 1000 })
    .use(injectLambdaContext(logger, { logEvent: false, resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({ after: flushTallies, onError: flushTallies });
}
