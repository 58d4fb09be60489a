/**
 * Every schedule the model test ever failed, shrunk, with the finding it showed. Each is
 * replayed by test/integration/model-regressions.test.ts and must hold every invariant.
 * Add a failure here with its fix: name it after what went wrong, and keep the schedule
 * exactly as `npm run test:model` printed it.
 */
import type { Schedule } from './schedule.ts';

export interface RegressionCase {
  name: string;
  /** what the model found, and with which seed */
  found: string;
  schedule: Schedule;
}

const plain: Pick<Schedule, 'faults' | 'abandons' | 'choices' | 'klarBatch'> = { faults: [], abandons: [], choices: [], klarBatch: 1 };

export const REGRESSIONS: RegressionCase[] = [
  {
    name: 'a returned order that comes back paid stays removed: nothing to remind',
    found:
      'invariant 2 (seed -1616315058): the oracle wanted a returned, removed order re-submitted once it was reopened and paid; the planner keeps it removed (settled: Komfortkasse has nothing to remind) — the oracle was wrong, not the worker',
    schedule: {
      orders: [{ paymentType: 'cod', start: 'open', seeded: true, create: 'snapshot' }],
      steps: [
        { kind: 'change', order: 0, change: 'return', via: 'snapshot' },
        { kind: 'change', order: 0, change: 'reopen', via: 'lost' },
        { kind: 'change', order: 0, change: 'pay', via: 'snapshot' },
      ],
      faults: [],
      abandons: [],
      choices: [],
      strictKomfortkasse: false,
      klarBatch: 1,
    },
  },
  {
    name: 'a late snapshot does not revive a deleted order',
    found:
      'invariant 3: a snapshot (v2) whose webhook arrived after the delete notification was submitted again after the remove, because it was newer than the last snapshot applied (v1)',
    schedule: {
      orders: [{ paymentType: 'cod', start: 'open', seeded: false, create: 'snapshot' }],
      steps: [
        { kind: 'change', order: 0, change: 'amount', via: 'both' },
        { kind: 'change', order: 0, change: 'amount', via: 'snapshot' },
        { kind: 'change', order: 0, change: 'delete', via: 'snapshot' },
      ],
      faults: [{ target: 'ddb', at: 0, length: 1, kind: 'error-before' }],
      abandons: [],
      choices: [],
      strictKomfortkasse: false,
      klarBatch: 1,
    },
  },
  {
    name: 'an order first seen paid is never submitted',
    found: 'invariant 7: an order created already paid was submitted (Komfortkasse would mail payment instructions)',
    schedule: { ...plain, orders: [{ paymentType: 'cod', start: 'paid', seeded: false, create: 'snapshot' }], steps: [], strictKomfortkasse: false },
  },
  {
    name: 'an order first seen closed is never submitted',
    found: 'invariant 2 (and 7): an order created closed ("sent and paid") was submitted, without stopReminder',
    schedule: { ...plain, orders: [{ paymentType: 'cod', start: 'closed', seeded: false, create: 'snapshot' }], steps: [], strictKomfortkasse: false },
  },
  {
    name: 'a submitted order that is closed gets stopReminder',
    found: 'invariant 2: a submitted order closed in the shop kept Komfortkasse reminding (closed did not count as paid)',
    schedule: {
      ...plain,
      orders: [{ paymentType: 'cod', start: 'open', seeded: false, create: 'snapshot' }],
      steps: [{ kind: 'change', order: 0, change: 'close', via: 'snapshot' }],
      strictKomfortkasse: false,
    },
  },
  {
    name: 'an order Komfortkasse already holds is not parked for initialDunningLevel',
    found: 'invariant 5: an order from an earlier integration was parked needs-attention for the 400 that refused initialDunningLevel on an existing order',
    schedule: { ...plain, orders: [{ paymentType: 'cod', start: 'open', seeded: true, create: 'snapshot' }], steps: [], strictKomfortkasse: true },
  },
  {
    name: 'an unchanged snapshot still records its updated_at',
    found:
      'invariant 2: a reopened order (v2) whose content equals what Komfortkasse holds changed nothing in the record, so the late snapshot of its cancellation (v1) removed it',
    schedule: {
      ...plain,
      orders: [{ paymentType: 'cod', start: 'open', seeded: false, create: 'snapshot' }],
      steps: [
        { kind: 'change', order: 0, change: 'cancel', via: 'lost' },
        { kind: 'change', order: 0, change: 'reopen', via: 'snapshot' },
        { kind: 'resend', order: 0, version: 4 },
      ],
      strictKomfortkasse: false,
    },
  },
  {
    name: 'a paid order whose first delivery was abandoned between claim and settle is not submitted',
    found:
      'invariant 7: the claim set the first-attempt mark for a skip; abandoned before the settle, the mark stayed, and the redelivery took the order for one Komfortkasse may hold and submitted it',
    schedule: {
      ...plain,
      orders: [{ paymentType: 'cod', start: 'paid', seeded: false, create: 'snapshot' }],
      steps: [{ kind: 'time-passes' }],
      abandons: [{ invocation: 0, gate: 4, after: false }],
      strictKomfortkasse: false,
    },
  },
  {
    name: 'a paid order whose settle and release failed is not submitted',
    found:
      'invariant 7 (seeds 21 and 31): DynamoDB failed the settle of the skip and the release, the first-attempt mark set by the claim stayed, and the redelivery submitted the paid order',
    schedule: {
      ...plain,
      orders: [{ paymentType: 'cod', start: 'paid', seeded: false, create: 'snapshot' }],
      steps: [{ kind: 'time-passes' }],
      faults: [{ target: 'ddb', at: 2, length: 2, kind: 'error-before' }],
      strictKomfortkasse: false,
    },
  },
];
