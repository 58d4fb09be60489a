import { parseArgs } from 'node:util';
import { EXIT, println, type CliIo } from '../lib/ops/io.ts';
import { SINCE_FORMAT_HINT, parseSinceDate } from '../lib/ops/since.ts';
import { applyTarget, resolveTarget, TargetError, type Target } from '../lib/ops/target.ts';

/*
 * The `orderbridge` CLI. Only argument parsing and target resolution are loaded up front;
 * each command's module (and with it every lib module that caches configuration) is
 * imported after the target's environment has been applied.
 */

export type { CliIo } from '../lib/ops/io.ts';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; value?: string; help: string };
type Values = Record<string, string | boolean | undefined>;

interface RunContext {
  io: CliIo;
  target: Target;
  /** the environment the target was applied to */
  env: NodeJS.ProcessEnv;
  /** as given (--stage or STAGE), also for standalone commands */
  stage?: string;
  region?: string;
}

interface CommandSpec {
  usage: string;
  summary: string;
  description: string;
  options: Record<string, OptionSpec>;
  examples: string[];
  /** checks the arguments (a UsageError → exit 2) before any connection is made */
  prepare(positionals: string[], values: Values): (ctx: RunContext) => Promise<number>;
  /** says where it acts on stderr: the command changes something */
  mutates?: boolean;
  /** resolves no target (no local stack or deployed queues needed): it acts on --stage itself */
  standalone?: boolean;
}

/** The SSM parameters `secrets` writes, as serverless.yml names them (lib/ops/secrets.ts has their details). */
export const SECRET_PARAMETER_NAMES = ['webhook-secrets', 'komfortkasse-api-key', 'klar-api-token', 'versacommerce-api-key', 'versacommerce-api-password'];

/** What a standalone command gets as its target: nothing was resolved. */
const NO_TARGET: Target = { kind: 'env', description: 'no target resolved', env: {}, queues: {} };

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  stage: { type: 'string', value: '<name>', help: 'a deployed stage in AWS (default: $STAGE); `local` means the local stack' },
  region: { type: 'string', value: '<region>', help: 'AWS region for --stage (default: AWS_REGION / your AWS profile)' },
  'local-state': { type: 'string', value: '<file>', help: 'the state file of a running local stack (default: .orderbridge/local-stack.json)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
};

const json = { type: 'boolean', help: 'print JSON instead of a table' } as const satisfies OptionSpec;

function onePositional(command: string, name: string, positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError(`${command} needs ${name}`, command);
  if (positionals.length > 1) throw new UsageError(`${command} takes one ${name}, got: ${positionals.join(' ')}`, command);
  return positionals[0]!;
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`${command} takes no arguments, got: ${positionals.join(' ')}`, command);
}

function positiveInt(command: string, option: string, value: string | boolean | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`--${option} must be a whole number from 1 to ${max}, got "${String(value)}"`, command);
  }
  return Number(value);
}

