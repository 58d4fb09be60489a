import { afterEach, describe, expect, it, vi } from 'vitest';
import { countBy, countWebhookOutcome, flushTallies, metrics } from '../../lib/observability/metrics.ts';

describe('dimensioned counts', () => {
  afterEach(() => vi.restoreAllMocks());

  it('sums a series per invocation and writes one single metric per series', () => {
    // prepare
    flushTallies();
    const written: { name: string; dimensions: Record<string, string>; value: number }[] = [];
    vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
      const dimensions: Record<string, string> = {};
      const single = {
        addDimension: (name: string, value: string) => ((dimensions[name] = value), single),
        addMetric: (name: string, _unit: unknown, value: number) => (written.push({ name, dimensions, value }), single),
      };
      return single as never;
    });
    // act
    countBy('komfortkasseOutcome', 'outcome', 'submitted');
    countBy('komfortkasseOutcome', 'outcome', 'unchanged');
    countBy('komfortkasseOutcome', 'outcome', 'submitted');
    countBy('upstreamAuthFailed', 'upstream', 'Klar');
    const beforeFlush = written.length;
    flushTallies();
    flushTallies(); // nothing twice
    // assess
    expect(beforeFlush).toBe(0);
    expect(written).toEqual([
      { name: 'komfortkasseOutcome', dimensions: { outcome: 'submitted' }, value: 2 },
      { name: 'komfortkasseOutcome', dimensions: { outcome: 'unchanged' }, value: 1 },
      { name: 'upstreamAuthFailed', dimensions: { upstream: 'Klar' }, value: 1 },
    ]);
  });

  it('puts the webhook outcome on the invocation\'s own blob, as a dimension', () => {
    // prepare
    const dimension = vi.spyOn(metrics, 'addDimension');
    const metric = vi.spyOn(metrics, 'addMetric');
    const single = vi.spyOn(metrics, 'singleMetric');
    // act
    countWebhookOutcome('accepted');
    // assess
    expect(dimension).toHaveBeenCalledWith('outcome', 'accepted');
    expect(metric).toHaveBeenCalledWith('webhookOutcome', 'Count', 1);
    expect(single).not.toHaveBeenCalled();
    metrics.publishStoredMetrics(); // metrics are off in tests: clears without printing
  });
});
