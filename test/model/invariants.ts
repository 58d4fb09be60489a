/**
 * The invariants of the order path, checked once a schedule reached quiescence (every
 * message delivered until success or DLQ). Each names the order and what each witness
 * (the upstream fakes, the history table, the queues) says. Numbered as in the README's
 * "Reliability" section.
 */
import { klarPlanSettings, komfortkasseMappingSettings } from '../../lib/config/mapping.ts';
import { orderCost } from '../../lib/domain/fees.ts';
import { desiredKomfortkasseState, payloadHash } from '../../lib/domain/komfortkasse-mapping.ts';
import type { KomfortkasseOrder } from '../../lib/domain/komfortkasse.ts';
import { isCanceledStatus, isPaidInShop } from '../../lib/domain/order-status.ts';
import { versaCommerceOrderSchema } from '../../lib/domain/versacommerce.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import { orderPartition, queryAll, tableName } from '../../lib/store/table.ts';
import type { ModelOrder, ScheduleRun } from './run-schedule.ts';
import type { ShopVersion } from './world.ts';

/** Attributes that carry upstream text or would-be requests (personal data) on any item of an order. */
const TEXT_ATTRIBUTES = ['kkError', 'klarError', 'error', 'request'];

export async function checkInvariants(run: ScheduleRun): Promise<string[]> {
  const violations: string[] = [];
  for (const order of run.orders) violations.push(...(await checkOrder(run, order)));
  for (const m of run.messages) {
    if (m.state === 'dlq' && m.lastReceiveFaultFree) {
      violations.push(`5: order ${m.orderId}: ${m.queue} message ${m.seq} reached the DLQ although its last receive came after every fault had ended`);
    }
  }
  return violations;
}

function settled(raw: Record<string, unknown>): boolean {
  return isPaidInShop(raw as { payment_status?: string }) || String(raw.status) === 'closed';
}

function canceled(version: ShopVersion): boolean {
  return !version.deleted && isCanceledStatus(String(version.raw!.status));
}

