import { listKlarReadings, type KlarReading } from '../store/klar-readings.ts';
import { EXIT, printJson, println, renderTable, type CliIo } from './io.ts';
import { sidesFor } from './sides.ts';
import type { Target } from './target.ts';

/** The last readings poll-klar-state recorded of Klar's import state, newest first. */
export async function klarReadings(limit: number): Promise<KlarReading[]> {
  return listKlarReadings(limit);
}

export async function runKlarState(options: { limit: number; json?: boolean; target?: Target }, io: CliIo): Promise<number> {
  const [readings, sides] = await Promise.all([klarReadings(options.limit), options.target ? sidesFor(options.target) : undefined]);
  if (options.json) {
    printJson(io, readings);
    return EXIT.ok;
  }
  // Off: the poller does not run, so any reading is from before Klar was switched off.
  if (sides?.klar === false) println(io.stdout, 'Klar is off (KLAR_ENABLED=false): its import state is not polled; readings below, if any, are older.');
  const latest = readings[0];
  if (!latest) {
    println(io.stdout, 'No Klar state recorded yet (poll-klar-state reads it every 15 minutes).');
    return EXIT.ok;
  }
  println(
    io.stdout,
    latest.failing
      ? `Klar import FAILING: the last failure (${latest.lastFailure}) is newer than the last success (${latest.lastSuccess ?? 'never'}).`
      : `Klar import OK as of ${latest.at}.`,
  );
  println(
    io.stdout,
    renderTable(
      ['READ AT', 'STATUS', 'TOTAL', 'LAST BATCH', 'LAST SUCCESS', 'LAST FAILURE', 'ENDPOINT'],
      readings.map((r) => [r.at, r.failing ? 'failing' : 'ok', r.total, r.lastBatchCount, r.lastSuccess ?? '-', r.lastFailure ?? '-', r.endpoint]),
    ),
  );
  return EXIT.ok;
}
