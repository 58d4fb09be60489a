import * as z from 'zod';
import * as mini from '../domain/schema.ts';
import { attemptSchema, orderRecordSchema, type Attempt, type OrderRecord } from '../domain/sync-state.ts';
import { listAttempts } from '../store/attempts.ts';
import { findOrderIdByCode, getOrderRecord } from '../store/order-record.ts';
import { EXIT, indent, printJson, println, renderTable, type CliIo } from './io.ts';
import { SIDE_VARIABLE, sidesFor, type Side, type Sides } from './sides.ts';
import type { Target } from './target.ts';

/** A side switched off (DESIGN: "a side switched off shows `off`"): nothing else applies. */
const sideOffSchema = z.strictObject({ state: z.literal('off') });

/**
 * `orderbridge history <orderCode>`: what Orderbridge recorded for one order. The JSON
 * shape is DESIGN.md's, exactly (absent optional keys omitted); dry-run attempts also carry
 * the would-be `request`.
 */
export const historyJsonSchema = z.object({
  orderId: orderRecordSchema.shape.orderId,
  orderCode: orderRecordSchema.shape.orderCode,
  // (zod/mini schemas, bundled into the functions: picked with zod/mini's `pick`)
  komfortkasse: z.union([
    mini.pick(orderRecordSchema.shape.komfortkasse, { state: true, payloadHash: true, error: true, referenceNumber: true, paymentStatus: true }),
    sideOffSchema,
  ]),
  klar: z.union([mini.pick(orderRecordSchema.shape.klar, { state: true, transactionCosts: true, error: true }), sideOffSchema]),
  attempts: z.array(
    mini.pick(attemptSchema, { at: true, target: true, action: true, outcome: true, httpStatus: true, latencyMs: true, error: true, request: true }),
  ),
});
export type HistoryJson = z.infer<typeof historyJsonSchema>;

export interface OrderHistory {
  record: OrderRecord;
  attempts: Attempt[];
  /** which sides the target has on; a side that is off shows `off` instead of its record */
  sides?: Pick<Sides, Side>;
}

function isOff(history: OrderHistory, side: Side): boolean {
  return history.sides?.[side] === false;
}

/**
 * An order reference as an operator types it: the order code, or the shop's numeric id
 * (an order whose code never became known — e.g. a notification for a missing order —
 * is only reachable by id).
 */
export async function resolveOrderId(reference: string): Promise<number | undefined> {
  const ref = reference.trim();
  if (!ref) return undefined;
  const byCode = await findOrderIdByCode(ref);
  if (byCode !== undefined) return byCode;
  if (/^\d{1,15}$/.test(ref) && (await getOrderRecord(Number(ref)))) return Number(ref);
  return undefined;
}

export async function loadOrderHistory(reference: string): Promise<OrderHistory | undefined> {
  const orderId = await resolveOrderId(reference);
  if (orderId === undefined) return undefined;
  const [record, attempts] = await Promise.all([getOrderRecord(orderId), listAttempts(orderId)]);
  if (!record) return undefined;
  attempts.sort((a, b) => a.at.localeCompare(b.at));
  return { record, attempts };
}

export function toHistoryJson(history: OrderHistory): HistoryJson {
  const { record, attempts } = history;
  return historyJsonSchema.parse({
    orderId: record.orderId,
    orderCode: record.orderCode,
    komfortkasse: isOff(history, 'komfortkasse') ? { state: 'off' } : record.komfortkasse,
    klar: isOff(history, 'klar') ? { state: 'off' } : record.klar,
    attempts,
  });
}

export function renderHistory(history: OrderHistory): string {
  const { record, attempts } = history;
  const kk = record.komfortkasse;
  const klar = record.klar;
  const lines: string[] = [];
  lines.push(`Order ${record.orderCode ?? '(code unknown)'} (id ${record.orderId})${record.updatedAt ? `, last change ${record.updatedAt}` : ''}`);
  const kkDetails = [
    // the reference a customer quotes on the phone, and Komfortkasse's own payment status
    kk.referenceNumber ? `reference ${kk.referenceNumber}` : undefined,
    kk.paymentStatus ? `payment ${kk.paymentStatus}` : undefined,
    kk.payloadHash ? `payload ${kk.payloadHash.slice(0, 12)}…` : undefined,
    kk.error,
  ]
    .filter(Boolean)
    .join(' · ');
  const klarCosts = klar.transactionCosts !== undefined ? `transaction costs ${klar.transactionCosts.toFixed(2)}${klar.currency ? ` ${klar.currency}` : ''}` : undefined;
  const klarDetails = [klarCosts, klar.uploadedAt ? `uploaded ${klar.uploadedAt}` : undefined, klar.error].filter(Boolean).join(' · ');
  for (const [side, label, state, details] of [
    ['komfortkasse', 'Komfortkasse', kk.state, kkDetails],
    ['klar', 'Klar', klar.state, klarDetails],
  ] as const) {
    // Off: say so, and what was recorded before the side was switched off (if anything).
    const before = state === 'pending' && !details ? '' : `; last recorded ${state}${details ? ` · ${details}` : ''}`;
    const [shownState, shownDetails] = isOff(history, side) ? ['off', `switched off (${SIDE_VARIABLE[side]}=false)${before}`] : [state, details];
    lines.push(`  ${label.padEnd(14)}${shownState.padEnd(17)}${shownDetails}`.trimEnd());
  }
  lines.push('');
  if (attempts.length === 0) {
    lines.push('No upstream calls recorded yet.');
    return lines.join('\n');
  }
  lines.push(`Attempts (${attempts.length}):`);
  const rows = attempts.map((a) => [a.at, a.target, a.action, a.outcome, a.httpStatus, a.latencyMs, a.error]);
  const table = renderTable(['AT', 'TARGET', 'ACTION', 'OUTCOME', 'HTTP', 'MS', 'ERROR'], rows).split('\n');
  lines.push(`  ${table[0]}`);
  attempts.forEach((attempt, index) => {
    lines.push(`  ${table[index + 1]}`);
    if (attempt.request) {
      // DRY_RUN: the exact request the worker would have sent.
      lines.push(`      would send ${attempt.request.method} ${attempt.request.url}`);
      if (attempt.request.body !== undefined) lines.push(indent(JSON.stringify(attempt.request.body, null, 2), '        '));
    }
  });
  return lines.join('\n');
}

export async function runHistory(reference: string, options: { json?: boolean; target?: Target }, io: CliIo): Promise<number> {
  const [history, sides] = await Promise.all([loadOrderHistory(reference), options.target ? sidesFor(options.target) : undefined]);
  if (history && sides) history.sides = sides;
  if (!history) {
    println(io.stderr, `orderbridge history: no history for order "${reference}" (not an order code or id Orderbridge has seen)`);
    return EXIT.failed;
  }
  if (options.json) printJson(io, toHistoryJson(history));
  else println(io.stdout, renderHistory(history));
  return EXIT.ok;
}
