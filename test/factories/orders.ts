/**
 * Raw, seed-like VersaCommerce orders (seed 002, order id 100) as the shop sends them —
 * JSON-shaped, before `versaCommerceOrderSchema.parse`. Overrides are shallow; an override
 * of `undefined` removes the key.
 */

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
  return applyOverrides(
    {
      category,
      city: 'Welver',
      company: 'VersaCommerce',
      country: 'DE',
      customer_id: 1000,
      email: 'support@versacommerce.de',
      extension: '',
      firstname: 'Eduard',
      id: category === 'shipping' ? 10000 : 10001,
      lastname: 'Siebert',
      locked: true,
      option_01: '',
      option_02: '',
      option_03: '',
      order_id: 100,
      phone: '+49 511 1659 800',
      state: 'unbekannt',
      street: 'Zwischen Den Hölzern',
      streetnumber: '1a',
      title: 'Herr',
      zipcode: '59514',
    },
    overrides,
  );
}

export function buildVersaCommerceOrder(overrides: Record<string, unknown> = {}): RawVersaCommerceOrder {
  const order = applyOverrides(
    {
      bank_account_bank_code: null,
      bank_account_bank_name: null,
      bank_account_name: null,
      bank_account_number: null,
      checkout_locale: 'de',
      code: '196-083-565',
      coupon_code: null,
      coupon_value: '0.0',
      created_at: '2013-03-19T12 =>39 =>51+01 =>00',
      currency: '€',
      customer_email: 'support@versacommerce.de',
      customer_id: 1000,
      discount_total: '0.0',
      external_invoicing_id: null,
      id: 100,
      item_total: '8.49',
      items_count: 1,
      items_status: 'undelivered',
      note: 'Lorem ipsum dolor sit amet...',
      payment_cost: '2.5',
      payment_status: 'not_paid',
      payment_tax_rate: 19,
      payment_type: 'cod',
      payments_count: 0,
      prices_include_tax: true,
      reduced_tax_amount: '0.0',
      reduced_tax_rate: 7,
      reduced_tax_total: '0.0',
      referrer: '/',
      shipments_count: 0,
      shipping_cost: '4.95',
      shop_id: 953,
      source: null,
      standard_tax_amount: '2.55',
      standard_tax_rate: 19,
      standard_tax_total: '15.94',
      status: 'open',
      subtotal: '15.94',
      total: '15.94',
      weight_total: 0,
      shipping_address: buildVersaCommerceAddress('shipping'),
      billing_address: buildVersaCommerceAddress('billing'),
      customer: {
        accepts_newsletter: false,
        account_confirmation_sent: false,
        active: true,
        birthday: null,
        created_on: '2012-11-09',
        email: 'support@versacommerce.de',
        id: 1000,
        note: null,
        option_01: '',
        option_02: '',
        option_03: '',
        option_04: '',
        registered: true,
        shop_id: '953',
        updated_on: '2012-11-09',
      },
      items: [{ id: 1000, order_id: 100, product_id: 10000, code: 'SKU-10000', title: 'T-Shirt', quantity: 1 }],
      shipments: [],
    },
    overrides,
  );
  return order as RawVersaCommerceOrder;
}

function applyOverrides(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[key];
    else result[key] = value;
  }
  return result;
}
