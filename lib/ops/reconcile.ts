import { reconcile, type ReconcileSummary } from '../sync/reconcile.ts';
import { EXIT, printJson, println, type CliIo } from './io.ts';

/** `orderbridge reconcile`: the scheduled reconciliation, run now, with progress on stderr. */
export async function runReconcile(options: { since: Date; dryRun?: boolean; json?: boolean; openMaxAgeDays?: number }, io: CliIo): Promise<number> {
  println(io.stderr, `reconcile: orders created since ${options.since.toISOString()}${options.dryRun ? ' (dry run: nothing is enqueued)' : ''}`);
  const summary = await reconcile({
    since: options.since,
    dryRun: options.dryRun,
    openMaxAgeDays: options.openMaxAgeDays,
    trigger: 'cli',
    onPage: ({ page, checked, enqueued }) =>
      println(io.stderr, `reconcile: page ${page + 1} — ${checked} checked, ${enqueued} ${options.dryRun ? 'to enqueue' : 'enqueued'}`),
    onKomfortkasse: ({ open, rechecked, done }) =>
      println(
        io.stderr,
        done
          ? `reconcile: Komfortkasse — ${rechecked} open order(s) re-checked in the shop`
          : `reconcile: Komfortkasse — ${open} open order(s); re-checking those the listing did not cover`,
      ),
  });
  if (options.json) printJson(io, summary);
  else println(io.stdout, renderSummary(summary));
  return EXIT.ok;
}

export function renderSummary(summary: ReconcileSummary): string {
  const ids = summary.enqueuedOrderIds;
  const shown = ids.length > 20 ? `${ids.slice(0, 20).join(', ')}, … (${ids.length - 20} more)` : ids.join(', ');
  const kk = summary.komfortkasse;
  const rows: [string, number | string, string?][] = [
    ['shop orders listed', summary.shopListed, `created since ${summary.since}`],
    kk.enabled
      ? ['Komfortkasse open', kk.open, `UNPAID or PAID_PARTIAL, up to ${kk.maxAgeDays} days old`]
      : ['Komfortkasse open', 'off', 'KOMFORTKASSE_ENABLED=false: not read'],
  ];
  if (kk.enabled) {
    rows.push(['  re-checked in shop', kk.rechecked, 'not in the listing: older than the window, or gone']);
    if (kk.goneFromShop) rows.push(['  gone from the shop', kk.goneFromShop, 'enqueued: the worker confirms and removes']);
    if (kk.unknown) rows.push(['  unknown', kk.unknown, 'neither in the shop nor in the history: left as they are']);
  }
  rows.push(
    ['checked', summary.checked],
    ['in sync', summary.inSync],
    [summary.dryRun ? 'would enqueue' : 'enqueued', summary.enqueued, ids.length ? `order ids ${shown}` : undefined],
    ['skipped (payment type)', summary.skippedByPaymentType],
    ['needs-attention', summary.needsAttention, summary.needsAttention ? 'see: orderbridge needs-attention' : undefined],
  );
  if (summary.invalid) rows.push(['invalid (not checked)', summary.invalid, 'the shop returned orders that fail the schema']);
  const head = `Reconciled orders created since ${summary.since} and Komfortkasse's open orders${summary.dryRun ? ' — dry run, nothing enqueued' : ''}:`;
  return [head, ...rows.map(([label, value, note]) => `  ${label.padEnd(24)}${String(value).padStart(6)}${note ? `   ${note}` : ''}`)].join('\n');
}
