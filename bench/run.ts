/**
 * `npm run bench`: ingest latency against a bare baseline, the pipeline end to end, bundle
 * sizes and cold starts, the Klar worker's memory, and backpressure (300 orders against a
 * Komfortkasse limited to 10 requests/s; alone: `npm run bench -- --only backpressure`) — all against the local stack and
 * the simulators. Prints one table (stdout), progress on stderr, and writes
 * bench/results.json. Every process it starts is stopped before it exits.
 */
// Handlers configure logging and metrics when first imported: set the environment first.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'INFO'; // as deployed; the output is dropped, the work is not
delete process.env.POWERTOOLS_METRICS_DISABLED;

const { runBenchmark } = await import('./suite.ts');
// `npm run bench -- --only backpressure` runs that section alone (the others build on each other).
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
if (only !== undefined && only !== 'backpressure') {
  process.stderr.write(`bench: --only knows one section, backpressure (not "${only}")\n`);
  process.exit(2);
}
try {
  await runBenchmark({ only });
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
