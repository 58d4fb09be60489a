import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import * as z from 'zod';
import { config, flagOn } from '../config/index.ts';
import { describeError } from '../domain/errors.ts';
import { queueCounts } from '../queue/sqs.ts';
import { klarReadingSchema, listKlarReadings } from '../store/klar-readings.ts';
import { listReconcileRuns, reconcileRunSchema, type ReconcileRun } from '../store/reconcile-runs.ts';
import { getShopApiCheck, shopApiCheckSchema, shopApiFailing } from '../store/shop-api-check.ts';
import { EXIT, printJson, println, renderTable, type CliIo } from './io.ts';
import { needsAttention } from './needs-attention.ts';
import { queueName, resolveRedrivePair } from './redrive.ts';
import { SIDE_LABEL, SIDE_VARIABLE, SIDES, sideState, sidesFor, sidesSchema, type Sides } from './sides.ts';
import type { QueueUrls, Target } from './target.ts';

/**
 * `orderbridge status`: one screen of what an operator checks first — queue and DLQ depths
 * with the age of their oldest message, parked orders, Klar's import state, the last
 * reconciliation and DRY_RUN — ending with what needs a look. Read-only: it never receives
 * from a queue (that would count as a delivery and move messages towards the DLQ).
 */

export const STATUS_QUEUES = ['orders', 'ordersDlq', 'klarCosts', 'klarCostsDlq'] as const;
export type StatusQueue = (typeof STATUS_QUEUES)[number];

/** A reconcile runs daily; none completed for this long means the schedule is broken. */
export const RECONCILE_STALE_AFTER_MS = 2 * 86_400_000;
/** A failed shop API check this recent (and not followed by a good one) needs a look. */
export const SHOP_API_FAILING_WITHIN_MS = 86_400_000;
/** CloudWatch's ApproximateAgeOfOldestMessage: the latest datapoint of this window. */
export const AGE_WINDOW_MS = 15 * 60_000;

export const queueStatusSchema = z.object({
  queue: z.enum(STATUS_QUEUES),
  /** the SQS queue name; null when the target names no such queue */
  name: z.string().nullable(),
  deadLetter: z.boolean(),
  /** ApproximateNumberOfMessages */
  visible: z.number().int().nonnegative().nullable(),
  /** ApproximateNumberOfMessagesNotVisible: received by a worker (or redrive) and not yet deleted */
  inFlight: z.number().int().nonnegative().nullable(),
  /** age of the oldest message in seconds; null = no data (CloudWatch had no datapoint, or it could not be read) */
  oldestAgeSeconds: z.number().nonnegative().nullable(),
  /** where the age comes from: CloudWatch (AWS) or the SQS emulator's inspection endpoint (local) */
  oldestAgeFrom: z.enum(['cloudwatch', 'emulator']),
  /** CloudWatch: the time of the datapoint used */
  oldestAgeAt: z.string().optional(),
  error: z.string().optional(),
});
export type QueueStatus = z.infer<typeof queueStatusSchema>;

export const statusJsonSchema = z.object({
  at: z.iso.datetime(),
  /** where the CLI looked, as `--stage` / the local stack resolved */
  target: z.string(),
  queues: z.array(queueStatusSchema),
  needsAttention: z.object({
    /** orders parked on either side */
    orders: z.number().int().nonnegative().nullable(),
    komfortkasse: z.number().int().nonnegative().nullable(),
    klar: z.number().int().nonnegative().nullable(),
    error: z.string().optional(),
  }),
  klar: z.object({
    lastReading: z.nullable(klarReadingSchema),
    /** a failure newer than the last success (the KlarImportFailure alarm); null without a reading */
    failing: z.boolean().nullable(),
    error: z.string().optional(),
  }),
  reconcile: z.object({
    lastRun: z.nullable(reconcileRunSchema),
    /** the newest run that enqueued for real and did not fail */
    lastCompletedAt: z.string().nullable(),
    error: z.string().optional(),
  }),
  /** which sides the workers have switched on (KOMFORTKASSE_ENABLED, KLAR_ENABLED) */
  sides: sidesSchema,
  shopApi: z.object({
    /** the order worker's check of the shop API after a 404 for an order; null: no 404 checked yet */
    lastCheck: z.nullable(shopApiCheckSchema),
    /** a failure in the last day, newer than the last success: 404s are held as a configuration error */
    failing: z.boolean().nullable(),
    error: z.string().optional(),
  }),
  dryRun: z.object({
    /** null: unknown (no Klar reading from the deployed poller yet) */
    value: z.boolean().nullable(),
    source: z.string(),
  }),
  /** what an operator should look at, one sentence each; empty = all clear */
  needsALook: z.array(z.string()),
});
export type StatusJson = z.infer<typeof statusJsonSchema>;

