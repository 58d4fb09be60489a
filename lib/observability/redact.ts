/**
 * Personal data never reaches a log line. Keys that name PII are masked wherever they
 * appear, and string values that look like an email or phone number are masked too, so a
 * stray error message cannot leak them either.
 */
const PII_KEY = /(e-?mail|first_?name|last_?name|^name$|fullname|customer_?name|phone|mobile|street|address|zip|post_?code|city|company|title|iban|birthday|note|remittee|originator)/i;
const EMAIL = /[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}/gi;
// International (+49 …) or national (0511 …, 0511/…) numbers; order codes like 196-083-565 are not phones.
const PHONE = /(?:\+\d[\d\s/().-]{6,}\d|\b0\d{1,5}[\s/][\d\s/-]{4,}\d)/g;
const MASK = '[redacted]';

export function redactText(text: string): string {
  return text.replace(EMAIL, MASK).replace(PHONE, MASK);
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[depth]';
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redactText(value.message) };
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = PII_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'object' ? MASK : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}
