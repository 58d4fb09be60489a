import { describe, expect, it } from 'vitest';
import { readStackDefinition, type EventSource } from '../../local/infra.ts';

// The local stack reads serverless.yml with the shell's environment, as a deploy does: the
// order worker's maximumConcurrency is the same number in both places.

const ordersSource = (env: NodeJS.ProcessEnv): Extract<EventSource, { type: 'sqs' }> => {
  const fn = readStackDefinition({ stage: 'local', env }).functions.find((f) => f.name === 'sync-order')!;
  return fn.events.find((e): e is Extract<EventSource, { type: 'sqs' }> => e.type === 'sqs')!;
};

describe('readStackDefinition: the order worker event source', () => {
  it('has a maximumConcurrency of 5 unless ORDER_WORKER_CONCURRENCY says otherwise', () => {
    // prepare
    const env = {};

    // act
    const source = ordersSource(env);

    // assess
    expect(source).toMatchObject({ queueLogicalId: 'OrdersQueue', batchSize: 10, maximumConcurrency: 5, reportBatchItemFailures: true });
  });

  it('takes ORDER_WORKER_CONCURRENCY from the environment', () => {
    // prepare
    const env = { ORDER_WORKER_CONCURRENCY: '12' };

    // act
    const source = ordersSource(env);

    // assess
    expect(source.maximumConcurrency).toBe(12);
  });

  it.each(['1', 'many', '2.5', '1001'])('refuses ORDER_WORKER_CONCURRENCY=%s (SQS allows 2 to 1000)', (value) => {
    // prepare
    const env = { ORDER_WORKER_CONCURRENCY: value };

    // act
    const read = () => ordersSource(env);

    // assess
    expect(read).toThrow(/sync-order: maximumConcurrency must be a whole number from 2 to 1000/);
  });

  it('keeps the Klar worker at the two concurrent batches serverless.yml gives it', () => {
    // prepare
    const definition = readStackDefinition({ stage: 'local', env: {} });

    // act
    const klar = definition.functions.find((f) => f.name === 'upload-klar-costs')!.events[0];

    // assess
    expect(klar).toMatchObject({ type: 'sqs', maximumConcurrency: 2 });
  });
});