export const COMMANDS: Record<string, CommandSpec> = {
  status: {
    usage: 'status [--json]',
    summary: 'one screen: queues and DLQs, needs-attention, Klar import, last reconcile, DRY_RUN',
    description:
      'Shows, for orders.fifo, its DLQ, klar-costs and its DLQ: messages visible, in flight, and the age\n' +
      'of the oldest message (in AWS from CloudWatch ApproximateAgeOfOldestMessage, the latest datapoint of\n' +
      "the last 15 minutes; locally from the SQS emulator's inspection, which receives nothing). Then the\n" +
      "orders in needs-attention per side, which sides are on (`Klar: off` with KLAR_ENABLED=false; in AWS\n" +
      "as the deployed sync-order function has it), the last reading of Klar's import state, the last\n" +
      'reconcile run and DRY_RUN (in AWS as the last Klar reading reports it). Ends with what needs a look: a DLQ that\n' +
      'is not empty, parked orders, a failing Klar import, no reconcile in the last 2 days. Read-only; the\n' +
      'exit code is 0 whatever it finds (1 only when nothing at all could be read).',
    options: { json: { ...json, help: 'print {"at","target","queues":[…],"needsAttention","klar","reconcile","sides","dryRun","needsALook":[…]}' } },
    examples: ['orderbridge status', 'orderbridge status --stage prod', 'orderbridge status --json | jq .needsALook'],
    prepare(positionals, values) {
      noPositionals('status', positionals);
      return async ({ io, target }) => (await import('../lib/ops/status.ts')).runStatus(target, { json: values.json === true }, io);
    },
  },
  history: {
    usage: 'history <orderCode> [--json]',
    summary: 'recorded Komfortkasse and Klar state and the attempt log of one order',
    description:
      'Shows what Orderbridge recorded for one order: its Komfortkasse state (pending, submitted, removed,\n' +
      'skipped, needs-attention), its Klar state (pending, uploaded, needs-attention) with the transaction\n' +
      'costs, and every upstream call with outcome, HTTP status and latency. A side switched off\n' +
      '(KOMFORTKASSE_ENABLED or KLAR_ENABLED false) shows the state `off`. Under DRY_RUN=true the\n' +
      'attempts show the exact request each worker would have sent. <orderCode> may also be the\n' +
      "shop's numeric order id. Exit code 1 when Orderbridge has no history for the order.",
    options: { json: { ...json, help: 'print {"orderId","orderCode","komfortkasse":{…},"klar":{…},"attempts":[…]}' } },
    examples: ['orderbridge history 196-083-565', 'orderbridge history 196-083-565 --json | jq .attempts', 'orderbridge history 196-083-565 --stage prod'],
    prepare(positionals, values) {
      const reference = onePositional('history', '<orderCode>', positionals);
      return async ({ io, target }) => (await import('../lib/ops/history-view.ts')).runHistory(reference, { json: values.json === true, target }, io);
    },
  },
  replay: {
    usage: 'replay <orderCode> | --needs-attention [--target komfortkasse|klar] [--dry-run]',
    summary: 'enqueue an order again, or every parked order at once (safe: sync is level-triggered)',
    description:
      'Fetches the order from VersaCommerce and enqueues it on orders.fifo, as a webhook would (source\n' +
      '"replay"). If the shop cannot be reached from here, the message goes without a snapshot and the\n' +
      'order worker fetches the order itself. Workers only call upstream where the recorded state differs,\n' +
      'so a replay is always safe; it also retries an order in needs-attention. For an order Orderbridge\n' +
      "never saw, pass the shop's numeric order id.\n" +
      '\n' +
      'With --needs-attention instead of an order, re-queues every order `orderbridge needs-attention`\n' +
      'lists (only those parked on one side with --target), the same way, five at a time: for after the\n' +
      'cause is fixed upstream. An order parked on both sides is enqueued once; the worker retries both.\n' +
      'Progress goes to stderr, a summary per target to stdout. Exit code 1 if any order could not be\n' +
      're-queued (e.g. it no longer exists in the shop); those stay parked.',
    options: {
      'needs-attention': { type: 'boolean', help: 'every order in needs-attention instead of one order' },
      target: { type: 'string', value: '<komfortkasse|klar>', help: 'with --needs-attention: only orders parked on this side' },
      'dry-run': { type: 'boolean', help: 'with --needs-attention: list what would be re-queued; enqueue nothing' },
    },
    examples: [
      'orderbridge replay 196-083-565',
      'orderbridge replay 37578 --stage prod',
      'orderbridge replay --needs-attention --dry-run',
      'orderbridge replay --needs-attention --target klar --stage prod',
    ],
    mutates: true,
    prepare(positionals, values) {
      const all = values['needs-attention'] === true;
      if (!all) {
        if (values.target !== undefined) throw new UsageError('--target only goes with --needs-attention', 'replay');
        if (values['dry-run'] === true) throw new UsageError('--dry-run only goes with --needs-attention', 'replay');
        if (positionals.length === 0) throw new UsageError('replay needs <orderCode> or --needs-attention', 'replay');
        const reference = onePositional('replay', '<orderCode>', positionals);
        return async ({ io }) => (await import('../lib/ops/replay.ts')).runReplay(reference, io);
      }
      if (positionals.length) throw new UsageError(`replay takes either <orderCode> or --needs-attention, not both (got: ${positionals.join(' ')})`, 'replay');
      const target = values.target;
      if (target !== undefined && target !== 'komfortkasse' && target !== 'klar') {
        throw new UsageError(`unknown --target "${String(target)}": use komfortkasse or klar`, 'replay');
      }
      return async ({ io }) => (await import('../lib/ops/replay.ts')).runReplayParked({ target, dryRun: values['dry-run'] === true }, io);
    },
  },
  redrive: {
    usage: 'redrive <orders|klar-costs> [--max N] [--dry-run]',
    summary: 'move dead-lettered messages back to their queue',
    description:
      'Moves messages from a dead-letter queue back to its source queue: orders-dlq.fifo → orders.fifo\n' +
      '(keeping the message group, with a fresh deduplication id) or klar-costs-dlq → klar-costs. Each\n' +
      'message is sent to the source queue before it is deleted from the DLQ, so an interruption\n' +
      '(Ctrl-C stops after the current batch) may duplicate a message — harmless — but never loses one.\n' +
      'A message of an order forgotten since it was parked (orderbridge forget) goes back without its\n' +
      'order snapshot: the worker fetches the order from the shop. Progress goes to stderr.',
    options: {
      max: { type: 'string', value: 'N', help: 'move at most N messages' },
      'dry-run': { type: 'boolean', help: 'list the messages that would move; move nothing' },
    },
    examples: ['orderbridge redrive orders --dry-run', 'orderbridge redrive orders', 'orderbridge redrive klar-costs --max 100 --stage prod'],
    mutates: true,
    prepare(positionals, values) {
      const queue = onePositional('redrive', '<orders|klar-costs>', positionals);
      if (queue !== 'orders' && queue !== 'klar-costs') throw new UsageError(`unknown queue "${queue}": use orders or klar-costs`, 'redrive');
      const max = positiveInt('redrive', 'max', values.max, 1_000_000);
      return async ({ io, target }) =>
        (await import('../lib/ops/redrive.ts')).runRedrive(queue, { max, dryRun: values['dry-run'] === true, queues: target.queues }, io);
    },
  },
  reconcile: {
    usage: 'reconcile --since <date> [--open-max-age <days>] [--dry-run] [--json]',
    summary: "re-enqueue every shop order whose upstream state is missing or out of date",
    description:
      'Pages through the VersaCommerce order API (250 per page, created_at_min = --since), compares each\n' +
      'order with the history table and enqueues every order whose Komfortkasse or Klar state is missing\n' +
      'or out of date — e.g. one whose webhook never arrived. Then it reads the orders Komfortkasse still\n' +
      'dunns (UNPAID, PAID_PARTIAL, up to --open-max-age days old) and looks up, by its code, each one the\n' +
      'listing did not cover (older than --since, or gone from the shop), so a lost cancel, delete or\n' +
      'payment of an old order is repaired too. Prints a summary: shop orders listed, Komfortkasse open\n' +
      'and re-checked, checked, in sync, enqueued, skipped by payment type, needs-attention. The reconcile\n' +
      'Lambda does the same daily over the last 14 days. <date> is YYYY-MM-DD (midnight UTC) or ISO 8601\n' +
      'with a zone.',
    options: {
      since: { type: 'string', value: '<date>', help: 'orders created at or after this date (required)' },
      'open-max-age': { type: 'string', value: '<days>', help: "how far back Komfortkasse's open orders are read (default 120)" },
      'dry-run': { type: 'boolean', help: 'report what would be enqueued; enqueue nothing' },
      json: { ...json, help: 'print the summary as JSON' },
    },
    examples: ['orderbridge reconcile --since 2025-01-01 --dry-run', 'orderbridge reconcile --since 2025-01-31T08:00:00+01:00 --stage prod'],
    mutates: true,
    prepare(positionals, values) {
      noPositionals('reconcile', positionals);
      if (typeof values.since !== 'string') throw new UsageError('reconcile needs --since <date>', 'reconcile');
      const since = parseSinceDate(values.since);
      if (!since) throw new UsageError(`invalid --since date "${values.since}": ${SINCE_FORMAT_HINT}`, 'reconcile');
      const maxAge = values['open-max-age'];
      const openMaxAgeDays = typeof maxAge === 'string' ? Number(maxAge) : undefined;
      if (openMaxAgeDays !== undefined && !(Number.isInteger(openMaxAgeDays) && openMaxAgeDays >= 1 && openMaxAgeDays <= 3650)) {
        throw new UsageError(`invalid --open-max-age "${maxAge}": a whole number of days from 1 to 3650`, 'reconcile');
      }
      return async ({ io }) =>
        (await import('../lib/ops/reconcile.ts')).runReconcile({ since, dryRun: values['dry-run'] === true, json: values.json === true, openMaxAgeDays }, io);
    },
  },
  'klar-state': {
    usage: 'klar-state [--limit N] [--json]',
    summary: "the last recorded readings of Klar's import state",
    description:
      "Shows the readings poll-klar-state recorded of Klar's transaction-costs import state (every 15\n" +
      'minutes), newest first: total, last batch count, last success and failure, and whether the import\n' +
      'is failing (a failure newer than the last success — the KlarImportFailure alarm).',
    options: { limit: { type: 'string', value: 'N', help: 'how many readings (default 10)' }, json },
    examples: ['orderbridge klar-state', 'orderbridge klar-state --limit 1 --json'],
    prepare(positionals, values) {
      noPositionals('klar-state', positionals);
      const limit = positiveInt('klar-state', 'limit', values.limit, 1000) ?? 10;
      return async ({ io, target }) => (await import('../lib/ops/klar-state.ts')).runKlarState({ limit, json: values.json === true, target }, io);
    },
  },
  'needs-attention': {
    usage: 'needs-attention [--json]',
    summary: 'every order in needs-attention, with the upstream message',
    description:
      'Lists every order whose Komfortkasse or Klar side is in needs-attention — a permanent error such\n' +
      'as Komfortkasse 400 or Klar INVALID — with the message the upstream gave. A 401/403 is never one:\n' +
      'that is our credentials, retried and then dead-lettered (see orderbridge status). Fix the cause,\n' +
      'then replay the order, or all of them: orderbridge replay --needs-attention.',
    options: { json },
    examples: ['orderbridge needs-attention', 'orderbridge needs-attention --json --stage prod'],
    prepare(positionals, values) {
      noPositionals('needs-attention', positionals);
      return async ({ io }) => (await import('../lib/ops/needs-attention.ts')).runNeedsAttention({ json: values.json === true }, io);
    },
  },
  check: {
    usage: 'check [--probe-timeout S]',
    summary: 'verify a stage end to end (stack, credentials, webhook probe, alarms) without touching an order',
    description:
      'Verifies a stage end to end and prints one line per check (✓ passed, ✗ failed with what to fix,\n' +
      '· a note). Nothing is created, changed or removed upstream:\n' +
      '  Stage        the stack (API URL), table and queues exist; which sides are on, and DRY_RUN\n' +
      '  Credentials  one read-only request per enabled upstream with the deployed credentials:\n' +
      '               VersaCommerce GET /api/orders/count.json, Komfortkasse GET /order/{a number that\n' +
      '               cannot exist} (404 = key accepted), Klar GET /transaction-costs/state\n' +
      '  Webhook      an unauthenticated POST gets 401; a signed probe ({"probe":{"id"}}) gets 202 and the\n' +
      '               order worker records it within --probe-timeout (never sent upstream)\n' +
      '  Alarms       (AWS) the alarm e-mail subscription is confirmed and no alarm is in ALARM; the DLQs\n' +
      '               are empty; a reconcile completed in the last 2 days ("none yet" on a younger stage\n' +
      '               is a note); the needs-attention count (a note, never a failure)\n' +
      'Then prints the webhook URL to paste into VersaCommerce. Never prints a secret. Exit code 0 only\n' +
      'when every check passed, else 1. On AWS it uses the deployed settings (the sync-order function\n' +
      "configuration) and the stage's SSM parameters; README lists the IAM permissions it needs.",
    options: {
      'probe-timeout': { type: 'string', value: 'S', help: 'seconds the order worker may take to record the probe (default 30)' },
    },
    examples: ['orderbridge check', 'orderbridge check --stage prod', 'orderbridge check --stage prod --probe-timeout 60'],
    prepare(positionals, values) {
      noPositionals('check', positionals);
      const seconds = positiveInt('check', 'probe-timeout', values['probe-timeout'], 600) ?? 30;
      return async ({ io, target, env }) => (await import('../lib/ops/check.ts')).runCheck(target, { probeTimeoutMs: seconds * 1000, env }, io);
    },
  },
  secrets: {
    usage: 'secrets set [--only <name>] | secrets rotate-webhook [--finish]',
    summary: "write a stage's secrets to SSM (values from a prompt or stdin, never argv); rotate the webhook secret",
    description:
      "`secrets set --stage S` writes the SecureString parameters serverless.yml reads, /orderbridge/<S>/<name>:\n" +
      '  webhook-secrets, komfortkasse-api-key, klar-api-token, versacommerce-api-key, versacommerce-api-password\n' +
      "(a side switched off in this shell, KOMFORTKASSE_ENABLED or KLAR_ENABLED=false, is not asked for).\n" +
      'Values come from a prompt that shows nothing (on a terminal) or from stdin, one line per parameter in\n' +
      'that order (with --only: all of stdin); never from the command line. An empty value leaves the\n' +
      'parameter as it is. Nothing prints or logs a value.\n' +
      '\n' +
      '`secrets rotate-webhook --stage S` adds a new random webhook secret beside the current one (both are\n' +
      'accepted) and prints the new one once, for the shop. `--finish` then drops the old one.\n' +
      'The functions pick a change up within 5 minutes; no deploy is needed.\n' +
      '\n' +
      'Without --stage it writes nothing: `npm start` takes the values from the environment.',
    options: {
      only: { type: 'string', value: '<name>', help: `set: only this parameter (${SECRET_PARAMETER_NAMES.join(', ')})` },
      finish: { type: 'boolean', help: 'rotate-webhook: drop the old webhook secret' },
    },
    examples: [
      'orderbridge secrets set --stage prod',
      'orderbridge secrets set --stage prod --only komfortkasse-api-key < key.txt',
      'orderbridge secrets rotate-webhook --stage prod',
      'orderbridge secrets rotate-webhook --stage prod --finish',
    ],
    standalone: true,
    prepare(positionals, values) {
      const action = onePositional('secrets', '<set|rotate-webhook>', positionals);
      if (action !== 'set' && action !== 'rotate-webhook') throw new UsageError(`unknown secrets action "${action}": use set or rotate-webhook`, 'secrets');
      const only = values.only;
      if (only !== undefined) {
        if (action !== 'set') throw new UsageError('--only goes with secrets set', 'secrets');
        if (typeof only !== 'string' || !SECRET_PARAMETER_NAMES.includes(only)) {
          throw new UsageError(`unknown --only "${String(only)}": use one of ${SECRET_PARAMETER_NAMES.join(', ')}`, 'secrets');
        }
      }
      if (values.finish === true && action !== 'rotate-webhook') throw new UsageError('--finish goes with secrets rotate-webhook', 'secrets');
      return async ({ io, env, stage, region }) =>
        (await import('../lib/ops/secrets.ts')).runSecrets(action, { stage, region, only: only as string | undefined, finish: values.finish === true, env }, io);
    },
  },
  forget: {
    usage: 'forget <orderCode>',
    summary: "delete an order's personal data from the history (GDPR)",
    description:
      'Removes what can identify a person from the order\'s history — the would-be requests recorded in\n' +
      'dry-run mode (names, addresses, emails) and the upstream messages — and keeps the anonymous part:\n' +
      'states, outcomes, HTTP statuses, latencies, costs and timestamps. Everything in the history expires\n' +
      'anyway after HISTORY_RETENTION_DAYS (default 400) by DynamoDB TTL; forget does it now.',
    options: {},
    examples: ['orderbridge forget 196-083-565 --stage prod'],
    mutates: true,
    prepare(positionals) {
      const reference = onePositional('forget', '<orderCode>', positionals);
      return async ({ io }) => (await import('../lib/ops/forget.ts')).runForget(reference, io);
    },
  },
};

