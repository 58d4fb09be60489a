import { getOrderRecord } from '../store/order-record.ts';
import { forgetOrderPersonalData } from '../store/privacy.ts';
import { resolveOrderId } from './history-view.ts';
import { EXIT, println, type CliIo } from './io.ts';

/**
 * GDPR erasure ahead of the TTL (HISTORY_RETENTION_DAYS): drops what can identify a person —
 * would-be request bodies (names, addresses, emails) and upstream messages — and keeps the
 * anonymous part (states, outcomes, HTTP statuses, latencies, costs, timestamps).
 */
export async function runForget(reference: string, io: CliIo): Promise<number> {
  const orderId = await resolveOrderId(reference);
  const record = orderId === undefined ? undefined : await getOrderRecord(orderId);
  if (orderId === undefined || !record) {
    println(io.stderr, `orderbridge forget: no history for order "${reference}"`);
    return EXIT.failed;
  }
  const { attempts } = await forgetOrderPersonalData(orderId);
  println(
    io.stdout,
    `forgot the personal data of order ${record.orderCode ?? '(code unknown)'} (id ${orderId}): upstream messages and ` +
      `would-be requests removed from its state and ${attempts} attempt(s); states, outcomes and timestamps kept.`,
  );
  return EXIT.ok;
}