async function checkOrder(run: ScheduleRun, order: ModelOrder): Promise<string[]> {
  const out: string[] = [];
  const { id, code } = order.shop;
  const name = `order ${id} (${code})`;
  const fail = (invariant: number, text: string) => out.push(`${invariant}: ${name}: ${text}`);
  const record = await getOrderRecord(id);
  const kkRecord = record?.komfortkasse;
  const kk = run.world.komfortkasse.get(code);
  const last = run.world.current(order.shop);
  const inOrdersDlq = run.messages.some((m) => m.queue === 'orders' && m.orderId === id && m.state === 'dlq');
  const inKlarDlq = run.messages.some((m) => m.queue === 'klar' && m.orderId === id && m.state === 'dlq');

  // 1. Never two accepted submissions carrying initialDunningLevel.
  if ((kk?.acceptedWithLevel ?? 0) > 1) fail(1, `Komfortkasse accepted ${kk!.acceptedWithLevel} submissions carrying initialDunningLevel`);

  // 3. No submission after the deletion was observed (a remove of the deleted order).
  if (kk) {
    const removedDeleted = kk.log.findIndex((e) => e.action === 'remove' && e.shopDeleted && (e.status === 200 || e.status === 404));
    if (removedDeleted >= 0 && kk.log.slice(removedDeleted + 1).some((e) => e.action === 'submit' && e.status === 200)) {
      fail(3, 'submitted again after the deleted order was removed from Komfortkasse');
    }
  }

  // 7. An order first seen settled is never submitted (here: settled from its creation on).
  if (order.startSettled && !order.seeded && (kk?.accepted ?? 0) > 0) fail(7, `settled from its creation on, yet Komfortkasse accepted ${kk!.accepted} submission(s)`);

  // 5. Parked only for a permanent cause.
  const kkParked = kkRecord?.state === 'needs-attention';
  if (kkParked && !kk?.refusedPermanently) fail(5, `Komfortkasse side parked without a permanent refusal: ${kkRecord?.error ?? '(no error kept)'}`);
  const klarParked = record?.klar.state === 'needs-attention';
  const klarRefused = run.world.klar.get(String(id))?.invalid ?? false;
  if (klarParked && !klarRefused) fail(5, `Klar side parked without an INVALID answer: ${record?.klar.error ?? '(no error kept)'}`);

  // 2. Komfortkasse holds what the shop's last state asks for, and the record agrees.
  if (!inOrdersDlq && !kkParked) {
    const untouchedSeed = Boolean(kk?.seeded) && (kk?.accepted ?? 0) === 0;
    const active = Boolean(kk?.active);
    const hash = kk?.payload && active && !untouchedSeed ? payloadHash(kk.payload as KomfortkasseOrder) : undefined;
    if (kkRecord?.state === 'submitted' && (!active || hash !== kkRecord.payloadHash)) {
      fail(2, `the record says submitted (${short(kkRecord.payloadHash)}), Komfortkasse holds ${active ? short(hash) : 'nothing active'}`);
    }
    if ((kkRecord?.state === 'removed' || kkRecord?.state === 'skipped') && active && !untouchedSeed) {
      fail(2, `the record says ${kkRecord.state}, Komfortkasse still holds the order`);
    }
    if (order.seen.has(last.version)) {
      // Settled before we ever submitted it: skipped (even if an earlier integration left it in
      // Komfortkasse). Settled after we removed it (returned, then reopened and paid): it stays
      // removed, there is nothing to remind (the planner's rule).
      const heldByUs = (kk?.accepted ?? 0) > 0;
      const wanted = !last.deleted && !canceled(last) && !(settled(last.raw!) && (!heldByUs || !active));
      if (wanted) {
        const parsed = versaCommerceOrderSchema.parse(last.raw);
        const desired = desiredKomfortkasseState(parsed, { ...komfortkasseMappingSettings(), firstSubmission: false });
        const expected = desired.action === 'submit' ? payloadHash(desired.payload) : undefined;
        if (!active || hash !== expected) fail(2, `the shop's last state (v${last.version}) wants ${short(expected)} in Komfortkasse, it holds ${active ? short(hash) : 'nothing active'}`);
        else if (kk!.remindersStopped !== settled(last.raw!)) fail(2, `the shop's last state (v${last.version}) is ${settled(last.raw!) ? '' : 'not '}settled, Komfortkasse has stopReminder ${kk!.remindersStopped}`);
        if (kkRecord?.state !== 'submitted' || kkRecord.payloadHash !== expected) fail(2, `the record says ${kkRecord?.state ?? 'nothing'} (${short(kkRecord?.payloadHash)}), the shop's last state wants submitted ${short(expected)}`);
      } else {
        if (active && !untouchedSeed) fail(2, `the shop's last state (v${last.version}, ${last.deleted ? 'deleted' : String(last.raw!.status)}) wants it out of Komfortkasse, it is still held`);
        if (kkRecord && kkRecord.state !== 'removed' && kkRecord.state !== 'skipped') fail(2, `the shop's last state (v${last.version}) wants removed or skipped, the record says ${kkRecord.state}`);
      }
    }
  }

  // 4. Klar holds the newest cost (by updated_at, the shop's versions are in that order), the record agrees.
  // (Klar refusing the order's cost is a permanent cause, parked or since unparked by a cancellation.)
  if (!inOrdersDlq && !inKlarDlq && !klarParked && !klarRefused) {
    const known = [...new Set([...order.seen, ...order.forwarded])].sort((a, b) => b - a).map((v) => order.shop.versions[v]!);
    const newest = known.find((v) => !v.deleted && !canceled(v));
    const held = run.world.klar.get(String(id))?.cost;
    if (newest) {
      const parsed = versaCommerceOrderSchema.parse(newest.raw);
      const expected = orderCost({ paymentType: parsed.payment_type ?? '', total: parsed.total, currency: parsed.currency, createdAt: parsed.created_at }, klarPlanSettings().feeSchedule).transactionCosts;
      if (held !== expected) fail(4, `Klar holds ${held ?? 'nothing'}, the newest copy the workers saw (v${newest.version}) costs ${expected}`);
      if (record?.klar.state !== 'uploaded' || record.klar.transactionCosts !== expected) {
        fail(4, `the record says Klar ${record?.klar.state ?? 'nothing'} ${record?.klar.transactionCosts ?? ''}, the newest copy (v${newest.version}) costs ${expected}`);
      }
    } else if (held !== undefined) {
      fail(4, `Klar holds ${held} although no uncanceled copy of the order was seen`);
    }
  }

  // 6. A forgotten order keeps no upstream text and no would-be requests.
  if (order.forgotten) {
    const items = await queryAll({ TableName: tableName(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': orderPartition(id) } });
    for (const item of items) {
      const found = TEXT_ATTRIBUTES.filter((a) => item[a] !== undefined);
      if (found.length) fail(6, `forgotten, yet ${String(item.sk)} holds ${found.join(', ')}`);
    }
  }
  return out;
}

function short(hash: string | undefined): string {
  return hash ? hash.slice(0, 8) : 'none';
}
