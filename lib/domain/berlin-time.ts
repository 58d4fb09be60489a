/**
 * Wall-clock time in Europe/Berlin, where the shop lives: order dates for Komfortkasse
 * (dd-MM-yyyy), fee-rule validity days, and shop timestamps without a zone.
 */

export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

let formatter: Intl.DateTimeFormat | undefined;

/**
 * Built on first use: the first formatter with a time zone loads ICU's zone data (about
 * 20 ms), which a cold start that never formats a date should not pay.
 */
function berlin(): Intl.DateTimeFormat {
  formatter ??= new Intl.DateTimeFormat('en-US', {
    timeZone: 'Europe/Berlin',
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  return formatter;
}

/** The instant as a Berlin wall clock. */
export function berlinWallClock(instant: Date): WallClock {
  const parts: Record<string, number> = {};
  for (const part of berlin().formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year ?? 1970,
    month: parts.month ?? 1,
    day: parts.day ?? 1,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
}

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** The calendar date (YYYY-MM-DD) of an instant in Europe/Berlin. */
export function berlinCalendarDate(instant: Date): string {
  const { year, month, day } = berlinWallClock(instant);
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

/** `dd-MM-yyyy` of the instant's calendar day in Europe/Berlin (Komfortkasse's date format). */
export function formatBerlinDate(instant: Date): string {
  const { year, month, day } = berlinWallClock(instant);
  return `${pad(day)}-${pad(month)}-${pad(year, 4)}`;
}

/** Berlin's UTC offset in ms at the instant `utc`. */
function berlinOffsetMs(utc: number): number {
  const wall = berlinWallClock(new Date(utc));
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  return asUtc - (utc - (((utc % 1000) + 1000) % 1000));
}

/** Converts a Berlin wall-clock time (encoded as if it were UTC) to the real instant. */
export function berlinWallClockToUtc(wallClock: number): number {
  const first = wallClock - berlinOffsetMs(wallClock);
  return wallClock - berlinOffsetMs(first);
}
