/**
 * What the workers plan with: parsed VersaCommerce orders, the recorded Komfortkasse and
 * Klar state of an order (lib/domain/sync-state.ts), Klar cost facts, and the DynamoDB
 * STATE item those records are stored as. Overrides are shallow.
 */
import type { KlarFacts } from '../../lib/domain/klar-plan.ts';
import type { Attempt, RecordedKlar, RecordedKomfortkasse } from '../../lib/domain/sync-state.ts';
import { versaCommerceOrderSchema, type VersaCommerceOrder } from '../../lib/domain/versacommerce.ts';
import { buildVersaCommerceOrder } from './orders.ts';

/** The seed order (id 100, code 196-083-565, COD, open, not paid) as the workers see it after parsing. */
export function buildParsedOrder(overrides: Record<string, unknown> = {}): VersaCommerceOrder {
  return versaCommerceOrderSchema.parse(buildVersaCommerceOrder(overrides));
}

/** A Komfortkasse side that was never touched: pending, never submitted. */
export function buildRecordedKomfortkasse(overrides: Partial<RecordedKomfortkasse> = {}): RecordedKomfortkasse {
  return { state: 'pending', everSubmitted: false, ...overrides };
}

/** A Klar side with nothing recorded yet: pending, version 0. */
export function buildRecordedKlar(overrides: Partial<RecordedKlar> = {}): RecordedKlar {
  return { state: 'pending', version: 0, ...overrides };
}

/** The cost facts of the seed order (COD, 15.94 €), as a klar-costs message carries them. */
export function buildKlarFacts(overrides: Partial<KlarFacts> = {}): KlarFacts {
  return {
    orderId: 100,
    orderCode: '196-083-565',
    total: 15.94,
    currency: '€',
    paymentType: 'cod',
    status: 'open',
    createdAt: '2024-05-01T10:00:00+02:00',
    updatedAt: '2024-05-01T10:00:00+02:00',
    receivedAt: '2024-05-01T08:00:01.000Z',
    ...overrides,
  };
}

/** One upstream call as the attempt log records it. */
export function buildAttempt(overrides: Partial<Attempt> = {}): Attempt {
  return {
    at: '2024-05-01T10:00:00.000Z',
    target: 'komfortkasse',
    action: 'submit',
    outcome: 'success',
    httpStatus: 200,
    latencyMs: 42,
    correlationId: 'corr-1',
    ...overrides,
  };
}

/** The DynamoDB STATE item of an order (attribute names as lib/store/order-record.ts writes them). */
export function buildStateItem(orderId: number, attributes: Record<string, unknown> = {}): Record<string, unknown> {
  return { pk: `ORDER#${orderId}`, sk: 'STATE', orderId, ...attributes };
}
