import { createHash } from 'node:crypto';
import type { $ZodError } from 'zod/v4/core';
import { paymentMethodDescriptionFor, paymentTypeVerdict, type PaymentTypeMap } from './payment-types.ts';
import { InvalidMessageError } from './errors.ts';
import {
  komfortkasseOrderSchema,
  type KomfortkasseAddress,
  type KomfortkasseGender,
  type KomfortkasseItem,
  type KomfortkasseOrder,
} from './komfortkasse.ts';
import { formatBerlinDate } from './berlin-time.ts';
import { toIsoCurrency } from './currency.ts';
import { isCanceledInShop, isCanceledStatus, isPaidInShop } from './order-status.ts';
import { parseVersaCommerceDate, type VersaCommerceAddress, type VersaCommerceOrder } from './versacommerce.ts';

/**
 * VersaCommerce order → Komfortkasse order (DESIGN.md "Mapping rules", seeds 000/002).
 * Pure functions: no I/O, no clock, no environment. Messages name fields, never values
 * that could be PII (names, emails, addresses).
 */

export interface KomfortkasseMappingContext {
  paymentTypes: PaymentTypeMap;
  /** `KOMFORTKASSE_INITIAL_DUNNING_LEVEL`; sent only when `firstSubmission`. */
  initialDunningLevel?: number;
  /** True when Komfortkasse has never accepted this order before. */
  firstSubmission: boolean;
  /**
   * Sent as `stopReminder` when defined (true or false), omitted when undefined. The caller
   * decides it (e.g. from `isPaidInShop` and what Komfortkasse was last told); it is not
   * part of `payloadHash`.
   */
  stopReminder?: boolean;
  /**
   * `DEFAULT_COUNTRY_CODE`: the billing country when neither the billing nor the shipping
   * address names one. A name or alpha-3 code is normalised like an address country.
   */
  defaultCountryCode?: string;
}

export type DesiredKomfortkasseState =
  | { action: 'submit'; payload: KomfortkasseOrder }
  | { action: 'remove' }
  | { action: 'skip'; reason: string };

/** Seed 002: `returned` is "Bestellung wurde storniert", so it ends the order like `canceled`. */

/**
 * What Komfortkasse should hold for this order. `remove` is unconditional here; the worker
 * only sends it when the order was ever submitted. Throws `InvalidMessageError` when the
 * order should be submitted but cannot be mapped, including a payment type the table does
 * not name (an operator must add it to `PAYMENT_TYPE_MAP`).
 */
export function desiredKomfortkasseState(
  order: VersaCommerceOrder,
  context: KomfortkasseMappingContext,
): DesiredKomfortkasseState {
  // A canceled order leaves Komfortkasse whatever its payment type.
  if (isCanceledInShop(order)) return { action: 'remove' };
  const verdict = paymentTypeVerdict(order.payment_type, context.paymentTypes);
  if (verdict.kind === 'unknown') throw new InvalidMessageError(`order ${order.id}: ${verdict.message}`);
  if (verdict.kind === 'skip') {
    return { action: 'skip', reason: `payment type "${verdict.paymentType}" is not sent to Komfortkasse` };
  }
  return { action: 'submit', payload: toKomfortkasseOrder(order, context) };
}

