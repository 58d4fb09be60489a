import { isPermanent, describeError } from './errors.ts';
import type { FeeSchedule } from './fee-schedule.ts';
import { orderCost, UnknownPaymentTypeError } from './fees.ts';
import { transactionCostsSchema, type TransactionCosts } from './klar.ts';
import { isCanceledStatus } from './order-status.ts';
import { paymentTypeVerdict, type PaymentTypeMap } from './payment-types.ts';
import type { RecordedKlar } from './sync-state.ts';
import { compareVersaCommerceDates } from './shop-dates.ts';

/** The facts of one order that its Klar cost depends on (a klar-costs message carries them). */
export interface KlarFacts {
  orderId: number;
  orderCode?: string;
  total: number;
  currency: string;
  paymentType?: string;
  status: string;
  createdAt: string;
  /** the order's `updated_at`: which copy of the order this is */
  updatedAt?: string;
  /** when the webhook behind this copy arrived (tie-break) */
  receivedAt: string;
}

export interface KlarStamp {
  sourceUpdatedAt?: string;
  receivedAt?: string;
}

/** One order's line of an upload. */
export interface CostLine {
  orderId: number;
  orderCode?: string;
  costs: TransactionCosts;
  currency: string;
  stamp: KlarStamp;
}

export type KlarPlan =
  | { kind: 'upload'; line: CostLine; why: string }
  /** a newer copy of the order with the cost Klar already holds: record the newer copy */
  | { kind: 'touch'; stamp: KlarStamp }
  | { kind: 'unchanged' | 'stale' | 'skipped'; why: string }
  /** parked before, and no cost is needed any more (canceled): take it off the needs-attention list */
  | { kind: 'unpark'; why: string; stamp: KlarStamp }
  | { kind: 'needs-attention'; error: string; stamp: KlarStamp };

export interface KlarPlanContext {
  feeSchedule: FeeSchedule;
  paymentTypes: PaymentTypeMap;
  /** Klar's `orderId`: the shop's technical id (default) or the order code */
  orderIdField: 'id' | 'code';
}

/**
 * Orders two copies of an order: the newer `updated_at` wins when both have one that
 * parses, else the later arrival. Positive when `a` is newer; 0 when nothing tells.
 */
export function compareStamps(a: KlarStamp, b: KlarStamp): number {
  const byUpdate = compareVersaCommerceDates(a.sourceUpdatedAt, b.sourceUpdatedAt);
  if (byUpdate !== undefined && byUpdate !== 0) return byUpdate;
  if (a.receivedAt && b.receivedAt) return a.receivedAt < b.receivedAt ? -1 : a.receivedAt > b.receivedAt ? 1 : 0;
  return 0;
}

export function stampOf(recorded: RecordedKlar): KlarStamp {
  return { sourceUpdatedAt: recorded.sourceUpdatedAt, receivedAt: recorded.receivedAt };
}

/**
 * Pure: what the Klar side of one order needs, given a copy of the order and the record.
 * The order worker asks it to decide whether to forward a cost at all; the Klar worker
 * asks it again on the record it reads, and after losing a race.
 */