/** How the age of a queue's oldest message is measured on this target. */
export type AgeSource = { kind: 'cloudwatch' } | { kind: 'emulator'; endpoint: string };

export function ageSourceFor(target: Target, env: NodeJS.ProcessEnv = process.env): AgeSource {
  if (target.kind === 'stage') return { kind: 'cloudwatch' };
  const endpoint = target.kind === 'local' ? target.env.AWS_ENDPOINT_URL_SQS : env.AWS_ENDPOINT_URL_SQS;
  return endpoint ? { kind: 'emulator', endpoint } : { kind: 'cloudwatch' };
}

/** DRY_RUN as the workers of the target have it. */
export function dryRunFor(target: Target, lastReading: { at: string; dryRun?: boolean } | undefined): StatusJson['dryRun'] {
  if (target.kind === 'local') {
    return { value: flagOn(target.env.DRY_RUN), source: "the local stack's environment" };
  }
  if (target.kind === 'env') return { value: config().DRY_RUN, source: 'this environment' };
  // The deployed functions' setting is not readable from here; the poller records it.
  if (lastReading?.dryRun !== undefined) return { value: lastReading.dryRun, source: `as reported by poll-klar-state at ${lastReading.at}` };
  return { value: null, source: 'unknown: no Klar reading from poll-klar-state records it yet' };
}

export async function collectStatus(target: Target, now = new Date()): Promise<StatusJson> {
  const ageSource = ageSourceFor(target);
  const [queues, attention, klar, reconcile, sides, shopApi] = await Promise.all([
    queueStatuses(target.queues, ageSource, now),
    settle(async () => {
      const entries = await needsAttention();
      return {
        orders: entries.length,
        komfortkasse: entries.filter((e) => e.komfortkasse.state === 'needs-attention').length,
        klar: entries.filter((e) => e.klar.state === 'needs-attention').length,
      };
    }),
    settle(async () => (await listKlarReadings(1))[0]),
    settle(() => listReconcileRuns(25)),
    sidesFor(target),
    settle(getShopApiCheck),
  ]);
  const lastReading = klar.ok ? klar.value : undefined;
  const runs = reconcile.ok ? reconcile.value : [];
  const report: Omit<StatusJson, 'needsALook'> = {
    at: now.toISOString(),
    target: target.description,
    queues,
    needsAttention: attention.ok ? attention.value : { orders: null, komfortkasse: null, klar: null, error: attention.error },
    klar: { lastReading: lastReading ?? null, failing: lastReading ? lastReading.failing : null, ...(klar.ok ? {} : { error: klar.error }) },
    reconcile: {
      lastRun: runs[0] ?? null,
      lastCompletedAt: runs.find(didReconcile)?.at ?? null,
      ...(reconcile.ok ? {} : { error: reconcile.error }),
    },
    sides,
    shopApi: shopApi.ok
      ? { lastCheck: shopApi.value ?? null, failing: shopApiFailing(shopApi.value, now, SHOP_API_FAILING_WITHIN_MS) }
      : { lastCheck: null, failing: null, error: shopApi.error },
    dryRun: dryRunFor(target, lastReading),
  };
  return statusJsonSchema.parse({ ...report, needsALook: whatNeedsALook(report, now) });
}

/** A run that compared and enqueued for real (a dry run or a failed run fixed nothing). */
function didReconcile(run: ReconcileRun): boolean {
  return !run.dryRun && run.error === undefined;
}

