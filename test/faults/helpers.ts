import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand, SendMessageBatchCommand, DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import { expect } from 'vitest';
import type { Attempt, OrderRecord } from '../../lib/domain/sync-state.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { RunningStack } from '../../local/stack.ts';
import type { KomfortkasseSimulator, RecordedRequest } from '../../local/simulators/index.ts';
import { buildVersaCommerceOrder, type RawVersaCommerceOrder } from '../factories/orders.ts';
import { postWebhook, queueDepth, waitFor, type PostOptions } from '../integration/harness.ts';

export { bootStack, drained, postWebhook, queueDepth, waitFor, TEST_SECRET } from '../integration/harness.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Komfortkasse order number (= VersaCommerce `code`) the fault suite gives order `id`. */
export const codeOf = (id: number) => `F-${id}`;

/**
 * A COD order (so it goes to Komfortkasse) with its own id and code, created now (so
 * reconcile's "since" window sees it) and an `updated_at` the worker uses to spot stale
 * snapshots. `version` moves `updated_at` forward one minute per step.
 */
const CREATED = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000);

export function faultOrder(id: number, overrides: Record<string, unknown> = {}, version = 0): RawVersaCommerceOrder {
  return buildVersaCommerceOrder({
    id,
    code: codeOf(id),
    created_at: CREATED.toISOString(),
    updated_at: new Date(CREATED.getTime() + version * 60_000).toISOString(),
    items: [{ id: id * 10, order_id: id, product_id: 10000, code: `SKU-${id}`, title: 'T-Shirt', quantity: 1 }],
    ...overrides,
  });
}

/**
 * The shop's side of a delivery: retries until the webhook is accepted (202), as a shop
 * retries a 503 or a dropped connection. Any other 4xx is a test failure.
 */
export async function deliver(stack: RunningStack, order: unknown, options: PostOptions & { timeoutMs?: number } = {}): Promise<{ attempts: number; statuses: number[] }> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const statuses: number[] = [];
  for (;;) {
    let status = 0;
    try {
      status = (await postWebhook(stack, { order }, options)).status;
    } catch {
      status = 0; // connection refused/reset: retry like a shop would
    }
    statuses.push(status);
    if (status === 202) return { attempts: statuses.length, statuses };
    if (status !== 0 && status < 500) throw new Error(`webhook for order rejected with ${status}`);
    if (Date.now() > deadline) throw new Error(`webhook never accepted: ${statuses.join(',')}`);
    await sleep(200);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!, index);
      }
    }),
  );
  return results;
}

