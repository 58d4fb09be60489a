import * as z from '../domain/schema.ts';

const SINCE_PATTERN = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;

export const SINCE_FORMAT_HINT = 'use YYYY-MM-DD or ISO 8601 with a zone, e.g. 2025-01-31 or 2025-01-31T08:00:00+01:00';

/**
 * A reconciliation start: `YYYY-MM-DD` (midnight UTC) or an ISO 8601 date-time with `Z` or
 * an offset (seconds optional). Undefined for anything else, including impossible dates
 * (2025-02-30) and date-times without a zone, which would mean different instants on
 * different machines. Shared by the CLI and the reconcile Lambda.
 */
export function parseSinceDate(value: string): Date | undefined {
  const text = value.trim();
  const match = SINCE_PATTERN.exec(text);
  if (!match) return undefined;
  const [, day, hours, minutes, seconds] = match;
  if (!z.iso.date().safeParse(day).success) return undefined;
  if (hours !== undefined && (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds ?? 0) > 59)) return undefined;
  const date = new Date(hours === undefined ? `${day}T00:00:00Z` : text.toUpperCase());
  return Number.isNaN(date.getTime()) ? undefined : date;
}
