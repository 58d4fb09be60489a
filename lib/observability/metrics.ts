import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger } from './logger.ts';

/**
 * EMF metrics; one name per outcome so alarms and the dashboard can key on them (see
 * serverless.yml). Handlers publish them with Powertools' `logMetrics` middleware;
 * `POWERTOOLS_METRICS_DISABLED=true` turns them off (tests).
 */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Orderbridge',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'orderbridge',
  // Its own warnings as structured log lines (EMF itself always goes to stdout).
  logger,
});

export type MetricName =
  | 'webhookReceived'
  | 'webhookRejected'
  | 'enqueued'
  | 'enqueueFailed'
  | 'submitted'
  | 'updated'
  | 'removed'
  | 'skipped'
  | 'unchanged'
  | 'failedTransient'
  | 'needsAttention'
  | 'dryRun'
  | 'klarForwarded'
  | 'klarRecords'
  | 'klarUploaded'
  | 'klarRequests'
  | 'klarImportFailing'
  | 'klarTotal'
  | 'klarLastBatchCount'
  | 'klarSecondsSinceLastSuccess'
  | 'reconcileEnqueued'
  | 'errors';

export function count(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

export function gauge(name: MetricName, value: number, unit: (typeof MetricUnit)[keyof typeof MetricUnit] = MetricUnit.Count): void {
  metrics.addMetric(name, unit, value);
}

/**
 * A count with one extra dimension (`webhookOutcome` by outcome, `komfortkasseOutcome` by
 * outcome, `upstreamAuthFailed` by upstream): one series per value, so each can be alarmed.
 */
export function countBy(name: 'webhookOutcome' | 'komfortkasseOutcome' | 'upstreamAuthFailed', dimension: 'outcome' | 'upstream', value: string): void {
  const single = metrics.singleMetric();
  single.addDimension(dimension, value);
  single.addMetric(name, MetricUnit.Count, 1);
}

/** An upstream refused our credentials (401/403). */
export function countAuthFailure(upstream: string): void {
  countBy('upstreamAuthFailed', 'upstream', upstream);
}

export { MetricUnit };
