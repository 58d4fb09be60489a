/**
 * `npm run test:model`: random schedules against the real order path (see run-schedule.ts),
 * invariants checked after each. Options:
 *   --runs N            how many schedules (default 200)
 *   --seed S --path P   replay one failure (both are printed with it)
 *   --schedule JSON     run one schedule as printed (e.g. a regression case)
 *   --verbose           print every shrink step
 * Exits 1 on a failure; the last line is always `<N> schedules`.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { describeSchedule, scheduleArbitrary, type Schedule } from './schedule.ts';

// Before the AWS SDK loads (it warns on Node 20 at import).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { startModelEnvironment } = await import('./environment.ts');

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    seed: { type: 'string' },
    path: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    schedule: { type: 'string' },
  },
});

const runs = values.runs === undefined ? 200 : Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('--runs must be a positive whole number');
  process.exit(2);
}
if (values.path !== undefined && values.seed === undefined) {
  console.error('--path needs the --seed it was printed with');
  process.exit(2);
}
const seed = values.seed === undefined ? Date.now() ^ (Math.random() * 0x100000000) : Number(values.seed);

const environment = await startModelEnvironment();
let schedules = 0;
let nextOrderId = 1_000_000 + (Date.now() % 1_000_000) * 10;
let exitCode = 0;
const started = performance.now();
try {
  if (values.schedule !== undefined) {
    // One schedule as printed with a failure (or from test/model/regressions.ts), run as it is.
    schedules++;
    const result = await environment.runSchedule(JSON.parse(values.schedule) as Schedule, nextOrderId);
    console.log(`interleaving (${result.decisions} decisions):\n  ${result.trace.join('\n  ')}`);
    console.log(result.violations.length ? `invariants broken:\n  ${result.violations.join('\n  ')}` : 'all invariants held');
    if (result.violations.length) exitCode = 1;
  } else {
    await runProperty();
  }
} catch (error) {
  exitCode = 1;
  console.error(error);
} finally {
  await environment.stop();
}
console.log(`${schedules} schedules`);
// Abandoned invocations wait forever by design, and their clients' timers would keep the process alive.
process.exit(exitCode);

async function runProperty(): Promise<void> {
  const property = fc.asyncProperty(scheduleArbitrary, async (schedule: Schedule) => {
    schedules++;
    const firstOrderId = nextOrderId;
    nextOrderId += 10;
    const result = await environment.runSchedule(schedule, firstOrderId);
    if (result.violations.length > 0) {
      throw new Error(`invariants broken:\n  ${result.violations.join('\n  ')}\ninterleaving (${result.decisions} decisions):\n  ${result.trace.join('\n  ')}`);
    }
  });
  const details = await fc.check(property, {
    numRuns: values.path === undefined ? runs : 1,
    seed,
    ...(values.path === undefined ? {} : { path: values.path }),
    verbose: values.verbose ? 2 : 0,
    endOnFailure: false,
  });
  if (details.failed) {
    exitCode = 1;
    const schedule = details.counterexample?.[0] as Schedule | undefined;
    console.log(`FAILED — seed ${details.seed}, path ${details.counterexamplePath}`);
    console.log(`replay: npm run test:model -- --seed=${details.seed} --path ${details.counterexamplePath}`);
    console.log(`shrunk schedule (${details.numShrinks} shrinks): ${schedule ? describeSchedule(schedule) : '(none)'}`);
    console.log(details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance));
  } else {
    console.log(`all invariants held — seed ${seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}
