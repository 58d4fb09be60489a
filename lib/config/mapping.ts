import { config } from './index.ts';
import { parseFeeSchedule, type FeeSchedule } from './fee-schedule.ts';
import { parsePaymentTypeMap, type PaymentTypeMap } from './payment-types.ts';

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
