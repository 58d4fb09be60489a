/**
 * `npm run bench`: ingest latency against a bare baseline, the pipeline end to end, bundle
 * sizes and cold starts, and the Klar worker's memory — all against the local stack and
 * the simulators. Prints one table (stdout), progress on stderr, and writes
 * bench/results.json. Every process it starts is stopped before it exits.
 */
// Handlers configure logging and metrics when first imported: set the environment first.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'INFO'; // as deployed; the output is dropped, the work is not
delete process.env.POWERTOOLS_METRICS_DISABLED;

const { runBenchmark } = await import('./suite.ts');
try {
  await runBenchmark();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