/** Fisher–Yates with a seeded generator, so a failing shuffle can be reproduced. */
export function shuffle<T>(items: readonly T[], seed = 42): T[] {
  const copy = [...items];
  let state = seed >>> 0;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

export function komfortkasse(stack: RunningStack): KomfortkasseSimulator {
  const sim = stack.simulators.komfortkasse;
  if (!sim) throw new Error('the stack runs no Komfortkasse simulator');
  return sim;
}

/** Every submit/update POST the simulator saw for one order number, with any status. */
export function submitRequests(stack: RunningStack, code: string): RecordedRequest[] {
  const path = `/api/v2/order/${encodeURIComponent(code)}`;
  return komfortkasse(stack).requests.filter((r) => r.method === 'POST' && r.path === path);
}

export function removeRequests(stack: RunningStack, code: string): RecordedRequest[] {
  const path = `/api/v2/order/remove/${encodeURIComponent(code)}`;
  return komfortkasse(stack).requests.filter((r) => r.method === 'POST' && r.path === path);
}

export interface OrderEvidence {
  id: number;
  code: string;
  submitCount: number;
  accepted: RecordedRequest[];
  record: OrderRecord | undefined;
  attempts: Attempt[];
  successes: Attempt[];
}

const SUCCESS = new Set(['success', 'success-resend']);

/** Everything the three witnesses (simulator state, request log, history table) say about one order. */
export async function evidence(stack: RunningStack, id: number): Promise<OrderEvidence> {
  const code = codeOf(id);
  const attempts = (await listAttempts(id)).filter((a) => a.target === 'komfortkasse');
  return {
    id,
    code,
    submitCount: komfortkasse(stack).orders.get(code)?.submitCount ?? 0,
    accepted: submitRequests(stack, code).filter((r) => r.status === 200),
    record: await getOrderRecord(id),
    attempts,
    successes: attempts.filter((a) => a.action !== 'remove' && SUCCESS.has(a.outcome)),
  };
}

/**
 * The order reached Komfortkasse exactly once: one stored order with one accepted
 * submission, one successful attempt in the history, recorded as submitted.
 */
export async function expectSubmittedOnce(stack: RunningStack, id: number): Promise<OrderEvidence> {
  const e = await evidence(stack, id);
  expect.soft(e.submitCount, `order ${e.code}: Komfortkasse submitCount`).toBe(1);
  expect.soft(e.accepted, `order ${e.code}: accepted POSTs in the request log`).toHaveLength(1);
  expect.soft(e.successes.map((a) => a.outcome), `order ${e.code}: successful attempts in the history`).toEqual(['success']);
  expect.soft(e.record?.komfortkasse.state, `order ${e.code}: recorded state`).toBe('submitted');
  return e;
}

/**
 * The order reached Komfortkasse and nothing was lost: one accepted submission, or — when a
 * crash hit after Komfortkasse took it — one identical re-send without initialDunningLevel,
 * recorded as `success-resend`; one successful attempt in the history; recorded submitted.
 */
export async function expectSubmittedWithoutLoss(stack: RunningStack, id: number): Promise<OrderEvidence> {
  const e = await evidence(stack, id);
  const [first, resend, ...more] = e.accepted;
  expect.soft(more, `order ${e.code}: accepted POSTs beyond one re-send`).toHaveLength(0);
  expect.soft(e.submitCount, `order ${e.code}: Komfortkasse submitCount`).toBe(e.accepted.length);
  if (resend) {
    const { initialDunningLevel: _dropped, ...firstWithout } = first!.body as Record<string, unknown>;
    expect.soft(resend.body, `order ${e.code}: the re-send repeats the first submission`).toEqual(firstWithout);
    expect.soft(e.successes.map((a) => a.outcome), `order ${e.code}: successful attempts in the history`).toEqual(['success-resend']);
  } else {
    // One accepted POST; if the crash came after the claim but before the call went out, the
    // history cannot know that and records the one success as a possible re-send.
    expect.soft(e.successes.map((a) => a.outcome), `order ${e.code}: successful attempts in the history`).toHaveLength(1);
  }
  expect.soft(e.record?.komfortkasse.state, `order ${e.code}: recorded state`).toBe('submitted');
  return e;
}

/**
 * Waits until every order has at least one accepted submission and the history says
 * submitted; on timeout the error lists what each missing order's witnesses say.
 */
export async function waitUntilSubmitted(stack: RunningStack, ids: readonly number[], timeoutMs = 45_000): Promise<void> {
  const sim = komfortkasse(stack);
  const missing = async () => {
    const records = await Promise.all(ids.map((id) => getOrderRecord(id)));
    return ids.filter((id, i) => (sim.orders.get(codeOf(id))?.submitCount ?? 0) < 1 || records[i]?.komfortkasse.state !== 'submitted');
  };
  try {
    await waitFor(async () => (await missing()).length === 0, `${ids.length} orders to be submitted`, timeoutMs);
  } catch (error) {
    const details = await Promise.all(
      (await missing().catch(() => [...ids])).slice(0, 10).map(async (id) => ({
        id,
        submitCount: sim.orders.get(codeOf(id))?.submitCount ?? 0,
        statuses: submitRequests(stack, codeOf(id)).map((r) => r.status),
        record: await getOrderRecord(id).then((r) => r?.komfortkasse, (e: unknown) => String(e)),
      })),
    );
    const queues = await allQueuesEmpty(stack).catch((e: unknown) => String(e));
    throw new Error(`${(error as Error).message}; queues ${JSON.stringify(queues)}; not submitted: ${JSON.stringify(details)}`);
  }
}

/** Nothing left on any queue of the stack (main queues and DLQs). */
export async function allQueuesEmpty(stack: RunningStack): Promise<Record<string, number>> {
  const depths: Record<string, number> = {};
  for (const [alias, queue] of Object.entries(stack.queues)) depths[alias] = await queueDepth(stack, queue.url);
  return depths;
}

/**
 * Moves every message of a DLQ back to its source queue with plain SQS calls — what
 * `orderbridge redrive` does — and returns how many moved.
 */
export async function redrive(stack: RunningStack, from: 'ordersDlq' | 'klarCostsDlq'): Promise<number> {
  const source = stack.queues[from];
  const target = from === 'ordersDlq' ? stack.queues.orders : stack.queues.klarCosts;
  let moved = 0;
  for (;;) {
    const { Messages = [] } = await stack.sqsClient.send(
      new ReceiveMessageCommand({ QueueUrl: source.url, MaxNumberOfMessages: 10, VisibilityTimeout: 30, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
    );
    if (Messages.length === 0) return moved;
    await stack.sqsClient.send(
      new SendMessageBatchCommand({
        QueueUrl: target.url,
        Entries: Messages.map((m, index) => ({
          Id: String(index),
          MessageBody: m.Body!,
          MessageAttributes: m.MessageAttributes,
          ...(target.fifo
            ? { MessageGroupId: m.Attributes?.MessageGroupId ?? 'redrive', MessageDeduplicationId: `redrive-${m.MessageId}` }
            : {}),
        })),
      }),
    );
    await stack.sqsClient.send(
      new DeleteMessageBatchCommand({ QueueUrl: source.url, Entries: Messages.map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle! })) }),
    );
    moved += Messages.length;
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
  /** resolves with the exit signal/code */
  exited: Promise<NodeJS.Signals | number | null>;
  kill(signal?: NodeJS.Signals): Promise<NodeJS.Signals | number | null>;
}

/** Starts local/worker-process.ts with the stack's environment; resolves once it polls. */
export async function startWorkerProcess(stack: RunningStack, extraEnv: Record<string, string> = {}): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/worker-process.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stack.env, POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('{"ready":true')) resolve();
    });
    void exited.then((how) => reject(new Error(`worker process exited (${String(how)}) before it was ready: ${stderr.join('').slice(-2000)}`)));
  });
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('worker process not ready after 30 s')), 30_000);
      }),
    ]);
  } catch (error) {
    await kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { child, lines, exited, kill };
}
