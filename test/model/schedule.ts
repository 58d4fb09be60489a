/**
 * A schedule: a few orders, what happens to them (the shop changing them, webhooks sent,
 * lost, repeated or late, time passing, forget, reconcile), which calls fail and how,
 * which invocations are abandoned where, and the interleaving choices. Plain data, so a
 * shrunk schedule can be printed and replayed as a regression case.
 */
import fc from 'fast-check';

export type StartState = 'open' | 'paid' | 'closed';
export type Change = 'amount' | 'partial' | 'pay' | 'progress' | 'close' | 'cancel' | 'return' | 'reopen' | 'delete';
export type Via = 'snapshot' | 'notification' | 'both' | 'lost';

export interface OrderSpec {
  paymentType: 'cod' | 'invoice';
  start: StartState;
  /** Komfortkasse already holds it, from an earlier integration */
  seeded: boolean;
  /** how its creation is announced */
  create: 'snapshot' | 'notification';
}

export type Step =
  /** the shop changes the order; the webhook(s) announcing it */
  | { kind: 'change'; order: number; change: Change; via: Via }
  /** a late or repeated webhook carrying an earlier (or the current) snapshot */
  | { kind: 'resend'; order: number; version: number }
  /** a repeated notification ("update order: <id>") */
  | { kind: 'notify'; order: number }
  /** the visibility timeout passes: messages in flight come back (the first delivery may still run), leases expire */
  | { kind: 'time-passes' }
  | { kind: 'forget'; order: number }
  | { kind: 'reconcile' };

export type FaultKind = 400 | 401 | 404 | 429 | 500 | 503 | 'timeout-before' | 'timeout-after' | 'error-before' | 'error-after';
export type FaultTarget = 'ddb' | 'komfortkasse' | 'versacommerce' | 'klar';

/** Calls `at` … `at + length - 1` to `target` (counted within the schedule) fail this way. */
export interface Fault {
  target: FaultTarget;
  at: number;
  length: number;
  kind: FaultKind;
}

/** The `invocation`-th invocation (0-based, all kinds) dies at its `gate`-th I/O: before it is sent, or after it was applied. */
export interface Abandon {
  invocation: number;
  gate: number;
  after: boolean;
}

export interface Schedule {
  orders: OrderSpec[];
  steps: Step[];
  faults: Fault[];
  abandons: Abandon[];
  /** index into the runnable tasks at each decision (missing: 0, run what waits longest) */
  choices: number[];
  /** Komfortkasse refuses initialDunningLevel on an order it holds (else it accepts it, so invariant 1 can see a double) */
  strictKomfortkasse: boolean;
  /** messages per Klar batch */
  klarBatch: number;
}

const order = fc.nat({ max: 1 });

const orderSpec: fc.Arbitrary<OrderSpec> = fc
  .record({
    paymentType: fc.constantFrom('cod', 'invoice'),
    start: fc.oneof({ weight: 4, arbitrary: fc.constant('open' as const) }, { weight: 1, arbitrary: fc.constantFrom('paid' as const, 'closed' as const) }),
    seeded: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    create: fc.constantFrom('snapshot', 'notification'),
  })
  // An earlier integration handed over open orders; a settled one it held is its business.
  .map((spec) => (spec.seeded ? { ...spec, start: 'open' as const } : spec));

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('change' as const),
      order,
      change: fc.constantFrom<Change>('amount', 'partial', 'pay', 'progress', 'close', 'cancel', 'return', 'reopen', 'delete'),
      via: fc.constantFrom<Via>('snapshot', 'notification', 'both', 'lost'),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('resend' as const), order, version: fc.nat({ max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('notify' as const), order }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('time-passes' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), order }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reconcile' as const) }) },
);

const faultOf = (target: FaultTarget, kinds: FaultKind[]): fc.Arbitrary<Fault> =>
  fc.record({ target: fc.constant(target), at: fc.nat({ max: 14 }), length: fc.integer({ min: 1, max: 3 }), kind: fc.constantFrom(...kinds) });

const fault: fc.Arbitrary<Fault> = fc.oneof(
  faultOf('ddb', ['error-before', 'error-after']),
  faultOf('komfortkasse', [400, 401, 429, 500, 503, 'timeout-before', 'timeout-after']),
  faultOf('versacommerce', [401, 404, 429, 500, 'timeout-before']),
  faultOf('klar', [400, 401, 429, 500, 'timeout-after']),
);

export const scheduleArbitrary: fc.Arbitrary<Schedule> = fc.record({
  orders: fc.array(orderSpec, { minLength: 1, maxLength: 2 }),
  steps: fc.array(step, { maxLength: 9 }),
  faults: fc.array(fault, { maxLength: 3 }),
  abandons: fc.array(fc.record({ invocation: fc.nat({ max: 10 }), gate: fc.integer({ min: 1, max: 6 }), after: fc.boolean() }), { maxLength: 2 }),
  choices: fc.array(fc.nat({ max: 5 }), { maxLength: 60 }),
  strictKomfortkasse: fc.boolean(),
  klarBatch: fc.integer({ min: 1, max: 4 }),
});

/** One line per part: what a person reads to understand a failure. */
export function describeSchedule(schedule: Schedule): string {
  return JSON.stringify(schedule);
}