/** The sentences under "Needs a look", in the order an operator should act on them. */
export function whatNeedsALook(report: Omit<StatusJson, 'needsALook'>, now: Date): string[] {
  const look: string[] = [];
  for (const q of report.queues) {
    const label = q.name ?? q.queue;
    if (q.error) look.push(`${label}: could not be read (${q.error})`);
    const depth = (q.visible ?? 0) + (q.inFlight ?? 0);
    if (q.deadLetter && depth > 0) {
      const source = q.queue === 'ordersDlq' ? 'orders' : 'klar-costs';
      const age = q.oldestAgeSeconds === null ? '' : `, the oldest ${formatAge(q.oldestAgeSeconds)} old`;
      look.push(`${label} holds ${depth} message(s)${age}: see why with \`orderbridge redrive ${source} --dry-run\`, then \`orderbridge redrive ${source}\``);
    }
  }
  const parked = report.needsAttention;
  if (parked.error) look.push(`needs-attention could not be read (${parked.error})`);
  else if (parked.orders) {
    look.push(
      `${parked.orders} order(s) need attention (komfortkasse ${parked.komfortkasse}, klar ${parked.klar}): \`orderbridge needs-attention\`; ` +
        'after fixing the cause, `orderbridge replay --needs-attention`',
    );
  }
  const klar = report.klar;
  // Klar off: its old readings (and their failure) are history, not a finding.
  const klarOff = report.sides.klar === false;
  if (klar.error && !klarOff) look.push(`Klar readings could not be read (${klar.error})`);
  else if (klar.failing && klar.lastReading && !klarOff) {
    look.push(
      `Klar's import is failing: its last failure (${klar.lastReading.lastFailure}) is newer than its last success ` +
        `(${klar.lastReading.lastSuccess ?? 'never'}): \`orderbridge klar-state\``,
    );
  }
  const shopApi = report.shopApi;
  if (shopApi.error) look.push(`the shop API check could not be read (${shopApi.error})`);
  else if (shopApi.failing && shopApi.lastCheck) {
    look.push(
      `the shop answered 404 for an order and its API did not answer either (${shopApi.lastCheck.lastFailureAt}: ${shopApi.lastCheck.lastError ?? 'no answer'}): ` +
        'check VERSACOMMERCE_BASE_URL and the VersaCommerce credentials; those orders were left untouched — after fixing, `orderbridge redrive orders`',
    );
  }
  const reconcile = report.reconcile;
  if (reconcile.error) look.push(`reconcile runs could not be read (${reconcile.error})`);
  else {
    if (reconcile.lastRun?.error) look.push(`the last reconcile (${reconcile.lastRun.at}, ${reconcile.lastRun.trigger}) failed: ${reconcile.lastRun.error}`);
    const completed = reconcile.lastCompletedAt ? Date.parse(reconcile.lastCompletedAt) : undefined;
    if (completed === undefined || now.getTime() - completed > RECONCILE_STALE_AFTER_MS) {
      look.push(
        `no reconcile in the last 2 days (${reconcile.lastCompletedAt ? `last completed ${reconcile.lastCompletedAt}` : 'none completed on record'}): ` +
          'is the reconcile schedule running? `orderbridge reconcile --since <date>` runs one now',
      );
    }
  }
  return look;
}

/** `{ ok, value }` or the error as one line: one unreadable part must not hide the others. */
async function settle<T>(read: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}

async function queueStatuses(urls: QueueUrls, ageSource: AgeSource, now: Date): Promise<QueueStatus[]> {
  const resolved = await resolveQueueUrls(urls);
  const ages = ageSource.kind === 'cloudwatch' ? await cloudWatchAges(resolved, now) : undefined;
  return Promise.all(
    STATUS_QUEUES.map(async (queue): Promise<QueueStatus> => {
      const url = resolved[queue];
      const base = {
        queue,
        name: url ? queueName(url) : null,
        deadLetter: queue === 'ordersDlq' || queue === 'klarCostsDlq',
        oldestAgeFrom: ageSource.kind,
      } as const;
      if (!url) return { ...base, visible: null, inFlight: null, oldestAgeSeconds: null, error: 'the target names no such queue' };
      const errors: string[] = [];
      const counts = await settle(() => queueCounts(url));
      if (!counts.ok) errors.push(counts.error);
      let age: { seconds: number | null; at?: string };
      if (ageSource.kind === 'emulator') {
        const measured = await settle(() => emulatorOldestAge(ageSource.endpoint, queueName(url), now));
        if (!measured.ok) errors.push(`oldest age: ${measured.error}`);
        age = { seconds: measured.ok ? measured.value : null };
      } else {
        const measured = ages!.get(queue);
        if (measured && 'error' in measured) errors.push(`oldest age: ${measured.error}`);
        age = measured && !('error' in measured) ? measured : { seconds: null };
      }
      return {
        ...base,
        visible: counts.ok ? counts.value.visible : null,
        inFlight: counts.ok ? counts.value.inFlight : null,
        oldestAgeSeconds: age.seconds,
        ...(age.at ? { oldestAgeAt: age.at } : {}),
        ...(errors.length ? { error: errors.join('; ') } : {}),
      };
    }),
  );
}