/** Builds the `POST /order/{code}` body. Throws `InvalidMessageError` when it cannot. */
export function toKomfortkasseOrder(order: VersaCommerceOrder, context: KomfortkasseMappingContext): KomfortkasseOrder {
  const where = `order ${order.id}`;
  const verdict = paymentTypeVerdict(order.payment_type, context.paymentTypes);
  if (verdict.kind === 'unknown') throw new InvalidMessageError(`${where}: ${verdict.message}`);
  if (verdict.kind === 'skip') {
    throw new InvalidMessageError(`${where}: payment type "${verdict.paymentType}" is not sent to Komfortkasse`);
  }

  const createdAt = parseVersaCommerceDate(order.created_at);
  if (createdAt === undefined) {
    throw new InvalidMessageError(`${where}: created_at "${order.created_at}" is not a valid timestamp`);
  }

  const amount = roundToCents(order.total);
  if (amount === undefined || amount < 0) {
    throw new InvalidMessageError(`${where}: total must be a non-negative amount`);
  }

  const currency = toIsoCurrency(order.currency);
  if (currency === undefined) {
    throw new InvalidMessageError(`${where}: unknown currency "${order.currency}" (expected a symbol like € or an ISO 4217 code)`);
  }

  const { billing, shipping } = mapAddresses(order, where, context.defaultCountryCode);

  const payload: Record<string, unknown> = {
    date: formatBerlinDate(createdAt),
    customerEmail: customerEmailOf(order),
    customerNumber: nonEmpty(order.customer_id),
    type: verdict.type,
    marketplaceNumber: nonEmpty(order.origin_id),
    paymentMethod: verdict.paymentType,
    paymentMethodDescription: paymentMethodDescriptionFor(verdict.paymentType),
    statusDescription: nonEmpty(order.status),
    amount,
    currency,
    language: languageOf(order.checkout_locale),
    items: nonEmptyList(itemsOf(order)),
    invoiceNumbers: nonEmptyList(unique([nonEmpty(order.external_invoicing_id)])),
    shippingNumbers: nonEmptyList(trackingNumbersOf(order)),
    billing,
    shipping,
  };
  if (context.firstSubmission && context.initialDunningLevel !== undefined) {
    payload.initialDunningLevel = context.initialDunningLevel;
  }
  if (context.stopReminder !== undefined) payload.stopReminder = context.stopReminder;
  for (const key of Object.keys(payload)) {
    if (payload[key] === undefined) delete payload[key];
  }

  const result = komfortkasseOrderSchema.safeParse(payload);
  if (!result.success) {
    throw new InvalidMessageError(`${where}: cannot build a valid Komfortkasse order — ${describeIssues(result.error)}`, {
      cause: result.error,
    });
  }
  return result.data;
}

/**
 * sha256 (hex) of the payload's canonical JSON (object keys sorted recursively), without
 * `initialDunningLevel` (the first submission and an identical later one hash the same) and
 * without `stopReminder` (the planner tracks the reminder flag on its own).
 */
export function payloadHash(payload: KomfortkasseOrder): string {
  const { initialDunningLevel: _dunning, stopReminder: _reminder, ...rest } = payload;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const child = (value as Record<string, unknown>)[key];
      if (child !== undefined) sorted[key] = sortKeys(child);
    }
    return sorted;
  }
  return value;
}

// ---------------------------------------------------------------- dates, money, currency

export { formatBerlinDate, toIsoCurrency };
export { isCanceledInShop, isCanceledStatus, isPaidInShop };

/** Rounds half away from zero to cents without binary drift (1.005 → 1.01). */
export function roundToCents(value: number): number | undefined {
  if (!Number.isFinite(value)) return undefined;
  const sign = value < 0 ? -1 : 1;
  const rounded = Number(`${Math.round(Number(`${Math.abs(value)}e2`))}e-2`);
  if (!Number.isFinite(rounded)) return undefined;
  return rounded === 0 ? 0 : sign * rounded;
}


// ---------------------------------------------------------------- addresses

const COUNTRY_NAMES: Readonly<Record<string, string>> = {
  deutschland: 'DE',
  germany: 'DE',
  deu: 'DE',
  österreich: 'AT',
  oesterreich: 'AT',
  austria: 'AT',
  aut: 'AT',
  schweiz: 'CH',
  switzerland: 'CH',
  suisse: 'CH',
  svizzera: 'CH',
  che: 'CH',
  liechtenstein: 'LI',
  lie: 'LI',
  luxemburg: 'LU',
  luxembourg: 'LU',
  lux: 'LU',
  niederlande: 'NL',
  netherlands: 'NL',
  nld: 'NL',
  belgien: 'BE',
  belgium: 'BE',
  bel: 'BE',
  frankreich: 'FR',
  france: 'FR',
  fra: 'FR',
  italien: 'IT',
  italy: 'IT',
  ita: 'IT',
  dänemark: 'DK',
  denmark: 'DK',
  dnk: 'DK',
  polen: 'PL',
  poland: 'PL',
  pol: 'PL',
  uk: 'GB',
};

/** Country name, alpha-3 or alpha-2 → uppercase alpha-2, or `undefined`. */
export function toCountryCode(value: string | undefined): string | undefined {
  const trimmed = value?.trim() ?? '';
  if (trimmed === '') return undefined;
  const byName = COUNTRY_NAMES[trimmed.toLowerCase()];
  if (byName !== undefined) return byName;
  return /^[A-Za-z]{2}$/.test(trimmed) ? trimmed.toUpperCase() : undefined;
}

