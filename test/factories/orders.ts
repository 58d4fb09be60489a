/**
 * Raw, seed-like VersaCommerce orders (seed 002, order id 100) as the shop sends them —
 * JSON-shaped, before `versaCommerceOrderSchema.parse`. Overrides are shallow; an override
 * of `undefined` removes the key.
 */
import { seedAddress, seedOrder } from '../../local/simulators/fixtures.ts';

export type RawVersaCommerceAddress = Record<string, unknown>;
export type RawVersaCommerceOrder = Record<string, unknown> & {
  id: number;
  code: string;
  billing_address?: RawVersaCommerceAddress | null;
  shipping_address?: RawVersaCommerceAddress | null;
};

export function buildVersaCommerceAddress(
  category: 'billing' | 'shipping' = 'billing',
  overrides: Record<string, unknown> = {},
): RawVersaCommerceAddress {
  return applyOverrides(seedAddress(category, category === 'shipping' ? 10000 : 10001), overrides);
}

/** The seed order (shared with the simulators' fixtures), with shallow overrides. */
export function buildVersaCommerceOrder(overrides: Record<string, unknown> = {}): RawVersaCommerceOrder {
  return applyOverrides(seedOrder(), overrides) as RawVersaCommerceOrder;
}

/** Shallow overrides; `undefined` removes the key. */
export function applyOverrides(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[key];
    else result[key] = value;
  }
  return result;
}
