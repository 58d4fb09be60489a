import { randomUUID } from 'node:crypto';
import { CloudFormationClient, DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, DescribeAlarmsCommand, type MetricAlarm } from '@aws-sdk/client-cloudwatch';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ListSubscriptionsByTopicCommand, SNSClient, type Subscription } from '@aws-sdk/client-sns';
import { fetchKlarState } from '../clients/klar.ts';
import { getKomfortkasseOrder } from '../clients/komfortkasse.ts';
import { resetClients } from '../clients/registry.ts';
import { countOrders } from '../clients/versacommerce.ts';
import { config, flagOn, forgetSecrets, reloadConfig, secret, webhookSecretsFrom } from '../config/index.ts';
import { ConfigError, UpstreamAuthError, describeError } from '../domain/errors.ts';
import { queueCounts } from '../queue/sqs.ts';
import { getProbe } from '../store/probes.ts';
import { listReconcileRuns } from '../store/reconcile-runs.ts';
import { signatureHeader } from '../webhook/auth.ts';
import { WEBHOOK_PATH } from '../webhook/accept.ts';
import { EXIT, println, type CliIo } from './io.ts';
import { needsAttention } from './needs-attention.ts';
import { queueName, resolveRedrivePair } from './redrive.ts';
import { RECONCILE_STALE_AFTER_MS, formatAge } from './status.ts';
import { SERVICE, sideOn, stageResourceNames, type Target } from './target.ts';

/**
 * `orderbridge check`: proves a stage works end to end without creating, changing or
 * removing any order upstream. One line per check; a failure says what to fix; exit 0 only
 * when every check passed. Read-only everywhere except one thing it writes on purpose: a
 * probe webhook, which ingest enqueues and the order worker records as PROBE#<id> (never
 * sent upstream). It never prints a secret.
 */

export const DEFAULT_PROBE_TIMEOUT_MS = 30_000;
/** How often the history table is asked for the probe's record. */
const PROBE_POLL_MS = 250;
/** One webhook request; API Gateway itself gives up after 30 s. */
const WEBHOOK_TIMEOUT_MS = 15_000;

