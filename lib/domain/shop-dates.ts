import { berlinWallClockToUtc } from './berlin-time.ts';

/**
 * Parses VersaCommerce timestamps, including the seed's malformed
 * `2013-03-19T12 =>39 =>51+01 =>00` (a YAML-ish `:` → ` =>` mangling), the Rails forms
 * `2013-03-19 12:39:51 +0100` / `… UTC`, and RFC 2822 dates. A timestamp without a zone
 * (`2016-09-09 12:32`, `2013-03-19`) is the shop's wall-clock time in Europe/Berlin,
 * never the host's zone. Impossible dates (`2013-02-30`) and garbage give `undefined`.
 */
export function parseVersaCommerceDate(value: string): Date | undefined {
  const repaired = value
    .trim()
    .replace(/\s*=>\s*/g, ':')
    .replace(/^(\d{4}-\d{2}-\d{2})[ Tt]+/, '$1T');
  const iso = ISO_LIKE.exec(repaired);
  if (iso) return fromIsoParts(iso);
  // RFC 2822 and similar, only when a month name and a 4-digit year are spelled out.
  if (/\b\d{4}\b/.test(repaired) && MONTH_NAME.test(repaired)) {
    const date = new Date(repaired);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  return undefined;
}

const ISO_LIKE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i;
const MONTH_NAME = /\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b/i;

function fromIsoParts(match: RegExpExecArray): Date | undefined {
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = fraction === '' ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const wallClock = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (new Date(wallClock).getUTCDate() !== day) return undefined; // e.g. 2013-02-30
  let utc: number;
  if (zone === undefined) {
    utc = berlinWallClockToUtc(wallClock);
  } else if (/^(z|utc|gmt)$/i.test(zone)) {
    utc = wallClock;
  } else {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMinutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (offsetHours > 14 || offsetMinutes > 59) return undefined;
    utc = wallClock - sign * (offsetHours * 60 + offsetMinutes) * 60_000;
  }
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Orders two VersaCommerce timestamps (e.g. `updated_at`): negative when `a` is earlier,
 * positive when later, undefined when either is absent or unparseable.
 */
export function compareVersaCommerceDates(a: string | null | undefined, b: string | null | undefined): number | undefined {
  const da = a ? parseVersaCommerceDate(a) : undefined;
  const db = b ? parseVersaCommerceDate(b) : undefined;
  return da && db ? da.getTime() - db.getTime() : undefined;
}