const CONNECTS = `Where it connects (first match wins):
  --stage <name>              AWS: table orderbridge-<name>-history, queues orderbridge-<name>-orders.fifo,
                              -orders-dlq.fifo, -klar-costs, -klar-costs-dlq; usual AWS credentials and region
  --local-state <file>        the local stack described by that file
  STAGE=<name>                as --stage (STAGE=local is the local stack)
  .orderbridge/local-stack.json
                              written by \`npm start\` in this checkout while it runs: no flags needed
  the environment             HISTORY_TABLE_NAME and ORDERS_QUEUE_URL (and KLAR_COSTS_QUEUE_URL) already set
replay and reconcile also read the shop: locally its simulator, in AWS VERSACOMMERCE_BASE_URL with the
API key and password from VERSACOMMERCE_API_KEY/_PASSWORD or SSM /orderbridge/<stage>/…. status in AWS
also reads CloudWatch (cloudwatch:GetMetricData); check also reads CloudFormation, Lambda, SSM, SNS and
CloudWatch alarms (README: "orderbridge check"). secrets acts on --stage only and needs no running stack.`;

function optionLines(options: Record<string, OptionSpec>): string[] {
  return Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    // Two spaces at least, so a long flag never runs into its help.
    return `  ${flag.padEnd(22)}  ${spec.help}`;
  });
}

