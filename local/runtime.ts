import { createServer, type Server } from 'node:http';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { apiGatewayV2Event, lambdaContext, scheduledEvent, sqsEvent } from './events.ts';
import type { ProvisionedQueue } from './provision.ts';

export type Handler = (event: any, context: any) => Promise<any>;

export interface InvocationLog {
  functionName: string;
  records?: number;
  failures?: number;
  error?: string;
  /** the invocation outlived the function's timeout and was abandoned */
  timedOut?: boolean;
  ms: number;
}

/**
 * A handler that holds each invocation to the timeout it finds in its context and rejects
 * with FunctionTimeoutError past it (local/sandbox.ts: the clock starts once the sandbox is
 * initialised, as Lambda's invoke phase starts after the init phase).
 */
export interface SelfTimedHandler extends Handler {
  enforcesTimeout: true;
}

/** An invocation that outlived its function's timeout: Lambda ends it, and so does the local stack. */
export class FunctionTimeoutError extends Error {
  override readonly name = 'FunctionTimeoutError';
  constructor(
    readonly functionName: string,
    readonly timeoutMs: number,
  ) {
    super(`${functionName} timed out after ${formatSeconds(timeoutMs)}`);
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/**
 * One invocation as Lambda makes it: a fresh context whose deadline is the function's
 * timeout, and a FunctionTimeoutError once the deadline passes. The invocation is then
 * abandoned: whatever it returns later is ignored (a bundle's sandbox is killed outright,
 * see local/sandbox.ts; an in-process handler cannot be, so only its result is dropped).
 */
export async function invokeWithTimeout(handler: Handler, event: unknown, functionName: string, timeoutSeconds: number): Promise<unknown> {
  // A bundle's sandbox holds the invocation to the timeout itself, from after its cold start.
  if ((handler as Partial<SelfTimedHandler>).enforcesTimeout) return handler(event, lambdaContext(functionName, timeoutSeconds));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      handler(event, lambdaContext(functionName, timeoutSeconds)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FunctionTimeoutError(functionName, timeoutSeconds * 1000)), timeoutSeconds * 1000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The local stack's own log line for an abandoned invocation (stderr, like Lambda's "Task timed out"). */
function logTimeout(functionName: string, timeoutSeconds: number, what: string): void {
  process.stderr.write(`orderbridge: ${functionName} timed out after ${timeoutSeconds} s — invocation abandoned; ${what}\n`);
}

/**
 * Feeds one queue to one handler the way an SQS event source mapping does: collects up to
 * `batchSize` messages for at most `batchWindowMs`, invokes with a real SQSEvent, deletes
 * what succeeded and leaves reported failures to reappear after the visibility timeout
 * (the queue's redrive policy moves them to the DLQ after maxReceiveCount).
 */
export class SqsEventSource {
  private running = false;
  private loop?: Promise<void>;
  private abort = new AbortController();
  invocations = 0;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queue: ProvisionedQueue,
    private readonly functionName: string,
    private readonly handler: () => Handler,
    private readonly options: {
      batchSize: number;
      batchWindowMs: number;
      timeoutSeconds: number;
      reportBatchItemFailures: boolean;
      /** locally, hand failed records back sooner than the full visibility timeout */
      retryDelaySeconds?: number;
      /**
       * Concurrent invocations. Lambda scales a FIFO source by message group; the queue
       * itself keeps a group's messages in order (a group with one in flight is not handed out).
       */
      concurrency?: number;
      onInvocation?: (log: InvocationLog) => void;
    },
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = Promise.all(Array.from({ length: Math.max(1, this.options.concurrency ?? 1) }, () => this.run())).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const batch = await this.collect();
        if (batch.length > 0 && this.running) await this.invoke(batch);
      } catch (error) {
        if (!this.running) return;
        // The emulator may be restarting: back off and poll again.
        await sleep(500);
        void error;
      }
    }
  }

  /**
   * Like Lambda's batching window: the window opens with the first message, and the batch
   * is handed over when it is full or the window closes. Receives are never aborted: an
   * aborted long poll would still take messages on the emulator's side and hide them for
   * the whole visibility timeout, so stop() waits for it (at most 1 s) instead.
   */
  private async collect(): Promise<Message[]> {
    const batch: Message[] = [];
    let deadline = Infinity;
    while (this.running && batch.length < this.options.batchSize) {
      const remainingMs = deadline - Date.now();
      if (batch.length > 0 && remainingMs <= 0) break;
      const waitSeconds = batch.length === 0 ? 1 : Math.min(1, Math.floor(remainingMs / 1000));
      const result = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queue.url,
          MaxNumberOfMessages: Math.min(10, this.options.batchSize - batch.length),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
          VisibilityTimeout: this.queue.visibilityTimeout,
        }),
      );
      const messages = result.Messages ?? [];
      if (batch.length === 0) {
        if (messages.length === 0) break; // an empty long poll: let run() look at `running`
        deadline = Date.now() + this.options.batchWindowMs;
      }
      batch.push(...messages);
      // A short poll came back empty: do not spin on the emulator for the rest of the window.
      if (messages.length === 0 && waitSeconds === 0) await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
    if (!this.running && batch.length > 0) {
      // Stopping mid-window: hand the messages back now, not after the visibility timeout.
      await this.delayRetry(batch, 0);
      return [];
    }
    return batch;
  }

  private async invoke(batch: Message[]): Promise<void> {
    const started = performance.now();
    this.invocations++;
    let failedIds = new Set<string>();
    let error: string | undefined;
    try {
      const response = (await invokeWithTimeout(
        this.handler(),
        sqsEvent(batch, this.queue.arn),
        this.functionName,
        this.options.timeoutSeconds,
      )) as SQSBatchResponse | undefined;
      if (this.options.reportBatchItemFailures && response?.batchItemFailures) {
        failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      }
    } catch (thrown) {
      if (thrown instanceof FunctionTimeoutError) {
        // As on Lambda: a timed-out batch is neither deleted nor handed back early; SQS shows
        // its messages again once their visibility timeout (from the receive) has passed.
        logTimeout(
          this.functionName,
          this.options.timeoutSeconds,
          `its ${batch.length} message(s) stay in flight and reappear after the visibility timeout (${this.queue.visibilityTimeout} s)`,
        );
        this.options.onInvocation?.({
          functionName: this.functionName,
          records: batch.length,
          failures: batch.length,
          error: thrown.message,
          timedOut: true,
          ms: Math.round(performance.now() - started),
        });
        return;
      }
      // A thrown handler fails the whole batch, as in Lambda.
      error = thrown instanceof Error ? thrown.message : String(thrown);
      failedIds = new Set(batch.map((m) => m.MessageId!));
    }
    const succeeded = batch.filter((m) => !failedIds.has(m.MessageId!));
    const failed = batch.filter((m) => failedIds.has(m.MessageId!));
    await this.deleteAll(succeeded);
    if (failed.length && this.options.retryDelaySeconds !== undefined) await this.delayRetry(failed, this.options.retryDelaySeconds);
    this.options.onInvocation?.({
      functionName: this.functionName,
      records: batch.length,
      failures: failed.length,
      error,
      ms: Math.round(performance.now() - started),
    });
  }

  private async deleteAll(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queue.url,
          Entries: chunk.map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
  }

  private async delayRetry(messages: Message[], seconds: number): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      await this.sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queue.url,
            Entries: chunk.map((m, index) => ({ Id: String(index), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: seconds })),
          }),
        )
        .catch(() => undefined);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A declared HTTP API route, as in serverless.yml: `method` is `*` for ANY, `path` is `*` for `$default`. */
