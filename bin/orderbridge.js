#!/usr/bin/env node
// The `orderbridge` CLI entry point: registers tsx so the TypeScript sources load as they
// are, then runs bin/cli.ts. All logic lives there (runCli), so tests can run it in-process.
import { register } from 'tsx/esm/api';

register();
// The AWS SDK warns about Node 20 on every client; the CLI prints only what it means to.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { runCli } = await import('./cli.ts');

// Ctrl-C: long commands (redrive, reconcile) stop at the next safe point; a second one exits.
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write('\norderbridge: stopping after the current step (Ctrl-C again to quit at once)\n');
  controller.abort();
});

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, signal: controller.signal });
// SDK clients keep sockets open; stdout/stderr writes to pipes and files are synchronous on POSIX.
process.exit(code);