/** The four URLs; a target that knows only the source queues (a Lambda's environment) finds the DLQs by redrive policy. */
async function resolveQueueUrls(urls: QueueUrls): Promise<Partial<Record<StatusQueue, string>>> {
  const resolved: Partial<Record<StatusQueue, string>> = { ...urls };
  for (const [queue, dlq] of [
    ['orders', 'ordersDlq'],
    ['klar-costs', 'klarCostsDlq'],
  ] as const) {
    if (resolved[dlq]) continue;
    const pair = await settle(() => resolveRedrivePair(queue, urls));
    if (pair.ok) resolved[dlq] = pair.value.dlq;
  }
  return resolved;
}

/**
 * ApproximateAgeOfOldestMessage of every queue in one GetMetricData call: the latest
 * datapoint of the last 15 minutes, or no data (seconds null).
 */
async function cloudWatchAges(
  urls: Partial<Record<StatusQueue, string>>,
  now: Date,
): Promise<Map<StatusQueue, { seconds: number | null; at?: string } | { error: string }>> {
  const queues = STATUS_QUEUES.filter((queue) => urls[queue]);
  const ages = new Map<StatusQueue, { seconds: number | null; at?: string } | { error: string }>();
  if (queues.length === 0) return ages;
  const client = new CloudWatchClient({});
  try {
    const { MetricDataResults = [] } = await client.send(
      new GetMetricDataCommand({
        StartTime: new Date(now.getTime() - AGE_WINDOW_MS),
        EndTime: now,
        ScanBy: 'TimestampDescending',
        MetricDataQueries: queues.map((queue) => ({
          Id: metricId(queue),
          ReturnData: true,
          MetricStat: {
            Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage', Dimensions: [{ Name: 'QueueName', Value: queueName(urls[queue]!) }] },
            Period: 60,
            Stat: 'Maximum',
          },
        })),
      }),
    );
    for (const queue of queues) {
      const result = MetricDataResults.find((r) => r.Id === metricId(queue));
      const points = (result?.Timestamps ?? []).map((at, index) => ({ at: new Date(at), value: result?.Values?.[index] })).filter((p) => p.value !== undefined);
      const latest = points.sort((a, b) => b.at.getTime() - a.at.getTime())[0];
      ages.set(queue, latest ? { seconds: latest.value!, at: latest.at.toISOString() } : { seconds: null });
    }
  } catch (error) {
    for (const queue of queues) ages.set(queue, { error: describeError(error) });
  } finally {
    client.destroy();
  }
  return ages;
}

/** GetMetricData ids start with a lower-case letter and hold only letters, digits and underscores. */
function metricId(queue: StatusQueue): string {
  return `age_${queue}`;
}

const emulatorMessageSchema = z.object({ sentTimestamp: z.number() });
/** The part of fauxqs's `GET /_fauxqs/queues/<name>` answer we read (node_modules/fauxqs/README.md, "Queue inspection"). */
const emulatorQueueSchema = z.object({
  messages: z.object({
    ready: z.array(emulatorMessageSchema),
    delayed: z.array(emulatorMessageSchema),
    inflight: z.array(z.object({ message: emulatorMessageSchema })),
  }),
});

/**
 * The SQS emulator has no CloudWatch; its inspection endpoint lists every message (ready,
 * delayed, in flight) without receiving any. An empty queue has age 0, as in CloudWatch.
 */
async function emulatorOldestAge(endpoint: string, name: string, now: Date): Promise<number> {
  const response = await fetch(`${endpoint.replace(/\/+$/, '')}/_fauxqs/queues/${encodeURIComponent(name)}`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`the SQS emulator answered ${response.status} to the queue inspection of ${name}`);
  const { messages } = emulatorQueueSchema.parse(await response.json());
  const sent = [...messages.ready, ...messages.delayed, ...messages.inflight.map((entry) => entry.message)].map((m) => m.sentTimestamp);
  if (sent.length === 0) return 0;
  return Math.max(0, Math.floor((now.getTime() - Math.min(...sent)) / 1000));
}

