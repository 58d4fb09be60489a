import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelEnvironment } from '../model/environment.ts';
import { REGRESSIONS } from '../model/regressions.ts';

// Every schedule `npm run test:model` ever failed, replayed exactly (the interleaving is
// part of the schedule) on the real order path and DynamoDB Local; all invariants must hold.
describe('model-based interleaving test: regression schedules', () => {
  let model: ModelEnvironment;
  let nextOrderId = 8_000_000 + (Date.now() % 100_000) * 10;

  beforeAll(async () => {
    // The workers' logs would drown the report; the model loads them after this.
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    const { startModelEnvironment } = await import('../model/environment.ts');
    model = await startModelEnvironment();
  });
  afterAll(async () => model?.stop());

  for (const regression of REGRESSIONS) {
    it(regression.name, async () => {
      // prepare: the shrunk schedule, in its own key space
      const firstOrderId = nextOrderId;
      nextOrderId += 10;

      // act
      const result = await model.runSchedule(regression.schedule, firstOrderId);

      // assess
      expect(result.violations, `${regression.found}\ninterleaving:\n  ${result.trace.join('\n  ')}`).toEqual([]);
    });
  }
});
