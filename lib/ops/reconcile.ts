import { reconcile, type ReconcileSummary } from '../sync/reconcile.ts';
import { EXIT, printJson, println, type CliIo } from './io.ts';

/** `orderbridge reconcile`: the scheduled reconciliation, run now, with progress on stderr. */
export async function runReconcile(options: { since: Date; dryRun?: boolean; json?: boolean }, io: CliIo): Promise<number> {
  println(io.stderr, `reconcile: orders created since ${options.since.toISOString()}${options.dryRun ? ' (dry run: nothing is enqueued)' : ''}`);
  const summary = await reconcile({
    since: options.since,
    dryRun: options.dryRun,
    trigger: 'cli',
    onPage: ({ page, checked, enqueued }) =>
      println(io.stderr, `reconcile: page ${page + 1} — ${checked} checked, ${enqueued} ${options.dryRun ? 'to enqueue' : 'enqueued'}`),
  });
  if (options.json) printJson(io, summary);
  else println(io.stdout, renderSummary(summary));
  return EXIT.ok;
}

export function renderSummary(summary: ReconcileSummary): string {
  const ids = summary.enqueuedOrderIds;
  const shown = ids.length > 20 ? `${ids.slice(0, 20).join(', ')}, … (${ids.length - 20} more)` : ids.join(', ');
  const rows: [string, number, string?][] = [
    ['checked', summary.checked],
    ['in sync', summary.inSync],
    [summary.dryRun ? 'would enqueue' : 'enqueued', summary.enqueued, ids.length ? `order ids ${shown}` : undefined],
    ['skipped (payment type)', summary.skippedByPaymentType],
    ['needs-attention', summary.needsAttention, summary.needsAttention ? 'see: orderbridge needs-attention' : undefined],
  ];
  if (summary.invalid) rows.push(['invalid (not checked)', summary.invalid, 'the shop returned orders that fail the schema']);
  const head = `Reconciled orders created since ${summary.since}${summary.dryRun ? ' — dry run, nothing enqueued' : ''}:`;
  return [head, ...rows.map(([label, value, note]) => `  ${label.padEnd(24)}${String(value).padStart(6)}${note ? `   ${note}` : ''}`)].join('\n');
}
