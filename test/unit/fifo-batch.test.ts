import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { processFifoBatch, type FifoBatchOptions } from '../../lib/queue/fifo-batch.ts';
import { buildFifoBatch, buildSqsRecord } from '../factories/sqs.ts';

/** Lets every pending promise callback run (the batch starts what it can). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A handler whose calls finish only when the test says so: it tracks what is in flight,
 * the most that ever was, and the order in which records started.
 */
function controlledHandler() {
  const inFlight = new Map<string, { record: SQSRecord; resolve: () => void; reject: (error: Error) => void }>();
  const started: string[] = [];
  let maxInFlight = 0;
  const handle = vi.fn((record: SQSRecord) => {
    started.push(record.messageId);
    return new Promise<void>((resolve, reject) => {
      inFlight.set(record.messageId, {
        record,
        resolve: () => (inFlight.delete(record.messageId), resolve()),
        reject: (error) => (inFlight.delete(record.messageId), reject(error)),
      });
      maxInFlight = Math.max(maxInFlight, inFlight.size);
    });
  });
  return {
    handle,
    started,
    inFlight: () => [...inFlight.keys()],
    maxInFlight: () => maxInFlight,
    finish: async (id: string) => {
      const entry = inFlight.get(id);
      if (!entry) throw new Error(`${id} is not in flight (in flight: ${[...inFlight.keys()].join(', ')})`);
      entry.resolve();
      await settle();
    },
    fail: async (id: string) => {
      const entry = inFlight.get(id);
      if (!entry) throw new Error(`${id} is not in flight`);
      entry.reject(new Error(`${id} failed`));
      await settle();
    },
    /** Finishes whatever is in flight until the batch is done. */
    drain: async <T>(batch: Promise<T>): Promise<T> => {
      let done = false;
      void batch.then(() => (done = true));
      for (let round = 0; round < 100 && !done; round++) {
        await settle();
        for (const entry of [...inFlight.values()]) entry.resolve();
      }
      return batch;
    },
  };
}

const options = (overrides: Partial<FifoBatchOptions> = {}): FifoBatchOptions => ({
  concurrency: 5,
  remainingMs: () => 60_000,
  recordBudgetMs: 10_000,
  ...overrides,
});

const failedIds = (response: { batchItemFailures: { itemIdentifier: string }[] }) => response.batchItemFailures.map((f) => f.itemIdentifier);

describe('processFifoBatch — concurrency', () => {
  it.each([
    ['5 groups, bound 2', 5, 2, 2],
    ['5 groups, bound 5', 5, 5, 5],
    ['3 groups, bound 10', 3, 10, 3],
    ['4 groups, bound 1 (one after the other)', 4, 1, 1],
    ['3 groups, bound 0 (still one at a time)', 3, 0, 1],
  ])('%s: %i groups, bound %i → %i in flight at most', async (_, groups, concurrency, expectedMax) => {
    // prepare
    const batch = buildFifoBatch(Array.from({ length: groups }, (__, g) => [`order-${g}`, `g${g}-1`] as [string, string]));
    const handler = controlledHandler();

    // act
    const running = processFifoBatch(batch, handler.handle, options({ concurrency }));
    await settle();
    const atStart = handler.inFlight().length;
    const response = await handler.drain(running);

    // assess
    expect(atStart).toBe(expectedMax);
    expect(handler.maxInFlight()).toBe(expectedMax);
    expect(handler.handle).toHaveBeenCalledTimes(groups);
    expect(response.batchItemFailures).toEqual([]);
  });

  it('starts the next group as soon as one finishes, not when the whole wave is done', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1'], ['B', 'b1'], ['C', 'c1']]);
    const handler = controlledHandler();

    // act
    const running = processFifoBatch(batch, handler.handle, options({ concurrency: 2 }));
    await settle();
    const first = handler.inFlight();
    await handler.finish('b1');
    const second = handler.inFlight();
    await handler.drain(running);

    // assess
    expect(first).toEqual(['a1', 'b1']);
    expect(second.sort()).toEqual(['a1', 'c1']);
  });

  it('treats records without a message group (standard queue) as groups of their own', async () => {
    // prepare
    const batch = [buildSqsRecord({ messageId: 'x1' }), buildSqsRecord({ messageId: 'x2' })];
    const handler = controlledHandler();

    // act
    const running = processFifoBatch(batch, handler.handle, options({ concurrency: 5 }));
    await settle();
    const inFlight = handler.inFlight();
    await handler.drain(running);

    // assess
    expect(inFlight).toEqual(['x1', 'x2']);
  });
});

