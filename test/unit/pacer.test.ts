import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pacer, retryAfterMs } from '../../lib/clients/pacer.ts';

// The per-upstream pacer on a fake clock: every release time is exact.

const T0 = Date.parse('2026-01-05T10:00:00.000Z');

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Starts `count` calls; each records (ms since T0) when the pacer let it go. */
function queueCalls(pacer: Pacer, count: number, signal?: AbortSignal) {
  const released: number[] = [];
  const calls = Array.from({ length: count }, () => pacer.acquire(signal).then(() => released.push(Date.now() - T0)));
  return { released, calls };
}

/** `accepted` calls answered 200 and then one answered 429 (Retry-After 1 s), all sent now. */
function overTheLimit(pacer: Pacer, accepted: number, retryAfter = 1000): void {
  const sentAt = Date.now();
  for (let i = 0; i < accepted; i++) pacer.settled(sentAt, 200);
  pacer.settled(sentAt, 429, retryAfter);
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe('Pacer', () => {
  it('lets every call go at once while the upstream has not said "slow down"', async () => {
    // prepare
    const pacer = new Pacer();

    // act
    const { released } = queueCalls(pacer, 50);
    await vi.advanceTimersByTimeAsync(0);

    // assess
    expect(released).toHaveLength(50);
    expect(new Set(released)).toEqual(new Set([0]));
    expect(pacer.state()).toEqual({ pacing: false, waiting: 0, throttled: 0 });
  });

  it('after a 429 holds every call until Retry-After, then releases them one by one at the accepted rate, not all at once', async () => {
    // prepare: 10 calls accepted in the last second, then a 429 with Retry-After: 1
    const pacer = new Pacer({ backoff: 0.9 });
    overTheLimit(pacer, 10);

    // act
    const { released } = queueCalls(pacer, 9);
    await vi.advanceTimersByTimeAsync(999);
    const beforeRetryAfter = released.length;
    await vi.advanceTimersByTimeAsync(1001);

    // assess: 0.9 × 10/s = 9/s, one every 111 ms from the end of Retry-After
    expect(beforeRetryAfter).toBe(0);
    expect(released[0]).toBe(1000);
    expect(released).toHaveLength(9);
    for (const gap of gaps(released)) expect(gap).toBeCloseTo(1000 / 9, -1);
    expect(released.at(-1)).toBeLessThanOrEqual(2000);
    expect(pacer.state()).toMatchObject({ pacing: true, throttled: 1 });
  });

  it('estimates the rate from what was accepted in the second before the 429, including answers that came late', async () => {
    // prepare: the 429 arrives first; the 6 accepted calls sent with it answer during the pause
    const pacer = new Pacer({ backoff: 1 });
    const sentAt = Date.now();
    pacer.settled(sentAt, 429, 1000);
    await vi.advanceTimersByTimeAsync(300);
    for (let i = 0; i < 6; i++) pacer.settled(sentAt, 200);

    // act
    const { released } = queueCalls(pacer, 3);
    await vi.advanceTimersByTimeAsync(2000);

    // assess: 6 accepted → 6/s
    expect(released[0]).toBe(1000);
    expect(released).toHaveLength(3);
    for (const gap of gaps(released)) expect(Math.abs(gap - 1000 / 6)).toBeLessThan(1);
    expect(pacer.state().rate).toBeCloseTo(6, 5);
  });

  it('cuts the rate once per round on a later 429; 429s of calls sent before the cut do not cut again', async () => {
    // prepare: pacing at 10/s
    const pacer = new Pacer({ backoff: 0.9, increase: 0 });
    overTheLimit(pacer, 10);
    const first = queueCalls(pacer, 1);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(first.calls);
    const paced = pacer.state().rate!;
    const sentBeforeCut = Date.now();
    for (let i = 0; i < 10; i++) pacer.settled(sentBeforeCut - 500, 200);

    // act: one 429 of a call sent now, then two more of calls sent before it
    pacer.settled(sentBeforeCut, 429, 1000);
    const next = queueCalls(pacer, 1);
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(next.calls);
    const afterCut = pacer.state().rate!;
    pacer.settled(sentBeforeCut - 1, 429, 1000);
    pacer.settled(sentBeforeCut - 2, 429, 1000);
    const later = queueCalls(pacer, 1);
    await vi.advanceTimersByTimeAsync(500);
    await Promise.all(later.calls);

    // assess
    expect(paced).toBeCloseTo(9, 5);
    expect(afterCut).toBeCloseTo(0.9 * 9, 5); // multiplicative decrease
    expect(pacer.state().rate).toBeCloseTo(afterCut, 5);
    expect(pacer.state().throttled).toBe(4);
  });

  it('grows the rate by a share of itself until the next 429 (slow start), while calls wait and each is accepted', async () => {
    // prepare: 4/s from the first 429, growing 20 % per second
    const pacer = new Pacer({ backoff: 1, slowStart: 0.2 });
    overTheLimit(pacer, 4);
    const { released, calls } = queueCalls(pacer, 41);

    // act: every released call is accepted 1 ms after it went
    let answered = 0;
    while (answered < 41) {
      await vi.advanceTimersByTimeAsync(1);
      while (answered < released.length) {
        pacer.settled(T0 + released[answered]!, 200);
        answered++;
      }
    }
    await Promise.all(calls);

    // assess: 4 × 1.2^t after t seconds of pacing
    const spanSeconds = (released.at(-1)! - released[0]!) / 1000;
    const rate = pacer.state().rate!;
    expect(rate).toBeGreaterThan(4 * 1.15 ** spanSeconds);
    expect(rate).toBeLessThan(4 * 1.25 ** spanSeconds + 1);
  });

  it('after a later 429 raises the rate additively, by a share of the rate set at that cut', async () => {
    // prepare: 4/s from the first 429 (0.8 × 5), cut to 3.2/s by a second one; then a step of 25 % of 3.2/s = 0.8/s per second
    const pacer = new Pacer({ backoff: 0.8, increase: 0.25 });
    overTheLimit(pacer, 5);
    const warmup = queueCalls(pacer, 1);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(warmup.calls);
    pacer.settled(Date.now(), 429, 1000);
    const { released, calls } = queueCalls(pacer, 41);

    // act: every released call is accepted 1 ms after it went
    let answered = 0;
    while (answered < 41) {
      await vi.advanceTimersByTimeAsync(1);
      while (answered < released.length) {
        pacer.settled(T0 + released[answered]!, 200);
        answered++;
      }
    }
    await Promise.all(calls);

    // assess: from 3.2/s, about +0.8/s per second of pacing
    const spanSeconds = (released.at(-1)! - released[0]!) / 1000;
    const rate = pacer.state().rate!;
    expect(rate).toBeGreaterThan(3.2 + 0.7 * spanSeconds);
    expect(rate).toBeLessThan(3.2 + 0.9 * spanSeconds + 0.5);
    expect(gaps(released).at(-1)!).toBeLessThan(gaps(released)[0]!);
  });

  it('a later 429 cuts the rate at least to backoff × what the upstream accepted in the second before', async () => {
    // prepare: pacing at 9/s (0.9 × 10), then the rate is pushed far above what is accepted
    const pacer = new Pacer({ backoff: 0.9, slowStart: 1 });
    overTheLimit(pacer, 10);
    const { released, calls } = queueCalls(pacer, 30);
    let answered = 0;
    while (released.length < 20) {
      await vi.advanceTimersByTimeAsync(1);
      while (answered < released.length) pacer.settled(T0 + released[answered++]!, 200);
    }
    const overshoot = pacer.state().rate!;
    const acceptedLastSecond = released.filter((at) => at > Date.now() - T0 - 1000).length;

    // act: the upstream says "slow down" again
    pacer.settled(Date.now(), 429, 1000);

    // assess: 0.9 × the overshoot would still exceed the accepted rate; the cut goes below it
    expect(overshoot * 0.9).toBeGreaterThan(acceptedLastSecond);
    expect(pacer.state().rate).toBeCloseTo(0.9 * acceptedLastSecond, 5);
    pacer.settled(Date.now(), 200);
    await vi.advanceTimersByTimeAsync(60_000);
    for (; answered < released.length; answered++) pacer.settled(T0 + released[answered]!, 200);
    await Promise.all(calls);
  });

  it('does not raise the rate from calls accepted while nobody waits', async () => {
    // prepare
    const pacer = new Pacer({ backoff: 1, increase: 0.25 });
    overTheLimit(pacer, 5);
    const first = queueCalls(pacer, 1);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(first.calls);

    // act
    for (let i = 0; i < 100; i++) pacer.settled(Date.now(), 200);

    // assess
    expect(pacer.state().rate).toBeCloseTo(5, 5);
  });

  it('ends the wait of a call whose signal aborts (the function deadline) without using a turn', async () => {
    // prepare
    const pacer = new Pacer({ backoff: 1 });
    overTheLimit(pacer, 2);
    const controller = new AbortController();
    const aborted = pacer.acquire(controller.signal);
    const other = queueCalls(pacer, 1);

    // act
    controller.abort(new Error('deadline'));
    const outcome = await aborted.then(() => 'released', (error: Error) => error.message);
    await vi.advanceTimersByTimeAsync(1000);

    // assess
    expect(outcome).toBe('deadline');
    expect(other.released).toEqual([1000]); // the first turn after Retry-After went to the other call
    expect(pacer.state().waiting).toBe(0);
  });

  it('lets a retry (a call already refused) go before first tries that wait', async () => {
    // prepare
    const pacer = new Pacer({ backoff: 1 });
    overTheLimit(pacer, 10);
    const order: string[] = [];
    const first = [pacer.acquire().then(() => order.push('first-1')), pacer.acquire().then(() => order.push('first-2'))];

    // act
    const retried = [pacer.acquire(undefined, true).then(() => order.push('retry-1')), pacer.acquire(undefined, true).then(() => order.push('retry-2'))];
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all([...first, ...retried]);

    // assess
    expect(order).toEqual(['retry-1', 'retry-2', 'first-1', 'first-2']);
  });

  it('refuses at once a call whose signal already aborted', async () => {
    // prepare
    const pacer = new Pacer();
    const controller = new AbortController();
    controller.abort(new Error('too late'));

    // act
    const outcome = await pacer.acquire(controller.signal).then(() => 'released', (error: Error) => error.message);

    // assess
    expect(outcome).toBe('too late');
  });

  it('stops pacing after relaxAfterMs without a 429', async () => {
    // prepare
    const pacer = new Pacer({ relaxAfterMs: 30_000 });
    overTheLimit(pacer, 3);
    await vi.advanceTimersByTimeAsync(30_001);

    // act
    const { released } = queueCalls(pacer, 20);
    await vi.advanceTimersByTimeAsync(0);

    // assess
    expect(released).toHaveLength(20);
    expect(pacer.state().pacing).toBe(false);
  });

  it('never paces slower than minRate, even when the upstream accepted nothing', async () => {
    // prepare
    const pacer = new Pacer({ minRate: 2 });
    overTheLimit(pacer, 0);

    // act
    const { released } = queueCalls(pacer, 3);
    await vi.advanceTimersByTimeAsync(3000);

    // assess
    expect(released).toEqual([1000, 1500, 2000]);
  });

  it('tells how long a call starting now would wait (what SQS is told when an order gives up)', async () => {
    // prepare
    const pacer = new Pacer({ backoff: 1 });
    const idle = pacer.backlogMs();
    overTheLimit(pacer, 5, 2000);
    queueCalls(pacer, 10);

    // act
    const backlog = pacer.backlogMs();

    // assess: 2 s of Retry-After, then 10 waiting calls at about 5/s
    expect(idle).toBe(0);
    expect(backlog).toBeGreaterThanOrEqual(2000 + 10 * 100);
    expect(backlog).toBeLessThanOrEqual(2000 + 10 * 1000);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pacer.state().waiting).toBe(0);
  });
});

describe('retryAfterMs', () => {
  it.each([
    ['1', 1000],
    ['0', 0],
    ['2.5', 2500],
    [' 3 ', 3000],
  ])('reads seconds: %s → %i ms', (header, ms) => {
    // act / assess
    expect(retryAfterMs(header)).toBe(ms);
  });

  it('reads an HTTP date relative to now, never negative', () => {
    // prepare
    const now = Date.parse('Mon, 05 Jan 2026 10:00:00 GMT');

    // act / assess
    expect(retryAfterMs('Mon, 05 Jan 2026 10:00:04 GMT', now)).toBe(4000);
    expect(retryAfterMs('Mon, 05 Jan 2026 09:59:00 GMT', now)).toBe(0);
  });

  it.each([null, undefined, '', 'soon'])('is undefined for %s', (header) => {
    // act / assess
    expect(retryAfterMs(header)).toBeUndefined();
  });
});
