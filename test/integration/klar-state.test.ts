import { readFileSync } from 'node:fs';
import type { ScheduledEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { metrics } from '../../lib/observability/metrics.ts';
import { listKlarReadings, type KlarReading } from '../../lib/store/klar-readings.ts';
import { lambdaContext } from '../../local/events.ts';
import type { RunningStack } from '../../local/stack.ts';
import { bootStack } from './harness.ts';

const MINUTE = 60_000;

describe('poll-klar-state against the Klar simulator', () => {
  let stack: RunningStack;
  const klar = () => stack.simulators.klar!;
  /** The metrics the handler published in this test, by name (last value wins). */
  let published: Map<string, { unit: string; value: number }>;

  beforeAll(async () => {
    stack = await bootStack({ workers: false });
  });
  afterAll(async () => stack?.stop());
  beforeEach(() => {
    klar().reset();
    published = new Map();
    vi.spyOn(metrics, 'addMetric').mockImplementation((name: string, unit: string, value: number) => {
      published.set(name, { unit, value });
      return undefined as never;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('records a reading of Klar’s own format: string numbers and "2023-03-11 T12:13:31.193Z" timestamps', async () => {
    // prepare: the seed's example state
    klar().setState({ total: '9', lastBatchCount: '4', lastSuccess: '2023-03-11T12:13:31.193Z', lastFailure: '2023-03-11T09:06:50.321Z' });
    expect(klar().state).toEqual({ total: '9', lastBatchCount: '4', lastSuccess: '2023-03-11 T12:13:31.193Z', lastFailure: '2023-03-11 T09:06:50.321Z' });
    // act
    const returned = (await stack.fireSchedule('poll-klar-state')) as KlarReading;
    // assess
    const [reading] = await listKlarReadings(1);
    expect(reading).toEqual({
      at: returned.at,
      endpoint: '/transaction-costs/state',
      dryRun: false,
      total: 9,
      lastBatchCount: 4,
      lastSuccess: '2023-03-11T12:13:31.193Z',
      lastFailure: '2023-03-11T09:06:50.321Z',
      failing: false,
    });
    const [request] = klar().requests;
    expect(request).toMatchObject({ method: 'GET', path: '/transaction-costs/state', status: 200 });
    expect(request!.headers.authorization).toBe(`Bearer ${klar().token}`);
    expect(published.get('klarTotal')).toEqual({ unit: 'Count', value: 9 });
    expect(published.get('klarLastBatchCount')).toEqual({ unit: 'Count', value: 4 });
    const age = published.get('klarSecondsSinceLastSuccess');
    expect(age?.unit).toBe('Seconds');
    expect(age!.value).toBeGreaterThanOrEqual(Math.floor((Date.parse(returned.at) - Date.parse('2023-03-11T12:13:31.193Z')) / 1000));
    expect(published.get('klarImportFailing')).toEqual({ unit: 'Count', value: 0 });
  });

  it('flags a failure newer than the last success with the alarm metric', async () => {
    // prepare
    const now = Date.now();
    klar().setState({ total: 120, lastBatchCount: 20, lastSuccess: new Date(now - 60 * MINUTE), lastFailure: new Date(now - 5 * MINUTE) });
    // act
    await stack.fireSchedule('poll-klar-state');
    // assess
    const [reading] = await listKlarReadings(1);
    expect(reading).toMatchObject({ failing: true, total: 120, lastFailure: new Date(now - 5 * MINUTE).toISOString() });
    expect(published.get('klarImportFailing')).toEqual({ unit: 'Count', value: 1 });
    expect(published.get('klarSecondsSinceLastSuccess')!.value).toBeGreaterThanOrEqual(3600);
  });

  it('reads the state left by real uploads and keeps every reading, newest first', async () => {
    // prepare: a success after an older failure, as Klar would report after a good upload
    klar().setState({ lastFailure: new Date(Date.now() - 10 * MINUTE) });
    const upload = await fetch(`${klar().url}/${klar().version}/transaction-costs/json`, {
      method: 'POST',
      headers: { authorization: `Bearer ${klar().token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ orderId: '1', transactionCosts: 0.5 }, { orderId: '2', transactionCosts: 0 }] }),
    });
    expect(upload.status).toBe(201);
    const before = (await listKlarReadings(100)).length;
    // act
    const first = (await stack.fireSchedule('poll-klar-state')) as KlarReading;
    const second = (await stack.fireSchedule('poll-klar-state')) as KlarReading;
    // assess
    const readings = await listKlarReadings(100);
    expect(readings).toHaveLength(before + 2);
    expect(readings.slice(0, 2).map((r) => r.at)).toEqual([second.at, first.at]);
    expect(readings[0]).toMatchObject({ total: 2, lastBatchCount: 2, failing: false });
    expect(published.get('klarImportFailing')?.value).toBe(0);
  });

  it('falls back to /transaction-costs/status when /state answers 404', async () => {
    // prepare
    klar().setState({ total: 3, lastSuccess: '2024-06-01T08:00:00.000Z' });
    klar().injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 404, body: { status: 'NOT_FOUND' } });
    // act
    const returned = (await stack.fireSchedule('poll-klar-state')) as KlarReading;
    // assess
    expect(klar().requests.map((r) => [r.path, r.status])).toEqual([
      ['/transaction-costs/state', 404],
      ['/transaction-costs/status', 200],
    ]);
    const [reading] = await listKlarReadings(1);
    expect(reading).toMatchObject({ at: returned.at, endpoint: '/transaction-costs/status', total: 3, lastSuccess: '2024-06-01T08:00:00.000Z', failing: false });
  });

  it('retries a 503 on /state instead of falling back, and records nothing when the state is unreadable', async () => {
    // prepare
    klar().setState({ total: 5 });
    klar().injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 503 });
    // act
    const returned = (await stack.fireSchedule('poll-klar-state')) as KlarReading;
    // assess
    expect(klar().requests.map((r) => [r.path, r.status])).toEqual([
      ['/transaction-costs/state', 503],
      ['/transaction-costs/state', 200],
    ]);
    expect(returned).toMatchObject({ endpoint: '/transaction-costs/state', total: 5 });

    // prepare: a body the poller cannot read
    const count = (await listKlarReadings(100)).length;
    klar().injectFault({ method: 'GET', pathPrefix: '/transaction-costs/state', status: 200, body: { total: 'many', lastSuccess: 'yesterday' } });
    // act + assess: the invocation fails (Errors metric) and no reading is invented
    await expect(stack.fireSchedule('poll-klar-state')).rejects.toThrow(/unreadable fields: total, lastSuccess/);
    expect(await listKlarReadings(100)).toHaveLength(count);
  });

  it('runs the console sample event (events/poll-klar-state-scheduled.json)', async () => {
    // prepare
    const event = JSON.parse(readFileSync(new URL('../../events/poll-klar-state-scheduled.json', import.meta.url), 'utf8')) as ScheduledEvent;
    klar().setState({ total: 1, lastBatchCount: 1, lastSuccess: new Date() });
    const { handler } = await import('../../functions/poll-klar-state.ts');
    // act
    const reading = (await handler(event, lambdaContext('poll-klar-state', 30) as never)) as KlarReading;
    // assess
    expect(reading).toMatchObject({ endpoint: '/transaction-costs/state', total: 1, failing: false });
    expect((await listKlarReadings(1))[0]?.at).toBe(reading.at);
  });
});
