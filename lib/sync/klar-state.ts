import { fetchKlarState } from '../clients/klar.ts';
import { parseKlarState } from '../domain/klar.ts';
import { MetricUnit, count, gauge } from '../observability/metrics.ts';
import { config } from '../config/index.ts';
import { recordKlarReading, type KlarReading } from '../store/klar-readings.ts';

/** Reads Klar's import state, records the reading and publishes its metrics. */
export async function pollKlarState(now = new Date()): Promise<KlarReading> {
  const { endpoint, body } = await fetchKlarState();
  const state = parseKlarState(body, now);
  const reading: KlarReading = {
    at: now.toISOString(),
    endpoint,
    total: state.total,
    lastBatchCount: state.lastBatchCount,
    lastSuccess: state.lastSuccess?.toISOString(),
    lastFailure: state.lastFailure?.toISOString(),
    failing: state.failing,
    dryRun: config().DRY_RUN,
  };
  await recordKlarReading(reading, now);
  if (state.total !== undefined) gauge('klarTotal', state.total);
  if (state.lastBatchCount !== undefined) gauge('klarLastBatchCount', state.lastBatchCount);
  if (state.secondsSinceLastSuccess !== undefined) gauge('klarSecondsSinceLastSuccess', state.secondsSinceLastSuccess, MetricUnit.Seconds);
  // The alarm in serverless.yml fires on any non-zero value.
  count('klarImportFailing', state.failing ? 1 : 0);
  return reading;
}