export function planKlarCost(facts: KlarFacts, recorded: RecordedKlar | undefined, context: KlarPlanContext): KlarPlan {
  const stamp: KlarStamp = { sourceUpdatedAt: facts.updatedAt, receivedAt: facts.receivedAt };
  const newer = recorded === undefined ? 1 : compareStamps(stamp, stampOf(recorded));
  if (newer < 0) {
    // An older copy never overwrites a newer cost — but if the newer cost may not have
    // reached Klar (an upload lost a race), send the recorded one again.
    const redo = recorded && unconfirmedLine(facts, recorded, context);
    return redo ? { kind: 'upload', line: redo, why: 'the recorded cost may not have reached Klar' } : { kind: 'stale', why: 'a newer copy of the order was recorded' };
  }
  if (isCanceledStatus(facts.status)) {
    const why = 'canceled or returned: Klar keeps what it has (it has no delete)';
    return recorded?.state === 'needs-attention' ? { kind: 'unpark', why, stamp } : { kind: 'skipped', why };
  }

  const verdict = paymentTypeVerdict(facts.paymentType, context.paymentTypes);
  let cost: { transactionCosts: number; currency: string } | undefined;
  let problem: string | undefined;
  if (verdict.kind === 'unknown') problem = verdict.message;
  else {
    try {
      cost = orderCost({ paymentType: facts.paymentType ?? '', total: facts.total, currency: facts.currency, createdAt: facts.createdAt }, context.feeSchedule);
    } catch (error) {
      if (!isPermanent(error)) throw error;
      problem = error instanceof UnknownPaymentTypeError ? `${error.message}: add one to FEE_SCHEDULE` : describeError(error);
    }
  }
  // Only a provably newer `updated_at` is a new copy of the order: a later arrival of the
  // same copy is a duplicate delivery, which forwards nothing.
  const newerCopy = (compareVersaCommerceDates(facts.updatedAt, recorded?.sourceUpdatedAt) ?? 0) > 0;
  if (problem !== undefined || cost === undefined) {
    const error = `order ${facts.orderId}: ${problem ?? 'no cost'}`;
    if (recorded?.state === 'needs-attention' && recorded.error === error && (newer === 0 || !newerCopy)) return { kind: 'unchanged', why: 'already needs attention for the same reason' };
    return { kind: 'needs-attention', error, stamp };
  }

  const klar = recorded;
  if (klar?.state === 'uploaded' && klar.transactionCosts === cost.transactionCosts && klar.currency === cost.currency) {
    // Same cost: only remember a provably newer copy, so an older one cannot come in later.
    return newerCopy ? { kind: 'touch', stamp }
      : { kind: 'unchanged', why: 'Klar already holds this cost' };
  }
  const line = costLine(facts.orderId, facts.orderCode, cost.transactionCosts, cost.currency, stamp, context);
  if (typeof line === 'string') return { kind: 'needs-attention', error: `order ${facts.orderId}: ${line}`, stamp };
  return { kind: 'upload', line, why: klar?.transactionCosts === undefined ? 'first cost of the order' : 'the cost changed' };
}

/** The recorded cost again, when Klar may not hold it. */
function unconfirmedLine(facts: KlarFacts, recorded: RecordedKlar, context: KlarPlanContext): CostLine | undefined {
  if (recorded.state !== 'pending' || recorded.transactionCosts === undefined || recorded.currency === undefined) return undefined;
  const line = costLine(facts.orderId, facts.orderCode, recorded.transactionCosts, recorded.currency, stampOf(recorded), context);
  return typeof line === 'string' ? undefined : line;
}

/** The upload line, or why there cannot be one. Optional fields stay absent (seed 003). */
function costLine(orderId: number, orderCode: string | undefined, transactionCosts: number, currency: string, stamp: KlarStamp, context: KlarPlanContext): CostLine | string {
  const klarOrderId = context.orderIdField === 'code' ? orderCode : String(orderId);
  if (!klarOrderId) return 'order has no code, but KLAR_ORDER_ID_FIELD=code';
  const costs = transactionCostsSchema.safeParse({ orderId: klarOrderId, transactionCosts });
  if (!costs.success) return `cannot build Klar costs: ${costs.error.issues[0]?.message}`;
  return { orderId, orderCode, costs: costs.data, currency, stamp };
}

/** Which plans the order worker forwards to the Klar worker (the rest needs no Klar call). */
export function needsKlarWorker(plan: KlarPlan): boolean {
  return plan.kind === 'upload' || plan.kind === 'touch' || plan.kind === 'needs-attention' || plan.kind === 'unpark';
}

/**
 * After an upload lost its compare-and-set: another batch recorded a cost meanwhile, and
 * our POST may have reached Klar after theirs. Klar is only known to be right when the
 * record holds exactly what we sent; otherwise the newest cost goes again — the message's
 * if it is the newer copy, else the recorded one.
 */
export function planAfterLostRace(facts: KlarFacts, recorded: RecordedKlar | undefined, posted: CostLine, context: KlarPlanContext): KlarPlan {
  if (recorded?.state === 'uploaded' && recorded.transactionCosts === posted.costs.transactionCosts && recorded.currency === posted.currency) {
    return { kind: 'unchanged', why: 'the record holds what we sent' };
  }
  const plan = planKlarCost(facts, recorded, context);
  if (plan.kind !== 'stale' && plan.kind !== 'unchanged') return plan;
  const again = recorded && recorded.transactionCosts !== undefined && recorded.currency !== undefined
    ? costLine(facts.orderId, facts.orderCode, recorded.transactionCosts, recorded.currency, stampOf(recorded), context)
    : undefined;
  return again && typeof again !== 'string' ? { kind: 'upload', line: again, why: 'our older upload may have overwritten the recorded cost' } : plan;
}