/** 42s, 3m 20s, 5h 12m, 2d 4h. */
export function formatAge(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export function renderStatus(status: StatusJson): string {
  const lines: string[] = [`Orderbridge status — ${status.target}`, `as of ${status.at}`, ''];

  const count = (n: number | null) => (n === null ? '?' : n);
  const age = (q: QueueStatus) => (q.oldestAgeSeconds !== null ? formatAge(q.oldestAgeSeconds) : q.error ? '?' : 'no data');
  const queueTable = renderTable(
    ['QUEUE', 'VISIBLE', 'IN FLIGHT', 'OLDEST'],
    status.queues.map((q) => [q.name ?? `(${q.queue}: unknown)`, count(q.visible), count(q.inFlight), age(q)]),
  );
  const ageNote = status.queues[0]?.oldestAgeFrom === 'cloudwatch' ? 'CloudWatch ApproximateAgeOfOldestMessage, latest in 15 min' : 'from the SQS emulator';
  lines.push(`Queues (oldest message: ${ageNote})`, ...queueTable.split('\n').map((line) => `  ${line}`), '');

  const parked = status.needsAttention;
  lines.push(
    parked.error
      ? 'Needs attention:  ? (could not be read)'
      : `Needs attention:  ${parked.orders} order(s) — komfortkasse ${parked.komfortkasse}, klar ${parked.klar}`,
  );

  lines.push(...renderSides(status.sides));

  const klar = status.klar;
  const reading = klar.lastReading;
  if (status.sides.klar === false) lines.push('Klar import:      not polled (Klar is off)');
  else if (klar.error) lines.push('Klar import:      ? (could not be read)');
  else if (!reading) lines.push('Klar import:      no reading yet (poll-klar-state reads it every 15 minutes)');
  else {
    lines.push(
      `Klar import:      ${reading.failing ? 'FAILING' : 'ok'} — read ${reading.at}, total ${reading.total ?? '?'}, ` +
        `last success ${reading.lastSuccess ?? 'never'}, last failure ${reading.lastFailure ?? 'never'}`,
    );
  }

  const run = status.reconcile.lastRun;
  if (status.reconcile.error) lines.push('Last reconcile:   ? (could not be read)');
  else if (!run) lines.push('Last reconcile:   none recorded');
  else {
    const sides =
      run.shopListed === undefined ? '' : ` (shop ${run.shopListed}${run.komfortkasseOpen === undefined ? '' : `; Komfortkasse ${run.komfortkasseOpen} open, ${run.komfortkasseRechecked ?? 0} re-checked`})`;
    const what = run.error ? `FAILED: ${run.error}` : `${run.checked} checked${sides}, ${run.enqueued} ${run.dryRun ? 'would be enqueued (dry run)' : 'enqueued'}`;
    lines.push(`Last reconcile:   ${run.at} (${run.trigger}) — ${what}`);
    if (status.reconcile.lastCompletedAt && status.reconcile.lastCompletedAt !== run.at) lines.push(`                  last completed run ${status.reconcile.lastCompletedAt}`);
  }

  const shopApi = status.shopApi;
  const check = shopApi.lastCheck;
  if (shopApi.error) lines.push('Shop API:         ? (could not be read)');
  else if (!check) lines.push('Shop API:         not checked yet (it is checked when the shop answers 404 for an order)');
  else if (shopApi.failing) lines.push(`Shop API:         FAILING — ${check.lastFailureAt}: ${check.lastError ?? 'no answer'}`);
  else lines.push(`Shop API:         ok — last confirmed ${check.lastOkAt ?? 'never'}${check.lastFailureAt ? `, last failure ${check.lastFailureAt}` : ''}`);

  const dryRun = status.dryRun;
  const dryRunValue = dryRun.value === null ? 'unknown' : dryRun.value ? 'true (workers record what they would send and send nothing)' : 'false';
  lines.push(`DRY_RUN:          ${dryRunValue} — ${dryRun.source}`, '');

  if (status.needsALook.length === 0) lines.push('All clear: nothing needs a look.');
  else lines.push(`Needs a look (${status.needsALook.length}):`, ...status.needsALook.map((item) => `  ! ${item}`));
  return lines.join('\n');
}

/** One line per side: `Klar: off` says what that means; an unknown side says why. */
export function renderSides(sides: Sides): string[] {
  return SIDES.map((side) => {
    const state = sideState(sides, side);
    const label = `${SIDE_LABEL[side]}:`.padEnd(18);
    if (state === 'off') return `${label}off (${SIDE_VARIABLE[side]}=false): nothing is sent to ${SIDE_LABEL[side]} — ${sides.source}`;
    if (state === 'unknown') return `${label}unknown — ${sides.source}${sides.error ? ` (${sides.error})` : ''}`;
    return `${label}on — ${sides.source}`;
  });
}

export async function runStatus(target: Target, options: { json?: boolean }, io: CliIo): Promise<number> {
  const status = await collectStatus(target);
  if (options.json) printJson(io, status);
  else println(io.stdout, renderStatus(status));
  // Read-only and informative: a finding is not a failure. Only a status that read nothing is.
  const nothingRead =
    status.queues.every((q) => q.visible === null) && status.needsAttention.error && status.klar.error && status.reconcile.error;
  return nothingRead ? EXIT.failed : EXIT.ok;
}
