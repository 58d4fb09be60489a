/**
 * Runs one schedule against the real order path: the order worker (`syncOrder`), the Klar
 * batch worker (`uploadKlarCosts`), `forget` and `reconcile`, on the real store (DynamoDB
 * Local), with the upstreams faked (world.ts) and both queues modelled here: orders.fifo
 * (one message group per order, in order, redelivered after its visibility timeout, to the
 * DLQ after maxReceiveCount) and klar-costs (standard, batched, at most two batches at once).
 * Then it waits for quiescence and checks the invariants (invariants.ts).
 */
import { orderLogger } from '../../lib/observability/logger.ts';
import { klarCostMessageSchema, orderChangedMessageSchema, type KlarCostMessage, type OrderChangedMessage } from '../../lib/domain/messages.ts';
import { runForget } from '../../lib/ops/forget.ts';
import { uploadKlarCosts } from '../../lib/sync/klar.ts';
import { reconcile } from '../../lib/sync/reconcile.ts';
import { syncOrder } from '../../lib/sync/sync-order.ts';
import { buildVersaCommerceOrder } from '../factories/orders.ts';
import { advanceClock, Engine, modelNow, type SentMessage } from './engine.ts';
import { checkInvariants } from './invariants.ts';
import type { Change, Schedule, Step } from './schedule.ts';
import { World, type ShopOrder, type ShopVersion } from './world.ts';

/** serverless.yml: orders.fifo and klar-costs visibility timeouts and their DLQs' maxReceiveCount. */
export const ORDERS_VISIBILITY_MS = 360_000;
export const KLAR_VISIBILITY_MS = 420_000;
export const MAX_RECEIVE_COUNT = 5;
/** The Klar event source runs at most two batches at once. */
const KLAR_CONCURRENCY = 2;
const MAX_DECISIONS = 4000;

export interface QueuedMessage {
  seq: number;
  queue: 'orders' | 'klar';
  orderId: number;
  body: string;
  state: 'queued' | 'deleted' | 'dlq';
  visibleAt: number;
  receives: number;
  /** whether the last receive started after the schedule's faults ended */
  lastReceiveFaultFree: boolean;
}

export interface ModelOrder {
  index: number;
  shop: ShopOrder;
  seeded: boolean;
  startSettled: boolean;
  /** versions a successful order-worker invocation resolved (snapshot or fetch) */
  seen: Set<number>;
  /** versions whose cost the order worker forwarded to klar-costs */
  forwarded: Set<number>;
  forgotten: boolean;
}

export interface RunResult {
  violations: string[];
  trace: string[];
  decisions: number;
}

const DAY_MS = 86_400_000;

export async function runSchedule(schedule: Schedule, firstOrderId: number): Promise<RunResult> {
  const run = new ScheduleRun(schedule, firstOrderId);
  return run.run();
}

class ScheduleRun {
  readonly world: World;
  readonly engine: Engine;
  readonly orders: ModelOrder[] = [];
  readonly messages: QueuedMessage[] = [];
  readonly trace: string[] = [];
  private nextStep = 0;
  private decisions = 0;
  private seq = 0;
  private readonly base = modelNow() - DAY_MS;

  constructor(
    readonly schedule: Schedule,
    firstOrderId: number,
  ) {
    this.world = new World(schedule.strictKomfortkasse);
    this.engine = new Engine(this.world, schedule.faults, schedule.abandons, (m) => this.sent(m));
    schedule.orders.forEach((spec, index) => {
      const id = firstOrderId + index;
      const code = `M-${id}`;
      const raw = buildVersaCommerceOrder({
        id,
        code,
        payment_type: spec.paymentType,
        status: spec.start === 'closed' ? 'closed' : 'open',
        payment_status: spec.start === 'paid' ? 'paid' : 'not_paid',
        total: (20 + index).toFixed(2),
        created_at: new Date(this.base).toISOString(),
        updated_at: this.updatedAt(0),
        items: [{ id: id * 10, order_id: id, product_id: 10000, code: `SKU-${id}`, title: 'T-Shirt', quantity: 1 }],
      });
      const shop: ShopOrder = { id, code, versions: [{ version: 0, raw, deleted: false }] };
      this.world.shop.set(id, shop);
      if (spec.seeded) {
        const entry = this.world.kkEntry(code);
        Object.assign(entry, { exists: true, active: true, seeded: true, payload: { amount: 20 + index, currency: 'EUR', type: 'COD' } });
      }
      this.orders.push({ index, shop, seeded: spec.seeded, startSettled: spec.start !== 'open', seen: new Set(), forwarded: new Set(), forgotten: false });
    });
  }

