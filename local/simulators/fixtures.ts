/**
 * Example payloads from the upstream docs (seeds 000–003), repaired into valid JSON.
 * The seeds' JSON is partly malformed text (missing quotes); the data itself is kept,
 * including VersaCommerce's odd `created_at` form, because that is what real shops send.
 */

export const seedAddress = (category: 'shipping' | 'billing', id: number): Record<string, unknown> => ({
  category,
  city: 'Welver',
  company: 'VersaCommerce',
  country: 'DE',
  customer_id: 1000,
  email: 'support@versacommerce.de',
  extension: '',
  firstname: 'Eduard',
  id,
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
});

/**
 * The seed 002 example order (id 100, code "196-083-565", COD, 15.94 €) as valid JSON data.
 * `status` defaults to "open" (the seed's example is "canceled", which would be removed
 * rather than submitted). Overrides are merged shallowly; pass `items`/`shipments` to replace them.
 * Returns a fresh object each call, so callers may mutate it.
 */
export function seedOrder(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
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
    shipping_address: seedAddress('shipping', 10000),
    billing_address: seedAddress('billing', 10001),
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
      shop_id: 953,
      updated_on: '2012-11-09',
    },
    items: [{ id: 1000, order_id: 100, product_id: 10000, code: 'SKU-10000', title: 'T-Shirt', quantity: 1 }],
    shipments: [],
    ...overrides,
  };
}

/** The seed 000 request body for `POST /order/123456` (a valid Komfortkasse submission). */
export function seedKomfortkasseOrder(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    date: '25-04-2018',
    customerEmail: 'max@example.org',
    customerNumber: '7890',
    type: 'INVOICE',
    paymentMethod: 'banktransfer',
    paymentMethodDescription: 'Payment by Invoice',
    statusDescription: 'shipped',
    amount: 22.38,
    currency: 'EUR',
    exchangeRate: 1.0,
    language: 'de',
    items: [
      { number: '1826353', name: 'T-Shirt' },
      { number: '7633-black', name: 'Jeans black' },
    ],
    invoiceNumbers: ['100072533'],
    shippingNumbers: ['897126743438923093287376'],
    billing: {
      gender: 'male',
      firstName: 'Max',
      lastName: 'Mustermann',
      street: 'Bahnhofstr. 14',
      postCode: '63073',
      city: 'Offenbach am Main',
      countryCode: 'DE',
      phone: '+49 8033 603 9778',
    },
    shipping: {
      gender: 'company',
      company: 'Mustermann GmbH',
      street: 'Industriestr. 33',
      postCode: '63073',
      city: 'Offenbach am Main',
      countryCode: 'DE',
    },
    ...overrides,
  };
}

/** One valid Klar TransactionCosts entry (seed 003 names only the required fields). */
export function seedKlarCost(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { orderId: '100', transactionCosts: 2.5, ...overrides };
}
