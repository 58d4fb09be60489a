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
  | 'submitted'
  | 'updated'
  | 'removed'
  | 'skipped'
  | 'unchanged'
  | 'failedTransient'
  /** a setting or secret could not be read (SSM throttling, KMS, network, a missing value): transient, alarmed */
  | 'configReadFailed'
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
  /** a 404 for an order that the shop API check could not confirm (a configuration error) */
  | 'shopApiCheckFailed'
  | 'errors';

export function count(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

export function gauge(name: MetricName, value: number, unit: (typeof MetricUnit)[keyof typeof MetricUnit] = MetricUnit.Count): void {
  metrics.addMetric(name, unit, value);
}

/**
 * The webhook's outcome, as the one metric of an ingest invocation: `webhookOutcome` with an
 * `outcome` dimension (accepted, unauthorized, …, enqueue-failed, error), one series per
 * outcome. On the invocation's own EMF blob: a webhook costs no second one.
 */
export function countWebhookOutcome(outcome: string): void {
  metrics.addDimension('outcome', outcome);
  metrics.addMetric('webhookOutcome', MetricUnit.Count, 1);
}

/** Dimensioned counts of this invocation, summed per series until the handler ends. */
const tallies = new Map<string, { name: string; dimension: string; value: string; count: number }>();

/**
 * A count with one extra dimension (`komfortkasseOutcome` by outcome, `upstreamAuthFailed`
 * by upstream): one series per value, so each can be alarmed. A series has its own EMF blob,
 * so the counts are summed and written once per series and invocation (flushTallies), not
 * once per record.
 */
export function countBy(name: 'komfortkasseOutcome' | 'upstreamAuthFailed', dimension: 'outcome' | 'upstream', value: string): void {
  const key = `${name}\u0000${dimension}\u0000${value}`;
  const tally = tallies.get(key);
  if (tally) tally.count++;
  else tallies.set(key, { name, dimension, value, count: 1 });
}

/** Writes the invocation's dimensioned counts (the handler wrapper calls it at the end). */
export function flushTallies(): void {
  for (const { name, dimension, value, count } of tallies.values()) {
    const single = metrics.singleMetric();
    single.addDimension(dimension, value);
    single.addMetric(name, MetricUnit.Count, count);
  }
  tallies.clear();
}

/** An upstream refused our credentials (401/403). */
export function countAuthFailure(upstream: string): void {
  countBy('upstreamAuthFailed', 'upstream', upstream);
}

export { MetricUnit };
