import { config } from './index.ts';
import type { FeeSchedule } from '../domain/fee-schedule.ts';
import type { PaymentTypeMap } from '../domain/payment-types.ts';
import { parseFeeSchedule } from './fee-schedule.ts';
import { parsePaymentTypeMap } from './payment-types.ts';

/** The JSON-valued settings, parsed once per cold start like the rest of the config. */
let paymentTypes: { source: string | undefined; value: PaymentTypeMap } | undefined;
let fees: { source: string | undefined; value: FeeSchedule } | undefined;

export function paymentTypeMap(): PaymentTypeMap {
  const source = config().PAYMENT_TYPE_MAP;
  if (!paymentTypes || paymentTypes.source !== source) paymentTypes = { source, value: parsePaymentTypeMap(source) };
  return paymentTypes.value;
}

export function feeSchedule(): FeeSchedule {
  const source = config().FEE_SCHEDULE;
  if (!fees || fees.source !== source) fees = { source, value: parseFeeSchedule(source) };
  return fees.value;
}

/** What the Komfortkasse mapping needs of the configuration. */
export function komfortkasseMappingSettings(): { paymentTypes: PaymentTypeMap; defaultCountryCode?: string } {
  const defaultCountryCode = config().DEFAULT_COUNTRY_CODE;
  return { paymentTypes: paymentTypeMap(), ...(defaultCountryCode ? { defaultCountryCode } : {}) };
}

/** What the Klar cost planner needs of the configuration. */
export function klarPlanSettings(): { feeSchedule: FeeSchedule; paymentTypes: PaymentTypeMap; orderIdField: 'id' | 'code' } {
  return { feeSchedule: feeSchedule(), paymentTypes: paymentTypeMap(), orderIdField: config().KLAR_ORDER_ID_FIELD };
}
