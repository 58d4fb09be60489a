import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** EMF metrics; one name per outcome so alarms can key on them (see serverless.yml). */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Orderbridge',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'orderbridge',
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

/** Writes the buffered EMF blob; called at the end of every invocation. */
export function flushMetrics(): void {
  if (process.env.ORDERBRIDGE_METRICS === 'off') return;
  metrics.publishStoredMetrics();
}

export { MetricUnit };
