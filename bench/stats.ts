/** Small statistics and printing helpers for the benchmark. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export const median = (samples: readonly number[]) => percentile(samples, 50);

/** Rounds for display and JSON: two decimals below 10, one below 100, none above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const digits = Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

const started = performance.now();

/** A progress line on stderr, so stdout carries only the table. */
export function progress(message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

export interface Row {
  metric: string;
  value: string;
  target: string;
  /** true = meets the target, false = misses it, undefined = informational */
  ok?: boolean;
}

export function table(rows: readonly Row[]): string {
  const header: Row = { metric: 'metric', value: 'value', target: 'target' };
  const all = [header, ...rows];
  const width = (key: 'metric' | 'value' | 'target') => Math.max(...all.map((r) => r[key].length));
  const [m, v, t] = [width('metric'), width('value'), width('target')];
  const line = (r: Row) => `${r.metric.padEnd(m)}  ${r.value.padStart(v)}  ${r.target.padEnd(t)}  ${r.ok === undefined ? '' : r.ok ? 'ok' : 'MISSED'}`.trimEnd();
  const rule = `${'-'.repeat(m)}  ${'-'.repeat(v)}  ${'-'.repeat(t)}  ------`;
  return [line(header) + '  result', rule, ...rows.map(line)].join('\n');
}