export interface HttpRoute {
  method: string;
  path: string;
}

/** The route key API Gateway gives a declared route: `POST /webhooks/versacommerce`, `ANY /{proxy+}`, `$default`. */
export function routeKeyOf(route: HttpRoute): string {
  if (route.path === '*') return '$default';
  return `${route.method === '*' ? 'ANY' : route.method.toUpperCase()} ${route.path}`;
}

/**
 * Picks the route API Gateway (HTTP API) would pick for a request, or undefined (its 404):
 * the most specific path wins (literal segments over `{param}` over a greedy `{proxy+}`), a
 * route with the request's method over ANY, and `$default` only when nothing else matches.
 * Paths and methods are compared exactly (case-sensitive paths, no trailing-slash folding).
 */
export function matchRoute(routes: readonly HttpRoute[], method: string, path: string): string | undefined {
  const requestMethod = method.toUpperCase();
  const segments = path.split('/').slice(1);
  let best: { key: string; score: number[] } | undefined;
  for (const route of routes) {
    if (route.path === '*') continue;
    const routeMethod = route.method === '*' || route.method.toUpperCase() === 'ANY' ? '*' : route.method.toUpperCase();
    if (routeMethod !== '*' && routeMethod !== requestMethod) continue;
    const score = pathScore(route.path.split('/').slice(1), segments);
    if (!score) continue;
    score.push(routeMethod === '*' ? 0 : 1);
    if (!best || compareScores(score, best.score) > 0) best = { key: routeKeyOf(route), score };
  }
  if (best) return best.key;
  return routes.some((route) => route.path === '*') ? '$default' : undefined;
}