  private updatedAt(version: number): string {
    return new Date(this.base + 3_600_000 + version * 60_000).toISOString();
  }

  async run(): Promise<RunResult> {
    this.engine.activate();
    const violations: string[] = [];
    try {
      for (const [index, spec] of this.schedule.orders.entries()) {
        const order = this.orders[index]!;
        this.announce(order, spec.create === 'snapshot' ? 'snapshot' : 'notification', order.shop.versions[0]!);
      }
      if (this.schedule.steps.length === 0) this.engine.faultsOn = false;
      if (!(await this.drive())) violations.push(`no quiescence after ${MAX_DECISIONS} decisions`);
    } finally {
      this.engine.deactivate();
    }
    violations.push(...(await checkInvariants(this)));
    return { violations, trace: this.trace, decisions: this.decisions };
  }

  /* ------------------------------------------------------------------ the driver */

  private async drive(): Promise<boolean> {
    for (;;) {
      await this.engine.idle();
      const tasks = this.runnable();
      if (tasks.length === 0) {
        // Something still works without I/O the schedule sees (e.g. a module loading): wait, never let time jump past it.
        if (this.engine.invocations.some((i) => i.state === 'running')) {
          if (++this.decisions > MAX_DECISIONS) return false;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        if (this.advanceToNextVisible()) continue;
        return true;
      }
      if (++this.decisions > MAX_DECISIONS) return false;
      const choice = this.schedule.choices[this.decisions - 1] ?? 0;
      const task = tasks[choice % tasks.length]!;
      this.trace.push(task.label);
      task.run();
    }
  }

  private runnable(): { label: string; run: () => void }[] {
    const now = modelNow();
    // Parked I/O first (oldest first): with no choices left, work runs to its end before anything new starts.
    const tasks: { label: string; run: () => void }[] = this.engine.waiting.map((w) => ({ label: w.label, run: () => this.engine.release(this.engine.waiting.indexOf(w)) }));
    for (const head of this.groupHeads()) {
      if (head.visibleAt <= now) tasks.push({ label: `deliver ${this.describe(head)}`, run: () => this.deliverOrder(head) });
    }
    const klarRunning = this.engine.invocations.filter((i) => i.kind === 'klar' && i.state === 'running').length;
    if (klarRunning < KLAR_CONCURRENCY && this.messages.some((m) => m.queue === 'klar' && m.state === 'queued' && m.visibleAt <= now)) {
      tasks.push({ label: 'Klar batch', run: () => this.deliverKlar() });
    }
    const step = this.schedule.steps[this.nextStep];
    if (step) tasks.push({ label: `step ${this.nextStep}: ${JSON.stringify(step)}`, run: () => this.perform(step) });
    return tasks;
  }

  /** The first message of each order's group still in the queue (FIFO: the rest wait behind it). */
  private groupHeads(): QueuedMessage[] {
    const heads = new Map<number, QueuedMessage>();
    for (const m of this.messages) {
      if (m.queue === 'orders' && m.state === 'queued' && !heads.has(m.orderId)) heads.set(m.orderId, m);
    }
    return [...heads.values()];
  }

  /** Nothing can run now: let time pass until the next message becomes visible again. */
  private advanceToNextVisible(): boolean {
    const now = modelNow();
    const pending = this.messages.filter((m) => m.state === 'queued' && m.visibleAt > now).map((m) => m.visibleAt);
    if (pending.length === 0) return false;
    advanceClock(Math.min(...pending) - now + 1);
    return true;
  }

  private describe(m: QueuedMessage): string {
    const parsed = JSON.parse(m.body) as { order?: { updated_at?: string }; orderId: number };
    if (m.queue === 'klar') return `klar-cost ${parsed.orderId}`;
    return `order ${parsed.orderId} ${parsed.order ? `snapshot ${parsed.order.updated_at}` : 'notification'} (message ${m.seq}, receive ${m.receives + 1})`;
  }

  /** A receive: the message's receive count goes up, or past maxReceiveCount it moves to the DLQ. */
  private receive(m: QueuedMessage, visibilityMs: number): boolean {
    if (m.receives >= MAX_RECEIVE_COUNT) {
      m.state = 'dlq';
      return false;
    }
    m.receives++;
    m.visibleAt = modelNow() + visibilityMs;
    m.lastReceiveFaultFree = !this.engine.faultsOn;
    return true;
  }

  private deliverOrder(m: QueuedMessage): void {
    if (!this.receive(m, ORDERS_VISIBILITY_MS)) return;
    const receive = m.receives;
    const message = orderChangedMessageSchema.parse(JSON.parse(m.body)) as OrderChangedMessage;
    const order = this.orderById(message.orderId);
    const log = orderLogger({ orderId: message.orderId, orderCode: message.orderCode, correlationId: message.correlationId });
    this.engine.start('order', `order ${message.orderId}/m${m.seq}`, () => syncOrder(message, { log }), (outcome, invocation) => {
      if (!outcome.ok) return; // visible again after the visibility timeout
      if (m.receives === receive && m.state === 'queued') m.state = 'deleted';
      if (!order) return;
      if (message.order) {
        const version = this.versionOf(order, (message.order as { updated_at?: string }).updated_at);
        if (version !== undefined) order.seen.add(version);
      }
      for (const v of invocation.seen) order.seen.add(v.version);
    });
  }

  private deliverKlar(): void {
    const now = modelNow();
    const batch = this.messages.filter((m) => m.queue === 'klar' && m.state === 'queued' && m.visibleAt <= now).slice(0, this.schedule.klarBatch);
    const received = batch.filter((m) => this.receive(m, KLAR_VISIBILITY_MS)).map((m) => ({ m, receive: m.receives }));
    if (received.length === 0) return;
    const entries = received.map(({ m }) => ({ recordId: String(m.seq), message: klarCostMessageSchema.parse(JSON.parse(m.body)) as KlarCostMessage }));
    const log = orderLogger({ correlationId: 'model-klar' });
    this.engine.start('klar', `klar [${entries.map((e) => e.message.orderId).join(',')}]`, () => uploadKlarCosts(entries, { log }), (outcome) => {
      // The handler fails every record when the batch throws.
      const failed = outcome.ok ? new Set(outcome.value.failed) : new Set(entries.map((e) => e.recordId));
      for (const { m, receive } of received) {
        if (!failed.has(String(m.seq)) && m.receives === receive && m.state === 'queued') m.state = 'deleted';
      }
    });
  }

  /* ------------------------------------------------------------------ steps */

  private perform(step: Step): void {
    this.nextStep++;
    if (this.nextStep >= this.schedule.steps.length) this.engine.faultsOn = false;
    const order = 'order' in step ? this.orders[step.order % this.orders.length]! : undefined;
    switch (step.kind) {
      case 'change': {
        const version = this.change(order!, step.change);
        if (version && step.via !== 'lost') {
          if (step.via !== 'notification' && !version.deleted) this.announce(order!, 'snapshot', version);
          if (step.via !== 'snapshot' || version.deleted) this.announce(order!, 'notification', version);
        }
        return;
      }
      case 'resend': {
        const versions = order!.shop.versions.filter((v) => !v.deleted);
        this.announce(order!, 'snapshot', versions[step.version % versions.length]!);
        return;
      }
      case 'notify':
        this.announce(order!, 'notification', this.world.current(order!.shop));
        return;
      case 'time-passes':
        advanceClock(KLAR_VISIBILITY_MS + 1);
        return;
      case 'forget': {
        const target = order!;
        const io = { stdout: { write: () => true }, stderr: { write: () => true } };
        this.engine.start('forget', `forget ${target.shop.code}`, () => runForget(target.shop.code, io), (outcome) => {
          if (outcome.ok && outcome.value === 0) target.forgotten = true;
        });
        return;
      }
      case 'reconcile':
        this.engine.start('reconcile', 'reconcile', () => reconcile({ since: new Date(modelNow() - 14 * DAY_MS), trigger: 'model' }), () => undefined);
        return;
    }
  }

  /** The shop changes the order; undefined when the change does not apply to its state. */
  private change(order: ModelOrder, change: Change): ShopVersion | undefined {
    const current = this.world.current(order.shop);
    if (current.deleted || !current.raw) return undefined;
    const raw = current.raw;
    const status = String(raw.status);
    const paid = raw.payment_status === 'paid';
    const canceled = status === 'canceled' || status === 'returned';
    const settled = paid || status === 'closed';
    // Settling is final: a paid or closed order that is canceled stays canceled (or is deleted).
    const everSettled = order.shop.versions.some((v) => v.raw && (v.raw.payment_status === 'paid' || v.raw.status === 'closed'));
    const number = order.shop.versions.length;
    const next = (fields: Record<string, unknown>): ShopVersion => {
      const version: ShopVersion = { version: number, raw: { ...raw, ...fields, updated_at: this.updatedAt(number) }, deleted: false };
      order.shop.versions.push(version);
      return version;
    };
    switch (change) {
      case 'amount':
        return canceled || settled ? undefined : next({ total: (Number(raw.total) + 1.5 + number).toFixed(2) });
      case 'partial':
        return canceled || settled || raw.payment_status === 'partially_paid' ? undefined : next({ payment_status: 'partially_paid' });
      case 'pay':
        return canceled || paid ? undefined : next({ payment_status: 'paid' });
      case 'progress':
        return status !== 'open' ? undefined : next({ status: 'in_progress' });
      case 'close':
        return canceled || status === 'closed' ? undefined : next({ status: 'closed' });
      case 'cancel':
        return canceled ? undefined : next({ status: 'canceled' });
      case 'return':
        return canceled ? undefined : next({ status: 'returned' });
      case 'reopen':
        return !canceled || everSettled ? undefined : next({ status: 'open' });
      case 'delete': {
        const version: ShopVersion = { version: number, raw: undefined, deleted: true };
        order.shop.versions.push(version);
        return version;
      }
    }
  }

  /** A webhook as ingest would enqueue it: the snapshot, or a notification naming the order. */
  private announce(order: ModelOrder, kind: 'snapshot' | 'notification', version: ShopVersion): void {
    const seq = ++this.seq;
    const message: OrderChangedMessage = {
      kind: 'order-changed',
      orderId: order.shop.id,
      orderCode: order.shop.code,
      ...(kind === 'snapshot' && version.raw ? { order: version.raw } : {}),
      source: kind === 'snapshot' ? 'webhook' : 'notification',
      receivedAt: new Date(modelNow()).toISOString(),
      deliveryId: `model-${seq}`,
      correlationId: `model-${seq}`,
    };
    this.enqueue('orders', order.shop.id, JSON.stringify(message));
  }

  private enqueue(queue: 'orders' | 'klar', orderId: number, body: string): void {
    this.messages.push({ seq: ++this.seq, queue, orderId, body, state: 'queued', visibleAt: 0, receives: 0, lastReceiveFaultFree: false });
  }

  /** A message a worker sent (the Klar cost, a reconcile's re-enqueue). */
  private sent(message: SentMessage): void {
    const parsed = JSON.parse(message.body) as { orderId: number; updatedAt?: string };
    this.enqueue(message.queue, parsed.orderId, message.body);
    const order = this.orderById(parsed.orderId);
    if (message.queue === 'klar' && order) {
      const version = this.versionOf(order, parsed.updatedAt);
      if (version !== undefined) order.forwarded.add(version);
    }
  }

  orderById(orderId: number): ModelOrder | undefined {
    return this.orders.find((o) => o.shop.id === orderId);
  }

  private versionOf(order: ModelOrder, updatedAt: string | undefined): number | undefined {
    return order.shop.versions.find((v) => v.raw?.updated_at === updatedAt)?.version;
  }
}

export type { ScheduleRun };
