/** Currency symbols and codes as shops write them → ISO 4217. */

const CURRENCY_SYMBOLS: Readonly<Record<string, string>> = {
  '€': 'EUR',
  euro: 'EUR',
  '$': 'USD',
  us$: 'USD',
  '£': 'GBP',
  chf: 'CHF',
  fr: 'CHF',
  'fr.': 'CHF',
  sfr: 'CHF',
  'sfr.': 'CHF',
  zł: 'PLN',
  kč: 'CZK',
  ft: 'HUF',
};

let currencies: ReadonlySet<string> | undefined | null;

/** ISO 4217 codes this runtime knows; read on first use (ICU data), not at cold start. */
function knownCurrencies(): ReadonlySet<string> | undefined {
  if (currencies === undefined) {
    try {
      currencies = new Set(Intl.supportedValuesOf('currency'));
    } catch {
      currencies = null;
    }
  }
  return currencies ?? undefined;
}

/** Currency symbol or code → ISO 4217 code, or `undefined` when unknown. */
export function toIsoCurrency(value: string): string | undefined {
  const trimmed = value.trim();
  const bySymbol = CURRENCY_SYMBOLS[trimmed.toLowerCase()];
  if (bySymbol !== undefined) return bySymbol;
  if (!/^[A-Za-z]{3}$/.test(trimmed)) return undefined;
  const code = trimmed.toUpperCase();
  const known = knownCurrencies();
  if (known !== undefined && known.size > 0 && !known.has(code)) return undefined;
  return code;
}