export function mainHelp(): string {
  return [
    'orderbridge — operate Orderbridge: status, order history, replays, dead-letter queues, reconciliation.',
    '',
    'Usage: orderbridge <command> [arguments] [options]',
    '       npm run orderbridge -- <command> [arguments] [options]',
    '',
    'Commands:',
    ...Object.values(COMMANDS).flatMap((c) => [`  ${c.usage}`, `      ${c.summary}`]),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    CONNECTS,
    '',
    'Examples:',
    '  npm run orderbridge -- history 196-083-565',
    '  npm run orderbridge -- status --stage prod',
    '  npm run orderbridge -- check --stage prod',
    '  npm run orderbridge -- replay --needs-attention --dry-run',
    '  npm run orderbridge -- redrive orders --dry-run',
    '  npm run orderbridge -- reconcile --since 2025-01-01 --stage prod',
    '',
    'Exit codes: 0 done · 1 failed or not found · 2 usage error or nothing to connect to.',
    'Details of one command: orderbridge <command> --help',
  ].join('\n');
}

export function commandHelp(name: string): string {
  const spec = COMMANDS[name]!;
  const where = spec.standalone
    ? ['Acts on the stage given by --stage (or STAGE) in AWS, with the usual AWS credentials and region;', 'it needs no running stack or deployed queues.']
    : ['Connects to the stage given by --stage (or STAGE), else the local stack `npm start` runs in this', 'checkout; see `orderbridge --help`.'];
  return [
    `Usage: orderbridge ${spec.usage} ${spec.standalone ? '[--stage <name>]' : '[--stage <name> | --local-state <file>]'}`,
    '',
    spec.description,
    '',
    'Options:',
    ...optionLines(spec.options),
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    ...where,
  ].join('\n');
}