describe('processFifoBatch — order within a group', () => {
  it('runs the records of one group strictly one after the other, in batch order', async () => {
    // prepare: two orders interleaved in the batch
    const batch = buildFifoBatch([['A', 'a1'], ['B', 'b1'], ['A', 'a2'], ['B', 'b2'], ['A', 'a3']]);
    const handler = controlledHandler();

    // act
    const running = processFifoBatch(batch, handler.handle, options({ concurrency: 5 }));
    await settle();
    const wave1 = handler.inFlight();
    await handler.finish('a1');
    const wave2 = handler.inFlight();
    await handler.finish('a2');
    await handler.finish('b1');
    const wave3 = handler.inFlight();
    await handler.drain(running);

    // assess: never two records of one group at once, each group in batch order
    expect(wave1).toEqual(['a1', 'b1']);
    expect(wave2.sort()).toEqual(['a2', 'b1']);
    expect(wave3.sort()).toEqual(['a3', 'b2']);
    expect(handler.started.filter((id) => id.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(handler.started.filter((id) => id.startsWith('b'))).toEqual(['b1', 'b2']);
  });
});

describe('processFifoBatch — failures', () => {
  it('fails the rest of the failed record\'s group only; other groups complete', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1'], ['B', 'b1'], ['A', 'a2'], ['B', 'b2'], ['A', 'a3'], ['C', 'c1']]);
    const handler = controlledHandler();
    const onSkipped = vi.fn();

    // act
    const running = processFifoBatch(batch, handler.handle, options({ concurrency: 5, onSkipped }));
    await settle();
    await handler.finish('a1');
    await handler.fail('a2');
    const response = await handler.drain(running);

    // assess
    expect(failedIds(response)).toEqual(['a2', 'a3']);
    expect(handler.started).not.toContain('a3'); // must not overtake a2
    expect(handler.started).toEqual(expect.arrayContaining(['b1', 'b2', 'c1']));
    expect(onSkipped).toHaveBeenCalledTimes(1);
    expect(onSkipped).toHaveBeenCalledWith(expect.objectContaining({ messageId: 'a3' }), 'group-failed');
  });

  it('reports failures in batch order, whatever order they happened in', async () => {
    // prepare
    const batch = buildFifoBatch([['B', 'b1'], ['A', 'a1'], ['C', 'c1'], ['A', 'a2'], ['B', 'b2']]);
    const handler = controlledHandler();

    // act: c1 fails first, then a1, then b1
    const running = processFifoBatch(batch, handler.handle, options({ concurrency: 5 }));
    await settle();
    await handler.fail('c1');
    await handler.fail('a1');
    await handler.fail('b1');
    const response = await handler.drain(running);

    // assess
    expect(failedIds(response)).toEqual(['b1', 'a1', 'c1', 'a2', 'b2']);
  });

  it('returns no failures when everything succeeds', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1'], ['A', 'a2'], ['B', 'b1']]);

    // act
    const response = await processFifoBatch(batch, async () => undefined, options());

    // assess
    expect(response).toEqual({ batchItemFailures: [] });
  });
});