const MALE_TITLES = new Set(['herr', 'hr', 'herrn', 'mr', 'mister', 'sir', 'monsieur', 'male', 'm']);
const FEMALE_TITLES = new Set(['frau', 'fr', 'mrs', 'ms', 'miss', 'madame', 'mme', 'female', 'f', 'w']);

function genderOf(title: string | undefined, hasName: boolean, hasCompany: boolean): KomfortkasseGender {
  if (hasCompany && !hasName) return 'company';
  const key = (title ?? '').trim().toLowerCase().replace(/\.$/, '');
  if (MALE_TITLES.has(key)) return 'male';
  if (FEMALE_TITLES.has(key)) return 'female';
  return 'unknown';
}

/** `"<street> <streetnumber>, <extension>"`: Komfortkasse has no field for the Adresszusatz. */
function streetOf(address: VersaCommerceAddress): string | undefined {
  const street = nonEmpty(address.street);
  const number = nonEmpty(address.streetnumber);
  const line =
    street !== undefined && number !== undefined && street.endsWith(` ${number}`)
      ? street
      : nonEmpty(definedOnly([street, number]).join(' '));
  return nonEmpty(definedOnly([line, nonEmpty(address.extension)]).join(', '));
}

type CountryOfAddress = { kind: 'code'; code: string } | { kind: 'absent' } | { kind: 'unrecognised'; raw: string };

function countryOf(address: VersaCommerceAddress | undefined): CountryOfAddress {
  const raw = nonEmpty(address?.country);
  if (raw === undefined) return { kind: 'absent' };
  const code = toCountryCode(raw);
  return code === undefined ? { kind: 'unrecognised', raw } : { kind: 'code', code };
}

function unrecognisedCountry(raw: string): string {
  return `has country "${raw}", not a 2-letter ISO country code`;
}

type AddressMapping = { ok: true; address: KomfortkasseAddress } | { ok: false; problem: string };

function mapAddress(address: VersaCommerceAddress, countryCode: string): AddressMapping {
  const firstName = nonEmpty(address.firstname);
  const lastName = nonEmpty(address.lastname);
  const company = nonEmpty(address.company);
  if (lastName === undefined && company === undefined) {
    return { ok: false, problem: 'has neither a last name nor a company' };
  }
  const mapped: Record<string, string | undefined> = {
    gender: genderOf(address.title, firstName !== undefined || lastName !== undefined, company !== undefined),
    firstName,
    lastName,
    company,
    street: streetOf(address),
    postCode: nonEmpty(address.zipcode),
    city: nonEmpty(address.city),
    countryCode,
    phone: nonEmpty(address.phone),
  };
  for (const key of Object.keys(mapped)) {
    if (mapped[key] === undefined) delete mapped[key];
  }
  return { ok: true, address: mapped as KomfortkasseAddress };
}

/** True when the VersaCommerce address carries no usable field at all. */
function isBlankAddress(address: VersaCommerceAddress | null | undefined): boolean {
  if (address === null || address === undefined) return true;
  const fields = [
    address.firstname,
    address.lastname,
    address.company,
    address.street,
    address.streetnumber,
    address.extension,
    address.zipcode,
    address.city,
    address.country,
  ];
  return fields.every((field) => nonEmpty(field) === undefined);
}

/**
 * Billing and shipping address. A blank billing address is replaced by the shipping one.
 * The billing country falls back to the shipping country, then to `DEFAULT_COUNTRY_CODE`;
 * a shipping address without a country takes the billing one. A shipping address is
 * omitted only when it maps to exactly the billing address; one that cannot be mapped is
 * an error, never silently dropped.
 */
