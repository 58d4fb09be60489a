import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-orderbridge-signature';
export const TOKEN_HEADER = 'x-orderbridge-token';
export const REPLAY_WINDOW_SECONDS = 300;

export interface WebhookCredentials {
  signatureHeader?: string;
  tokenHeader?: string;
  tokenQuery?: string;
}

/** `t=<unix seconds>,v1=<hex>` — several v1 entries are allowed (the sender may sign with two secrets). */
export function parseSignatureHeader(header: string): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [key, ...rest] = part.trim().split('=');
    const value = rest.join('=').trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(value.toLowerCase());
  }
  return timestamp === undefined || signatures.length === 0 ? undefined : { timestamp, signatures };
}

/** A string body is signed as its UTF-8 bytes; a byte body exactly as received. */
export type RawBody = string | Uint8Array;

export function sign(secret: string, timestamp: number, rawBody: RawBody): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/** Builds the header a sender attaches; used by tests, the bench and the CLI. */
export function signatureHeader(secret: string, rawBody: RawBody, now = new Date()): string {
  const t = Math.floor(now.getTime() / 1000);
  return `t=${t},v1=${sign(secret, t, rawBody)}`;
}

/** Constant time even for different lengths: compare digests, never the raw strings. */
function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/**
 * True when the request carries a valid signature (inside the replay window) or a valid
 * shared token. Every secret is checked so two can be live during rotation. The caller
 * answers a bare 401 either way: which check failed is not the sender's business.
 */
export function isAuthentic(
  credentials: WebhookCredentials,
  rawBody: RawBody,
  secrets: readonly string[],
  now: Date = new Date(),
): boolean {
  if (secrets.length === 0) return false;
  let ok = false;
  if (credentials.signatureHeader) {
    const parsed = parseSignatureHeader(credentials.signatureHeader);
    const skew = parsed ? Math.abs(now.getTime() / 1000 - parsed.timestamp) : Infinity;
    if (parsed && skew <= REPLAY_WINDOW_SECONDS) {
      for (const secret of secrets) {
        const expected = sign(secret, parsed.timestamp, rawBody);
        for (const candidate of parsed.signatures) ok = safeEqual(expected, candidate) || ok;
      }
    }
  }
  for (const token of [credentials.tokenHeader, credentials.tokenQuery]) {
    if (token === undefined) continue;
    for (const secret of secrets) ok = safeEqual(secret, token) || ok;
  }
  return ok;
}