describe('processFifoBatch — time budget', () => {
  it.each([
    ['plenty of time: everything runs', [60_000], [], []],
    ['exactly the budget left: it still starts', [10_000], [], []],
    ['less than the budget from the start: nothing starts', [9_999], ['a1', 'b1', 'a2'], []],
    ['time runs short after the first record', [60_000, 9_000], ['b1', 'a2'], ['a1']],
  ])('%s', async (_, remaining, notStarted, ran) => {
    // prepare: concurrency 1 so the order of the checks is fixed: a1, a2, then b1
    const batch = buildFifoBatch([['A', 'a1'], ['B', 'b1'], ['A', 'a2']]);
    const left = [...remaining];
    const remainingMs = vi.fn(() => (left.length > 1 ? left.shift()! : left[0]!));
    const handled: string[] = [];
    const onSkipped = vi.fn();

    // act
    const response = await processFifoBatch(batch, async (record) => void handled.push(record.messageId), options({ concurrency: 1, remainingMs, recordBudgetMs: 10_000, onSkipped }));

    // assess
    expect(failedIds(response)).toEqual(notStarted);
    if (notStarted.length === 0) expect(handled).toEqual(['a1', 'a2', 'b1']);
    else expect(handled).toEqual(ran);
    expect(onSkipped.mock.calls.map(([record, why]) => [(record as SQSRecord).messageId, why]).sort()).toEqual(notStarted.map((id) => [id, 'no-time']).sort());
  });

  it('checks the time before each record, not once per batch', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1'], ['A', 'a2'], ['A', 'a3']]);
    let remaining = 30_000;
    const handled: string[] = [];

    // act: each record uses 10 s of the invocation
    const response = await processFifoBatch(
      batch,
      async (record) => {
        handled.push(record.messageId);
        remaining -= 10_000;
      },
      options({ remainingMs: () => remaining, recordBudgetMs: 15_000 }),
    );

    // assess: a1 (30 s left) and a2 (20 s) run; a3 (10 s < 15 s) is left for the redelivery
    expect(handled).toEqual(['a1', 'a2']);
    expect(failedIds(response)).toEqual(['a3']);
  });
});

describe('processFifoBatch — an upstream that said "slow down"', () => {
  const slowDown = Object.assign(new Error('Komfortkasse answered 429'), { retryAfterMs: 1500 });
  const retryAfterMs = (error: unknown) => (error as { retryAfterMs?: number }).retryAfterMs;

  it('hands the throttled record and the rest of its group back after the Retry-After; other failures keep the visibility timeout', async () => {
    // prepare: A is throttled at a1, B fails for another reason at b1, C succeeds
    const batch = buildFifoBatch([['A', 'a1'], ['B', 'b1'], ['A', 'a2'], ['C', 'c1'], ['A', 'a3'], ['B', 'b2']]);
    const handBack = vi.fn(async () => undefined);
    const handle = async (record: SQSRecord) => {
      if (record.messageId === 'a1') throw slowDown;
      if (record.messageId === 'b1') throw new Error('Komfortkasse answered 503');
    };

    // act
    const response = await processFifoBatch(batch, handle, options({ retryAfterMs, handBack }));

    // assess
    expect(failedIds(response)).toEqual(['a1', 'b1', 'a2', 'a3', 'b2']);
    expect(handBack).toHaveBeenCalledTimes(1);
    expect(handBack).toHaveBeenCalledWith(
      [expect.objectContaining({ messageId: 'a1' }), expect.objectContaining({ messageId: 'a2' }), expect.objectContaining({ messageId: 'a3' })],
      1500,
    );
  });

  it('hands back only from the throttled record on, not what its group already finished', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1'], ['A', 'a2'], ['A', 'a3']]);
    const handBack = vi.fn(async () => undefined);

    // act
    const response = await processFifoBatch(
      batch,
      async (record) => {
        if (record.messageId === 'a2') throw slowDown;
      },
      options({ retryAfterMs, handBack }),
    );

    // assess
    expect(failedIds(response)).toEqual(['a2', 'a3']);
    expect((handBack.mock.calls[0] as unknown as [SQSRecord[]])[0].map((r) => r.messageId)).toEqual(['a2', 'a3']);
  });

  it('hands nothing back when no failure carries a Retry-After', async () => {
    // prepare
    const batch = buildFifoBatch([['A', 'a1']]);
    const handBack = vi.fn(async () => undefined);

    // act
    const response = await processFifoBatch(
      batch,
      async () => {
        throw new Error('network');
      },
      options({ retryAfterMs, handBack }),
    );

    // assess
    expect(failedIds(response)).toEqual(['a1']);
    expect(handBack).not.toHaveBeenCalled();
  });
});