export type ParsedCommandLine =
  | { kind: 'help'; command?: string }
  | { kind: 'run'; command: string; positionals: string[]; values: Values; stage?: string; region?: string; localState?: string };

/** Splits argv into command, arguments and options; throws UsageError (exit 2) on anything odd. */
export function parseCommandLine(argv: string[]): ParsedCommandLine {
  // First pass, lenient, only to find the command among global options and their values.
  const allOptions = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options)) as Record<string, OptionSpec>;
  const loose = parseArgs({ args: argv, options: toParseArgs(allOptions), allowPositionals: true, strict: false });
  let [command, ...rest] = loose.positionals;
  if (command === 'help') {
    const topic = rest[0];
    if (topic !== undefined && !COMMANDS[topic]) throw new UsageError(`unknown command "${topic}"`);
    return { kind: 'help', command: topic };
  }
  if (command === undefined) {
    if (argv.length === 0 || loose.values.help) return { kind: 'help' };
    throw new UsageError('no command given');
  }
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: toParseArgs({ ...GLOBAL_OPTIONS, ...spec.options }), allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.replace(/\. To specify a positional.*$/s, '') : String(error), command);
  }
  if (parsed.values.help) return { kind: 'help', command };
  [, ...rest] = parsed.positionals;
  const values = parsed.values as Values;
  return {
    kind: 'run',
    command,
    positionals: rest,
    values,
    stage: typeof values.stage === 'string' ? values.stage : undefined,
    region: typeof values.region === 'string' ? values.region : undefined,
    localState: typeof values['local-state'] === 'string' ? values['local-state'] : undefined,
  };
}

