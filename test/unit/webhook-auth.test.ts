import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  REPLAY_WINDOW_SECONDS,
  isAuthentic,
  parseSignatureHeader,
  sign,
  signatureHeader,
} from '../../lib/webhook/auth.ts';

const SECRET = 'current-secret';
const OLD_SECRET = 'previous-secret';
const NOW = new Date('2024-05-01T10:00:00Z');
const BODY = JSON.stringify({ order: { id: 100, code: '196-083-565' } });
const at = (secondsFromNow: number) => new Date(NOW.getTime() + secondsFromNow * 1000);

describe('sign / signatureHeader', () => {
  it('is hex HMAC-SHA256(secret, "<t>.<raw body>") as the contract says', () => {
    // prepare
    const t = 1714557600;
    const expected = createHmac('sha256', SECRET).update(`${t}.${BODY}`).digest('hex');
    // act
    const header = signatureHeader(SECRET, BODY, new Date(t * 1000));
    // assess
    expect(sign(SECRET, t, BODY)).toBe(expected);
    expect(header).toBe(`t=${t},v1=${expected}`);
  });

  it('signs bytes exactly as received (same result for the string and its UTF-8 bytes)', () => {
    const body = '{"note":"Grüße 😊"}';
    expect(sign(SECRET, 1, Buffer.from(body, 'utf8'))).toBe(sign(SECRET, 1, body));
  });
});

describe('parseSignatureHeader', () => {
  it('reads t and every v1, tolerating spaces and upper-case hex', () => {
    const a = 'a'.repeat(64);
    const b = 'B'.repeat(64);
    expect(parseSignatureHeader(` t=123 , v1=${a}, v1=${b}`)).toEqual({ timestamp: 123, signatures: [a, b.toLowerCase()] });
  });

  it.each([
    ['no timestamp', `v1=${'a'.repeat(64)}`],
    ['no signature', 't=123'],
    ['short hex', 't=123,v1=abcd'],
    ['non-numeric timestamp', `t=soon,v1=${'a'.repeat(64)}`],
    ['garbage', 'Bearer xyz'],
  ])('rejects %s', (_, header) => {
    expect(parseSignatureHeader(header)).toBeUndefined();
  });
});

describe('isAuthentic', () => {
  const signed = (secret: string, when: Date, body = BODY) => ({ signatureHeader: signatureHeader(secret, body, when) });

  it('accepts a valid signature made now', () => {
    expect(isAuthentic(signed(SECRET, NOW), BODY, [SECRET], NOW)).toBe(true);
  });

  it('rejects a signature made with the wrong secret', () => {
    expect(isAuthentic(signed('not-the-secret', NOW), BODY, [SECRET], NOW)).toBe(false);
  });

  it('rejects a signature over a different body (tampered payload)', () => {
    const tampered = BODY.replace('100', '101');
    expect(isAuthentic(signed(SECRET, NOW), tampered, [SECRET], NOW)).toBe(false);
  });

  it('accepts timestamps up to 5 minutes old and rejects older ones (replay)', () => {
    expect(isAuthentic(signed(SECRET, at(-REPLAY_WINDOW_SECONDS)), BODY, [SECRET], NOW)).toBe(true);
    expect(isAuthentic(signed(SECRET, at(-REPLAY_WINDOW_SECONDS - 1)), BODY, [SECRET], NOW)).toBe(false);
    expect(isAuthentic(signed(SECRET, at(-3600)), BODY, [SECRET], NOW)).toBe(false);
  });

  it('accepts timestamps up to 5 minutes ahead and rejects later ones (clock skew)', () => {
    expect(isAuthentic(signed(SECRET, at(REPLAY_WINDOW_SECONDS)), BODY, [SECRET], NOW)).toBe(true);
    expect(isAuthentic(signed(SECRET, at(REPLAY_WINDOW_SECONDS + 1)), BODY, [SECRET], NOW)).toBe(false);
  });

  it('accepts either secret during rotation', () => {
    const secrets = [OLD_SECRET, SECRET];
    expect(isAuthentic(signed(OLD_SECRET, NOW), BODY, secrets, NOW)).toBe(true);
    expect(isAuthentic(signed(SECRET, NOW), BODY, secrets, NOW)).toBe(true);
    expect(isAuthentic(signed('third', NOW), BODY, secrets, NOW)).toBe(false);
  });

  it('accepts a header carrying two v1 signatures when one matches', () => {
    const t = Math.floor(NOW.getTime() / 1000);
    const header = `t=${t},v1=${sign('retired', t, BODY)},v1=${sign(SECRET, t, BODY)}`;
    expect(isAuthentic({ signatureHeader: header }, BODY, [SECRET], NOW)).toBe(true);
  });

  it('accepts the shared token in the header or the query, with either rotated secret', () => {
    expect(isAuthentic({ tokenHeader: SECRET }, BODY, [SECRET], NOW)).toBe(true);
    expect(isAuthentic({ tokenQuery: SECRET }, BODY, [SECRET], NOW)).toBe(true);
    expect(isAuthentic({ tokenHeader: OLD_SECRET }, BODY, [OLD_SECRET, SECRET], NOW)).toBe(true);
  });

  it.each([
    ['wrong token', { tokenHeader: 'guess' }],
    ['token prefix', { tokenQuery: SECRET.slice(0, -1) }],
    ['token with suffix', { tokenHeader: `${SECRET}x` }],
    ['empty token', { tokenHeader: '' }],
    ['both secrets joined', { tokenHeader: `${OLD_SECRET},${SECRET}` }],
    ['nothing', {}],
  ])('rejects %s', (_, credentials) => {
    expect(isAuthentic(credentials, BODY, [OLD_SECRET, SECRET], NOW)).toBe(false);
  });

  it('rejects everything when no secret is configured (fails closed)', () => {
    expect(isAuthentic({ tokenHeader: '' }, BODY, [], NOW)).toBe(false);
    expect(isAuthentic(signed('', NOW), BODY, [], NOW)).toBe(false);
  });

  it('still accepts a valid token when a bad signature header comes along', () => {
    expect(isAuthentic({ signatureHeader: 't=1,v1=00', tokenHeader: SECRET }, BODY, [SECRET], NOW)).toBe(true);
  });
});