export interface CheckOptions {
  /** how long the order worker may take to record the probe (default 30 s) */
  probeTimeoutMs?: number;
  /** the environment the target was applied to (default process.env) */
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

export type CheckSection = 'Stage' | 'Credentials' | 'Webhook' | 'Alarms';

/** One line of the report: passed, failed (with what to fix) or a note that never fails. */
export interface CheckLine {
  section: CheckSection;
  status: 'pass' | 'fail' | 'note';
  text: string;
  fix?: string;
}

const MARK = { pass: '✓', fail: '✗', note: '·' } as const;

export function renderCheckLine(line: CheckLine): string {
  const fix = line.fix ? `\n      → ${line.fix}` : '';
  return `  ${MARK[line.status]} ${line.text}${fix}`;
}

/** The Lambda settings check adopts from the deployed order worker (the provider environment). */
const DEPLOYED_SETTINGS = [
  'DRY_RUN',
  'KLAR_ENABLED',
  'KOMFORTKASSE_ENABLED',
  'KOMFORTKASSE_BASE_URL',
  'KLAR_BASE_URL',
  'KLAR_API_VERSION',
  'VERSACOMMERCE_BASE_URL',
  'WEBHOOK_SECRETS_PARAMETER',
  'KOMFORTKASSE_API_KEY_PARAMETER',
  'KLAR_API_TOKEN_PARAMETER',
  'VERSACOMMERCE_API_KEY_PARAMETER',
  'VERSACOMMERCE_API_PASSWORD_PARAMETER',
] as const;
/** Plain secret variables of this shell: dropped on a stage, so the deployed SSM values are what is checked. */
const DIRECT_SECRETS = ['WEBHOOK_SECRETS', 'KOMFORTKASSE_API_KEY', 'KLAR_API_TOKEN', 'VERSACOMMERCE_API_KEY', 'VERSACOMMERCE_API_PASSWORD'] as const;

/** What the stage runs with, as far as check needs it. */
interface StageFacts {
  stage: string;
  apiUrl?: string;
  alarmTopicArn?: string;
  /** when the stack (or the local stack) was created; undefined = unknown */
  createdAt?: Date;
  settings: Record<string, string | undefined>;
}

export async function runCheck(target: Target, options: CheckOptions, io: CliIo): Promise<number> {
  if (target.kind === 'env') {
    println(io.stderr, 'orderbridge check: needs the local stack (`npm start` in this checkout) or a deployed stage (--stage <name>)');
    return EXIT.usage;
  }
  const env = options.env ?? process.env;
  const now = options.now ?? (() => new Date());
  const lines: CheckLine[] = [];
  let section: CheckSection | undefined;
  const report = (line: CheckLine) => {
    if (line.section !== section) {
      println(io.stdout, `${section ? '\n' : ''}${line.section}`);
      section = line.section;
    }
    lines.push(line);
    println(io.stdout, renderCheckLine(line));
  };

  println(io.stdout, `orderbridge check — ${target.description}\n`);
  const facts = await checkStage(target, env, report);
  const stage = facts.stage;
  await checkCredentials(stage, target, facts.settings, report);
  await checkWebhook(stage, facts.apiUrl, options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, report);
  await checkAlarms(target, facts, now(), report);

  println(io.stdout, '\nNext step');
  if (facts.apiUrl) {
    const url = `${facts.apiUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}`;
    println(io.stdout, "  Paste this URL into VersaCommerce's webhook settings (orders: create, update, delete):");
    println(io.stdout, `    ${url}?token=<your webhook secret>`);
    println(io.stdout, `  A sender that can sign posts to ${url} with X-Orderbridge-Signature instead.`);
  } else {
    println(io.stdout, '  (no webhook URL: the stage has no API yet)');
  }

  const failed = lines.filter((line) => line.status === 'fail');
  const checks = lines.filter((line) => line.status !== 'note').length;
  println(io.stdout, '');
  if (failed.length === 0) {
    println(io.stdout, `✓ All ${checks} checks passed.`);
    return EXIT.ok;
  }
  println(io.stdout, `✗ ${failed.length} of ${checks} checks failed: ${failed.map((line) => line.text.split(':')[0]).join('; ')}`);
  return EXIT.failed;
}

// ---------------------------------------------------------------------------------------
// The stage: stack, table, queues, settings

async function checkStage(target: Target, env: NodeJS.ProcessEnv, report: (line: CheckLine) => void): Promise<StageFacts> {
  const stage = target.env.STAGE ?? env.STAGE ?? 'local';
  const facts: StageFacts = { stage, settings: {} };
  const fixDeploy = target.kind === 'stage' ? `deploy it: npx osls deploy --stage ${stage}` : 'start it again: npm start';

  if (target.kind === 'stage') {
    const stack = await settle(() => describeStack(stage));
    if (!stack.ok || !stack.value) {
      report({ section: 'Stage', status: 'fail', text: `stack ${SERVICE}-${stage}: ${stack.ok ? 'not found' : stack.error}`, fix: fixDeploy });
    } else {
      const outputs = Object.fromEntries((stack.value.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
      facts.apiUrl = outputs.HttpApiUrl;
      facts.alarmTopicArn = outputs.AlarmTopicArn;
      facts.createdAt = stack.value.CreationTime;
      const status = stack.value.StackStatus ?? 'unknown';
      const usable = /_COMPLETE$/.test(status) && !/^(ROLLBACK|DELETE)_/.test(status);
      report({
        section: 'Stage',
        status: usable && facts.apiUrl ? 'pass' : 'fail',
        text: `stack ${stack.value.StackName}: ${status}, API ${facts.apiUrl ?? '(no HttpApiUrl output)'}`,
        ...(usable && facts.apiUrl ? {} : { fix: status.endsWith('_IN_PROGRESS') ? 'a deployment is running: wait for it, then check again' : fixDeploy }),
      });
    }
  } else {
    facts.apiUrl = target.apiUrl;
    facts.createdAt = target.startedAt;
    const health = facts.apiUrl ? await settle(() => fetch(`${facts.apiUrl}/health`, { signal: AbortSignal.timeout(5_000) })) : undefined;
    const up = health?.ok && health.value.ok;
    report({
      section: 'Stage',
      status: up ? 'pass' : 'fail',
      text: `local stack: API ${facts.apiUrl ?? '(unknown)'}${up ? '' : ` does not answer (${health && !health.ok ? health.error : `status ${health?.value.status}`})`}`,
      ...(up ? {} : { fix: fixDeploy }),
    });
  }

  const table = config().HISTORY_TABLE_NAME;
  const described = await settle(() => describeTable(table));
  report({
    section: 'Stage',
    status: described.ok && described.value === 'ACTIVE' ? 'pass' : 'fail',
    text: `table ${table}: ${described.ok ? described.value : described.error}`,
    ...(described.ok && described.value === 'ACTIVE' ? {} : { fix: described.ok ? 'wait until the table is ACTIVE' : fixDeploy }),
  });

  const queues = await resolveQueues(target);
  const unreadable: string[] = [];
  for (const queue of queues) {
    const counted = await settle(() => queueCounts(queue.url));
    if (!counted.ok) unreadable.push(`${queue.name} (${counted.error})`);
  }
  const queuesOk = unreadable.length === 0 && queues.length === 4;
  report({
    section: 'Stage',
    status: queuesOk ? 'pass' : 'fail',
    text: unreadable.length ? `queues: cannot read ${unreadable.join(', ')}` : `queues: ${queues.map((q) => q.name).join(', ')}${queues.length === 4 ? '' : ' (the DLQs are missing)'}`,
    ...(queuesOk ? {} : { fix: fixDeploy }),
  });

  if (target.kind === 'stage') {
    const deployed = await settle(() => deployedSettings(stage));
    if (!deployed.ok) {
      report({ section: 'Stage', status: 'fail', text: `settings: cannot read the configuration of ${SERVICE}-${stage}-sync-order (${deployed.error})`, fix: fixDeploy });
    } else {
      facts.settings = deployed.value;
      useDeployedSettings(env, deployed.value);
    }
  } else {
    facts.settings = Object.fromEntries(DEPLOYED_SETTINGS.map((name) => [name, target.env[name]]));
  }
  const s = facts.settings;
  const komfortkasse = sideOn(s.KOMFORTKASSE_ENABLED);
  const klar = sideOn(s.KLAR_ENABLED);
  const dryRun = flagOn(s.DRY_RUN);
  report({
    section: 'Stage',
    status: komfortkasse || klar ? 'pass' : 'fail',
    text: `settings: Komfortkasse ${komfortkasse ? 'on' : 'off'}, Klar ${klar ? 'on' : 'off'}, DRY_RUN ${dryRun ? 'true (workers record what they would send and send nothing)' : 'false'}`,
    ...(komfortkasse || klar ? {} : { fix: 'both sides are off: set KOMFORTKASSE_ENABLED or KLAR_ENABLED to true and deploy' }),
  });
  return facts;
}

async function describeStack(stage: string): Promise<Stack | undefined> {
  const client = new CloudFormationClient({});
  try {
    const { Stacks = [] } = await client.send(new DescribeStacksCommand({ StackName: `${SERVICE}-${stage}` }));
    return Stacks[0];
  } catch (error) {
    if ((error as { name?: string }).name === 'ValidationError' && /does not exist/.test(String((error as Error).message))) return undefined;
    throw error;
  } finally {
    client.destroy();
  }
}

async function describeTable(table: string): Promise<string> {
  const client = new DynamoDBClient({});
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    return Table?.TableStatus ?? 'unknown';
  } finally {
    client.destroy();
  }
}

interface NamedQueue {
  role: 'orders' | 'ordersDlq' | 'klarCosts' | 'klarCostsDlq';
  url: string;
  name: string;
}

async function resolveQueues(target: Target): Promise<NamedQueue[]> {
  const urls = { ...target.queues };
  for (const [queue, dlq] of [
    ['orders', 'ordersDlq'],
    ['klar-costs', 'klarCostsDlq'],
  ] as const) {
    if (urls[dlq]) continue;
    const pair = await settle(() => resolveRedrivePair(queue, target.queues));
    if (pair.ok) urls[dlq] = pair.value.dlq;
  }
  return (['orders', 'ordersDlq', 'klarCosts', 'klarCostsDlq'] as const).flatMap((role) => (urls[role] ? [{ role, url: urls[role]!, name: queueName(urls[role]!) }] : []));
}

/** The order worker's environment as deployed (the provider environment every function shares). */
async function deployedSettings(stage: string): Promise<Record<string, string | undefined>> {
  const client = new LambdaClient({});
  try {
    const { Environment } = await client.send(new GetFunctionConfigurationCommand({ FunctionName: `${SERVICE}-${stage}-sync-order` }));
    const variables = Environment?.Variables ?? {};
    return Object.fromEntries(DEPLOYED_SETTINGS.map((name) => [name, variables[name]]));
  } finally {
    client.destroy();
  }
}

/** From here on the clients use what the stage uses: its URLs and its SSM parameters. */
function useDeployedSettings(env: NodeJS.ProcessEnv, settings: Record<string, string | undefined>): void {
  for (const name of DIRECT_SECRETS) delete env[name];
  for (const name of DEPLOYED_SETTINGS) {
    const value = settings[name];
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  reloadConfig();
  forgetSecrets();
  resetClients();
}

// ---------------------------------------------------------------------------------------
// Credentials: one read-only request per enabled upstream, with the deployed credentials

/**
 * A number no shop gives an order (VersaCommerce codes look like 196-083-565): Komfortkasse
 * answers 404 to a key it accepts. Short and plain, so no length or character rule refuses it.
 */
export function impossibleOrderNumber(): string {
  return `orderbridge-check-${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

async function checkCredentials(stage: string, target: Target, settings: Record<string, string | undefined>, report: (line: CheckLine) => void): Promise<void> {
  const setSecret = (name: string) =>
    target.kind === 'stage'
      ? `orderbridge secrets set --stage ${stage} --only ${name}`
      : `set the matching variable (e.g. ${name.toUpperCase().replaceAll('-', '_')}) for npm start and start it again`;
  const line = (status: CheckLine['status'], text: string, fix?: string) => report({ section: 'Credentials', status, text, ...(fix ? { fix } : {}) });

  const shopUrl = config().VERSACOMMERCE_BASE_URL;
  if (!shopUrl) {
    line('fail', 'VersaCommerce: VERSACOMMERCE_BASE_URL is not set, so notifications and reconcile cannot fetch orders', 'set VERSACOMMERCE_BASE_URL (e.g. https://myshop.versacommerce.de) and deploy again');
  } else {
    try {
      const count = await countOrders();
      line('pass', `VersaCommerce: GET /api/orders/count.json answered (${count} orders) at ${shopUrl}`);
    } catch (error) {
      if (error instanceof UpstreamAuthError) {
        line('fail', `VersaCommerce: its API key and password were rejected (${error.status})`, `${setSecret('versacommerce-api-key')} and ${setSecret('versacommerce-api-password')}`);
      } else line('fail', `VersaCommerce: GET /api/orders/count.json failed: ${failure(error)}`, fixFor(error, 'check VERSACOMMERCE_BASE_URL and that the shop answers', setSecret));
    }
  }

  if (!sideOn(settings.KOMFORTKASSE_ENABLED)) line('note', 'Komfortkasse: switched off (KOMFORTKASSE_ENABLED=false), not checked');
  else {
    try {
      // Read-only: an order number that cannot exist. 404 means the key was accepted.
      const found = await getKomfortkasseOrder(impossibleOrderNumber());
      line('pass', `Komfortkasse: API key accepted (GET /order/{number} for a number that cannot exist answered ${found ? '200' : '404'})`);
    } catch (error) {
      if (error instanceof UpstreamAuthError) {
        line('fail', `Komfortkasse: its API key was rejected (${error.status})`, setSecret('komfortkasse-api-key'));
      } else line('fail', `Komfortkasse: GET /order/{number} failed: ${failure(error)}`, fixFor(error, 'check KOMFORTKASSE_BASE_URL (it includes /api/v2) and that Komfortkasse answers', setSecret));
    }
  }

  if (!sideOn(settings.KLAR_ENABLED)) line('note', 'Klar: switched off (KLAR_ENABLED=false), not checked');
  else {
    try {
      const { endpoint } = await fetchKlarState();
      line('pass', `Klar: API token accepted (GET ${endpoint} answered)`);
    } catch (error) {
      if (error instanceof UpstreamAuthError) {
        line('fail', `Klar: its API token was rejected (${error.status})`, setSecret('klar-api-token'));
      } else line('fail', `Klar: GET /transaction-costs/state failed: ${failure(error)}`, fixFor(error, 'check KLAR_BASE_URL (the host only) and that Klar answers', setSecret));
    }
  }
}

/** A failure in one line, without an upstream's body (which could quote what we sent). */
function failure(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  const status = (error as { status?: number }).status;
  return status !== undefined ? `answered ${status}` : describeError(error);
}

/** A missing or unreadable secret names its SSM parameter: the fix is to set it. */
function fixFor(error: unknown, otherwise: string, setSecret: (name: string) => string): string {
  if (error instanceof ConfigError) {
    const variable = error.variables[0]?.replace(/_PARAMETER$/, '');
    const parameter = variable ? PARAMETER_OF[variable] : undefined;
    if (parameter) return setSecret(parameter);
  }
  return otherwise;
}

const PARAMETER_OF: Record<string, string> = {
  WEBHOOK_SECRETS: 'webhook-secrets',
  KOMFORTKASSE_API_KEY: 'komfortkasse-api-key',
  KLAR_API_TOKEN: 'klar-api-token',
  VERSACOMMERCE_API_KEY: 'versacommerce-api-key',
  VERSACOMMERCE_API_PASSWORD: 'versacommerce-api-password',
};

// ---------------------------------------------------------------------------------------
// The webhook: 401 without credentials, 202 for a signed probe, recorded by the order worker

async function checkWebhook(stage: string, apiUrl: string | undefined, probeTimeoutMs: number, report: (line: CheckLine) => void): Promise<void> {
  const line = (status: CheckLine['status'], text: string, fix?: string) => report({ section: 'Webhook', status, text, ...(fix ? { fix } : {}) });
  if (!apiUrl) {
    line('fail', 'webhook: no API URL to post to', 'see the stack line above');
    return;
  }
  const url = `${apiUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}`;
  const probeId = randomUUID();
  const body = JSON.stringify({ probe: { id: probeId } });
  const post = (headers: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': `check-${probeId}`, ...headers }, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });

  const unsigned = await settle(() => post({}));
  if (!unsigned.ok) line('fail', `webhook: POST ${url} failed: ${unsigned.error}`, 'is the API reachable from here? (see the stack line above)');
  else if (unsigned.value.status === 401) line('pass', 'webhook: an unauthenticated POST is refused (401)');
  else {
    line(
      'fail',
      `webhook: an unauthenticated POST answered ${unsigned.value.status}, not 401`,
      unsigned.value.status === 202 ? 'the webhook accepts anyone: check WEBHOOK_SECRETS and redeploy' : 'look at the ingest function\'s log for this correlation id: ' + `check-${probeId}`,
    );
  }

  const secrets = await settle(async () => webhookSecretsFrom(await secret('WEBHOOK_SECRETS')));
  const newest = secrets.ok ? secrets.value.at(-1) : undefined;
  if (!newest) {
    const fix = stage === 'local' ? 'set WEBHOOK_SECRETS for npm start' : `orderbridge secrets set --stage ${stage} --only webhook-secrets`;
    line('fail', `webhook: no webhook secret to sign the probe with (${secrets.ok ? 'none is set' : secrets.error})`, fix);
    return;
  }
  const started = Date.now();
  const signed = await settle(() => post({ 'x-orderbridge-signature': signatureHeader(newest, body) }));
  if (!signed.ok) {
    line('fail', `webhook: the signed probe failed: ${signed.error}`, 'is the API reachable from here? (see the stack line above)');
    return;
  }
  const answer = await signed.value.text();
  const accepted = signed.value.status === 202 && answerNames(answer, probeId);
  if (!accepted) {
    const fix =
      signed.value.status === 401
        ? `the deployed webhook secret differs from the one ingest reads: check ${stage === 'local' ? 'WEBHOOK_SECRETS' : `SSM ${stageResourceNames(stage).ssmPrefix}/webhook-secrets`}`
        : `look at the ingest function's log for correlation id check-${probeId}`;
    line('fail', `webhook: the signed probe answered ${signed.value.status}, not 202`, fix);
    return;
  }
  const recorded = await waitForProbe(probeId, probeTimeoutMs);
  if (recorded.ok) {
    line('pass', `webhook: a signed probe (${probeId}) answered 202 and the order worker recorded it after ${((Date.now() - started) / 1000).toFixed(1)} s (nothing sent upstream)`);
  } else {
    line(
      'fail',
      `webhook: a signed probe (${probeId}) answered 202, but the order worker did not record it within ${Math.round(probeTimeoutMs / 1000)} s${recorded.error ? ` (${recorded.error})` : ''}`,
      `is sync-order running? See \`orderbridge status\` (orders.fifo backlog) and sync-order's log for correlation id check-${probeId}`,
    );
  }
}

function answerNames(text: string, probeId: string): boolean {
  try {
    return (JSON.parse(text) as { probe?: unknown }).probe === probeId;
  } catch {
    return false;
  }
}

async function waitForProbe(probeId: string, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  const deadline = Date.now() + timeoutMs;
  let lastError: string | undefined;
  do {
    const read = await settle(() => getProbe(probeId));
    if (read.ok && read.value) return { ok: true };
    lastError = read.ok ? undefined : read.error;
    await new Promise((resolve) => setTimeout(resolve, PROBE_POLL_MS));
  } while (Date.now() < deadline);
  return { ok: false, error: lastError };
}

// ---------------------------------------------------------------------------------------
// Alarms: subscription confirmed and nothing in ALARM (AWS), DLQs empty, reconcile recent

async function checkAlarms(target: Target, facts: StageFacts, now: Date, report: (line: CheckLine) => void): Promise<void> {
  const line = (status: CheckLine['status'], text: string, fix?: string) => report({ section: 'Alarms', status, text, ...(fix ? { fix } : {}) });
  // A stage younger than a reconcile interval (or a local stack of unknown age) may have none yet.
  const young = facts.createdAt === undefined || now.getTime() - facts.createdAt.getTime() < RECONCILE_STALE_AFTER_MS;
  const age = facts.createdAt ? formatAge((now.getTime() - facts.createdAt.getTime()) / 1000) : undefined;

  if (target.kind === 'stage') {
    if (!facts.alarmTopicArn) line('fail', 'alarm topic: the stack has no AlarmTopicArn output', `deploy it: npx osls deploy --stage ${facts.stage}`);
    else {
      const subscriptions = await settle(() => emailSubscriptions(facts.alarmTopicArn!));
      if (!subscriptions.ok) line('fail', `alarm e-mail: cannot list the subscriptions of the alarm topic (${subscriptions.error})`, 'allow sns:ListSubscriptionsByTopic (see README, "orderbridge check")');
      else if (subscriptions.value.length === 0) {
        line('fail', 'alarm e-mail: the alarm topic has no e-mail subscription, so alarms reach nobody', `set ORDERBRIDGE_ALARM_EMAIL and deploy again (npx osls deploy --stage ${facts.stage})`);
      } else {
        for (const sub of subscriptions.value) {
          if (sub.SubscriptionArn === 'PendingConfirmation') {
            line('fail', `alarm e-mail to ${sub.Endpoint}: PendingConfirmation, so alarms reach nobody yet`, `click the link in the mail "AWS Notification - Subscription Confirmation" sent to ${sub.Endpoint} (or deploy again to get a new one)`);
          } else line('pass', `alarm e-mail to ${sub.Endpoint}: confirmed`);
        }
      }
    }
    const alarms = await settle(() => alarmsInAlarm(facts.stage, facts.alarmTopicArn));
    if (!alarms.ok) line('fail', `alarms: cannot read their state (${alarms.error})`, 'allow cloudwatch:DescribeAlarms (see README, "orderbridge check")');
    else {
      const firing = alarms.value.filter((alarm) => !(young && isReconcileNotRun(alarm, facts.stage)));
      for (const alarm of alarms.value.filter((a) => !firing.includes(a))) {
        line('note', `alarm ${alarm.AlarmName} is in ALARM: expected on a stage ${age} old, before the first daily reconcile`);
      }
      if (firing.length === 0) line('pass', 'alarms: none in ALARM');
      for (const alarm of firing) line('fail', `alarm ${alarm.AlarmName} is in ALARM: ${alarm.AlarmDescription ?? alarm.StateReason ?? ''}`.trim(), 'fix its cause (the description says where to look); it clears on its own');
    }
  } else {
    line('note', 'alarms: none locally (on AWS, check also wants the alarm e-mail confirmed and no alarm in ALARM)');
  }

  const queues = (await resolveQueues(target)).filter((q) => q.role === 'ordersDlq' || q.role === 'klarCostsDlq');
  if (queues.length < 2) line('fail', 'DLQs: the target names no dead-letter queues', 'see the queues line above');
  for (const queue of queues) {
    const counts = await settle(() => queueCounts(queue.url));
    const source = queue.role === 'ordersDlq' ? 'orders' : 'klar-costs';
    if (!counts.ok) line('fail', `${queue.name}: cannot be read (${counts.error})`, 'see the queues line above');
    else {
      const depth = counts.value.visible + counts.value.inFlight;
      if (depth === 0) line('pass', `${queue.name}: empty`);
      else line('fail', `${queue.name}: holds ${depth} message(s)`, `see why with \`orderbridge redrive ${source} --dry-run\`, fix the cause, then \`orderbridge redrive ${source}\``);
    }
  }

  const runs = await settle(() => listReconcileRuns(25));
  if (!runs.ok) line('fail', `reconcile: its runs cannot be read (${runs.error})`, 'see the table line above');
  else {
    const completed = runs.value.find((run) => !run.dryRun && run.error === undefined);
    const at = completed ? Date.parse(completed.at) : undefined;
    if (at !== undefined && now.getTime() - at <= RECONCILE_STALE_AFTER_MS) line('pass', `reconcile: last completed ${completed!.at}`);
    else if (at === undefined && young) {
      line('note', `reconcile: none yet (the stage is ${age ?? 'new'} old; the schedule runs daily, \`orderbridge reconcile --since <date>\` runs one now)`);
    } else {
      line(
        'fail',
        `reconcile: ${completed ? `last completed ${completed.at}, more than 2 days ago` : 'none completed on record'}`,
        'is the reconcile schedule running? `orderbridge reconcile --since <date>` runs one now',
      );
    }
  }

  const parked = await settle(() => needsAttention());
  if (parked.ok) {
    const n = parked.value.length;
    line('note', n === 0 ? 'needs-attention: no order parked' : `needs-attention: ${n} order(s) parked: \`orderbridge needs-attention\` (not a failure of the stage)`);
  } else line('note', `needs-attention: could not be read (${parked.error})`);
}

async function emailSubscriptions(topicArn: string): Promise<Subscription[]> {
  const client = new SNSClient({});
  try {
    const all: Subscription[] = [];
    let NextToken: string | undefined;
    do {
      const page = await client.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken }));
      all.push(...(page.Subscriptions ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return all.filter((sub) => sub.Protocol === 'email' || sub.Protocol === 'email-json');
  } finally {
    client.destroy();
  }
}

/** Every alarm in ALARM that notifies this stage's topic (or is named after the stage). */
async function alarmsInAlarm(stage: string, topicArn: string | undefined): Promise<MetricAlarm[]> {
  const client = new CloudWatchClient({});
  try {
    const all: MetricAlarm[] = [];
    let NextToken: string | undefined;
    do {
      const page = await client.send(new DescribeAlarmsCommand({ StateValue: 'ALARM', AlarmTypes: ['MetricAlarm'], NextToken }));
      all.push(...(page.MetricAlarms ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    const prefix = `${SERVICE}-${stage}-`;
    return all.filter((alarm) => (topicArn && alarm.AlarmActions?.includes(topicArn)) || alarm.AlarmName?.startsWith(prefix));
  } finally {
    client.destroy();
  }
}

/** The "reconcile did not run" alarm fires on a new stage until the first daily run. */
function isReconcileNotRun(alarm: MetricAlarm, stage: string): boolean {
  return alarm.MetricName === 'Invocations' && (alarm.Dimensions ?? []).some((d) => d.Name === 'FunctionName' && d.Value === `${SERVICE}-${stage}-reconcile`);
}

async function settle<T>(read: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}
