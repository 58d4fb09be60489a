import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { signatureHeader } from '../../lib/webhook/auth.ts';
import { startStack, type RunningStack, type StackOptions } from '../../local/stack.ts';

export const TEST_SECRET = 'integration-secret';

/**
 * A whole local stack for one test file: real DynamoDB Local and SQS emulator processes,
 * simulators for the upstreams, the real handlers. Short timeouts keep retries fast.
 */
export async function bootStack(options: StackOptions = {}): Promise<RunningStack> {
  return startStack({
    port: 0,
    schedules: false,
    visibilityTimeoutSeconds: 2,
    retryDelaySeconds: 0,
    ...options,
    env: {
      ...process.env,
      WEBHOOK_SECRETS: TEST_SECRET,
      KLAR_BATCH_WINDOW_SECONDS: '1',
      UPSTREAM_RETRY_BASE_MS: '5',
      KOMFORTKASSE_BASE_URL: '',
      KLAR_BASE_URL: '',
      VERSACOMMERCE_BASE_URL: '',
      ...options.env,
    },
  });
}

export interface PostOptions {
  secret?: string;
  headers?: Record<string, string>;
  /** sign (default), token header, token query, or no auth */
  auth?: 'signature' | 'token' | 'query' | 'none';
  path?: string;
}

/** POSTs a body to the stack's webhook endpoint as a shop would. */
export async function postWebhook(stack: RunningStack, body: unknown, options: PostOptions = {}): Promise<{ status: number; body: any }> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const secret = options.secret ?? TEST_SECRET;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  let path = options.path ?? '/webhooks/versacommerce';
  const auth = options.auth ?? 'signature';
  if (auth === 'signature') headers['x-orderbridge-signature'] = signatureHeader(secret, raw);
  if (auth === 'token') headers['x-orderbridge-token'] = secret;
  if (auth === 'query') path += `?token=${encodeURIComponent(secret)}`;
  const response = await fetch(`${stack.url}${path}`, { method: 'POST', headers, body: raw });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed };
}

/** Polls until `check` returns a truthy value; fails with `what` after the timeout. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Messages currently visible + in flight + delayed on a queue. */
export async function queueDepth(stack: RunningStack, queueUrl: string): Promise<number> {
  const { Attributes } = await stack.sqsClient.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/** Reads (without deleting for long) up to `max` messages; they reappear after 1 s. */
export async function peekMessages(stack: RunningStack, queueUrl: string, max = 10): Promise<Message[]> {
  const { Messages } = await stack.sqsClient.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: max, VisibilityTimeout: 1, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
  );
  return Messages ?? [];
}

/** Waits until no queue has anything left to deliver (visible, in flight or delayed). */
export async function drained(stack: RunningStack, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await queueDepth(stack, stack.queues.orders.url)) === 0 && (await queueDepth(stack, stack.queues.klarCosts.url)) === 0, 'queues to drain', timeoutMs);
}

/**
 * The CLI in-process against a test stack, through the state file `npm start` would write.
 * Returns the runner and a cleanup for the temporary state file.
 */
export async function cliFor(stack: RunningStack): Promise<{
  cli: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  stateFile: string;
  cleanup: () => void;
}> {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { runCli } = await import('../../bin/cli.ts');
  const dir = mkdtempSync(join(tmpdir(), 'orderbridge-cli-'));
  const stateFile = join(dir, 'local-stack.json');
  writeFileSync(
    stateFile,
    JSON.stringify({ pid: process.pid, url: stack.url, env: stack.env, queues: Object.fromEntries(Object.entries(stack.queues).map(([k, q]) => [k, q.url])) }),
  );
  const cli = async (...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...args, '--local-state', stateFile], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    });
    return { code, stdout, stderr };
  };
  return { cli, stateFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