function toParseArgs(options: Record<string, OptionSpec>) {
  return Object.fromEntries(
    Object.entries(options).map(([name, spec]) => [name, spec.short ? { type: spec.type, short: spec.short } : { type: spec.type }]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
}

export interface CliContext {
  /** the environment targets are resolved from and applied to (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** where `npm start` writes its state (tests point it elsewhere) */
  defaultStateFile?: string;
}

/**
 * Runs one command line and returns the exit code: 0 done, 1 failed or not found,
 * 2 usage error or nothing to connect to. Never calls process.exit, so tests run it in-process.
 */
export async function runCli(argv: string[], io: CliIo, context: CliContext = {}): Promise<number> {
  let parsed: ParsedCommandLine;
  let run: (ctx: RunContext) => Promise<number>;
  try {
    parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      println(io.stdout, parsed.command ? commandHelp(parsed.command) : mainHelp());
      return EXIT.ok;
    }
    run = COMMANDS[parsed.command]!.prepare(parsed.positionals, parsed.values);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    println(io.stderr, `orderbridge: ${error.message}`);
    println(io.stderr, error.command ? `Usage: orderbridge ${COMMANDS[error.command]!.usage}   (more: orderbridge ${error.command} --help)` : 'See: orderbridge --help');
    return EXIT.usage;
  }

  const env = context.env ?? process.env;
  const spec = COMMANDS[parsed.command]!;
  const stage = parsed.stage ?? (env.STAGE?.trim() || undefined);
  if (spec.standalone) {
    try {
      return await run({ io, target: NO_TARGET, env, stage, region: parsed.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION });
    } catch (error) {
      println(io.stderr, `orderbridge ${parsed.command}: ${describeFailure(error)}`);
      return EXIT.failed;
    }
  }
  let target: Target;
  try {
    target = await resolveTarget({ stage: parsed.stage, region: parsed.region, localState: parsed.localState, env, defaultStateFile: context.defaultStateFile });
    await applyTarget(target, env);
  } catch (error) {
    if (!(error instanceof TargetError) && !(error instanceof Error && error.name === 'ConfigError')) throw error;
    println(io.stderr, `orderbridge: ${error.message}`);
    return EXIT.usage;
  }
  if (COMMANDS[parsed.command]!.mutates) println(io.stderr, `orderbridge ${parsed.command}: using ${target.description}`);

  try {
    return await run({ io, target, env, stage, region: parsed.region });
  } catch (error) {
    println(io.stderr, `orderbridge ${parsed.command}: ${describeFailure(error)}`);
    return EXIT.failed;
  }
}

/** One line an operator can act on; AWS errors name their code. */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const name = error.name && error.name !== 'Error' ? `${error.name}: ` : '';
  const hint =
    error.name === 'ResourceNotFoundException' || error.name === 'QueueDoesNotExist' || error.name === 'AWS.SimpleQueueService.NonExistentQueue'
      ? ' (is the stage deployed / the local stack running?)'
      : error.name === 'CredentialsProviderError' || error.name === 'ExpiredTokenException' || error.name === 'UnrecognizedClientException'
        ? ' (check your AWS credentials: AWS_PROFILE, aws sso login)'
        : '';
  return `${name}${error.message}${hint}`;
}