/** [literal segments, single-segment params, not greedy] when `pattern` matches, else undefined. */
function pathScore(pattern: string[], segments: string[]): number[] | undefined {
  let literals = 0;
  let params = 0;
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i]!;
    if (/^\{[^{}]+\+\}$/.test(part)) {
      // greedy: the last segment of a route, matches one or more remaining segments
      return i === pattern.length - 1 && segments.length > i && segments.slice(i).join('/') !== '' ? [literals, params, 0] : undefined;
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    if (/^\{[^{}]+\}$/.test(part)) {
      if (segment === '') return undefined;
      params++;
    } else if (part === segment) literals++;
    else return undefined;
  }
  return pattern.length === segments.length ? [literals, params, 1] : undefined;
}

function compareScores(a: number[], b: number[]): number {
  // more literal segments first, then "not greedy", then more params, then a specific method
  const order = [0, 2, 1, 3];
  for (const i of order) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** API Gateway's own answer when no route matches: the function is not invoked. */
const NOT_FOUND = JSON.stringify({ message: 'Not Found' });

/**
 * The HTTP API: a request that matches a route becomes a real API Gateway v2 event for the
 * handler; one that matches none is answered 404 `{"message":"Not Found"}` here, as API
 * Gateway does, without invoking anything (`routeKeyFor` returns undefined for it).
 * `/health` is answered by the local stack itself.
 */
export function startHttpApi(
  port: number,
  route: { functionName: string; routeKeyFor: (method: string, path: string) => string | undefined; handler: () => Handler; timeoutSeconds: number },
  host = '127.0.0.1',
): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // API Gateway's own payload limit is 10 MB; the handler enforces 256 KiB itself.
      if (size <= 10 * 1024 * 1024) chunks.push(chunk);
    });
    request.on('end', async () => {
      if (size > 10 * 1024 * 1024) {
        response.writeHead(413, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Request Entity Too Large' }));
        return;
      }
      if (request.url === '/health' && request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
        return;
      }
      let routeKey: string | undefined;
      try {
        routeKey = route.routeKeyFor(request.method ?? 'GET', new URL(request.url ?? '/', 'http://localhost').pathname);
      } catch {
        routeKey = undefined; // an unparsable request target matches no route
      }
      if (routeKey === undefined) {
        response.writeHead(404, { 'content-type': 'application/json' }).end(NOT_FOUND);
        return;
      }
      try {
        const event = apiGatewayV2Event(request, Buffer.concat(chunks), routeKey);
        const result = (await invokeWithTimeout(route.handler(), event, route.functionName, route.timeoutSeconds)) as any;
        const headers = { ...(result?.headers ?? {}) } as Record<string, string>;
        const body = result?.isBase64Encoded ? Buffer.from(String(result.body ?? ''), 'base64') : String(result?.body ?? '');
        response.writeHead(Number(result?.statusCode ?? 200), headers).end(body);
      } catch (error) {
        // As API Gateway does when the function fails (a timed-out function included).
        response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Internal Server Error' }));
        if (error instanceof FunctionTimeoutError) logTimeout(route.functionName, route.timeoutSeconds, 'answered 500 as API Gateway does');
        else process.stderr.write(`${route.functionName} threw: ${error instanceof Error ? error.stack : String(error)}\n`);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** EventBridge `rate(...)` schedules; `fire()` lets tests and the CLI trigger one now. */
export class Schedule {
  private timer?: NodeJS.Timeout;
  constructor(
    readonly functionName: string,
    private readonly everyMs: number,
    private readonly handler: () => Handler,
    private readonly input: unknown,
    private readonly timeoutSeconds: number,
    private readonly onInvocation?: (log: InvocationLog) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.fire().catch(() => undefined), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async fire(): Promise<unknown> {
    const started = performance.now();
    try {
      const result = await invokeWithTimeout(this.handler(), scheduledEvent(this.functionName, this.input), this.functionName, this.timeoutSeconds);
      this.onInvocation?.({ functionName: this.functionName, ms: Math.round(performance.now() - started) });
      return result;
    } catch (error) {
      const timedOut = error instanceof FunctionTimeoutError;
      if (timedOut) logTimeout(this.functionName, this.timeoutSeconds, 'a scheduled run that failed');
      this.onInvocation?.({ functionName: this.functionName, error: String(error), ...(timedOut ? { timedOut } : {}), ms: Math.round(performance.now() - started) });
      throw error;
    }
  }
}