function mapAddresses(
  order: VersaCommerceOrder,
  where: string,
  defaultCountryCode: string | undefined,
): { billing: KomfortkasseAddress; shipping?: KomfortkasseAddress } {
  const billingSource = isBlankAddress(order.billing_address) ? undefined : (order.billing_address ?? undefined);
  const shippingSource = isBlankAddress(order.shipping_address) ? undefined : (order.shipping_address ?? undefined);

  const billingFrom = billingSource ?? shippingSource;
  if (billingFrom === undefined) {
    throw new InvalidMessageError(`${where}: has neither a billing nor a shipping address`);
  }
  const billingLabel = billingSource === undefined ? 'shipping address (used as billing)' : 'billing address';
  // Only a shipping address of its own (not the one standing in for billing) is sent as shipping.
  const shippingFrom = billingSource === undefined ? undefined : shippingSource;

  const billingCountry = countryOf(billingFrom);
  if (billingCountry.kind === 'unrecognised') {
    throw new InvalidMessageError(`${where}: ${billingLabel} ${unrecognisedCountry(billingCountry.raw)}`);
  }
  const shippingCountry = countryOf(shippingFrom);
  if (shippingCountry.kind === 'unrecognised') {
    throw new InvalidMessageError(`${where}: shipping address ${unrecognisedCountry(shippingCountry.raw)}`);
  }

  const billingCountryCode =
    billingCountry.kind === 'code'
      ? billingCountry.code
      : shippingCountry.kind === 'code'
        ? shippingCountry.code
        : defaultCountry(where, noCountryAnywhere(billingLabel, billingSource, shippingFrom), defaultCountryCode);

  const billing = mapAddress(billingFrom, billingCountryCode);
  if (!billing.ok) throw new InvalidMessageError(`${where}: ${billingLabel} ${billing.problem}`);
  if (shippingFrom === undefined) return { billing: billing.address };

  const shipping = mapAddress(shippingFrom, shippingCountry.kind === 'code' ? shippingCountry.code : billingCountryCode);
  if (!shipping.ok) throw new InvalidMessageError(`${where}: shipping address ${shipping.problem}`);
  if (canonicalJson(shipping.address) === canonicalJson(billing.address)) return { billing: billing.address };
  return { billing: billing.address, shipping: shipping.address };
}

/** Which addresses were searched for a country, for the message that asks for a default. */
function noCountryAnywhere(
  billingLabel: string,
  billingSource: VersaCommerceAddress | undefined,
  shippingFrom: VersaCommerceAddress | undefined,
): string {
  if (billingSource === undefined) return `${billingLabel} has no country`;
  return shippingFrom === undefined
    ? `${billingLabel} has no country (and there is no shipping address)`
    : `${billingLabel} has no country (nor has the shipping address)`;
}

/** The configured default country, or the error that tells the operator to set one. */
function defaultCountry(where: string, noCountry: string, configured: string | undefined): string {
  const trimmed = configured?.trim() ?? '';
  if (trimmed === '') {
    throw new InvalidMessageError(`${where}: ${noCountry}; set DEFAULT_COUNTRY_CODE to use a default`);
  }
  const code = toCountryCode(trimmed);
  if (code === undefined) {
    throw new InvalidMessageError(`${where}: ${noCountry}, and DEFAULT_COUNTRY_CODE "${trimmed}" is not a 2-letter ISO country code`);
  }
  return code;
}

// ---------------------------------------------------------------- other fields

function nonEmpty(value: string | number | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = String(value).trim();
  return trimmed === '' ? undefined : trimmed;
}

function nonEmptyList<T>(values: T[]): T[] | undefined {
  return values.length > 0 ? values : undefined;
}

function definedOnly<T>(values: Array<T | undefined>): T[] {
  return values.filter((value): value is T => value !== undefined);
}

function unique(values: Array<string | undefined>): string[] {
  return [...new Set(definedOnly(values))];
}

/** One `@` with text on both sides and no whitespace: what Komfortkasse accepts as an email. */
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;

function emailOf(value: string | undefined): string | undefined {
  const email = nonEmpty(value);
  return email !== undefined && EMAIL_SHAPE.test(email) ? email : undefined;
}

/** `customer_email`, else the billing address's email, else the nested customer's. */
function customerEmailOf(order: VersaCommerceOrder): string | undefined {
  return emailOf(order.customer_email) ?? emailOf(order.billing_address?.email) ?? emailOf(order.customer?.email);
}

function languageOf(locale: string | undefined): string | undefined {
  const match = /^([A-Za-z]{2})(?:$|[-_])/.exec(nonEmpty(locale) ?? '');
  return match?.[1]?.toLowerCase();
}

function itemsOf(order: VersaCommerceOrder): KomfortkasseItem[] {
  const items: KomfortkasseItem[] = [];
  for (const item of order.items ?? []) {
    const number = nonEmpty(item.code) ?? nonEmpty(item.product_id) ?? nonEmpty(item.id);
    if (number === undefined) continue;
    const name = nonEmpty(item.title);
    items.push(name === undefined ? { number } : { number, name });
  }
  return items;
}

function trackingNumbersOf(order: VersaCommerceOrder): string[] {
  return unique((order.shipments ?? []).flatMap((shipment) => [nonEmpty(shipment.tracking_code), nonEmpty(shipment.tracking_number)]));
}

function describeIssues(error: $ZodError): string {
  return error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`).join('; ');
}
