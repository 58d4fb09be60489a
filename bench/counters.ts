import { AsyncLocalStorage } from 'node:async_hooks';
import type { Handler } from '../local/runtime.ts';

/**
 * Counts the AWS requests the handlers make, by function and command, with an SDK
 * middleware on the very client objects the handlers use (`sqsClient()`,
 * `documentClient()`: one per process). Both workers run in this process at the same time,
 * so a request is attributed to the handler invocation it was made from through an
 * AsyncLocalStorage entered by a wrapper around each handler.
 *
 * The AsyncLocalStorage is only entered while `attributing` is on: once entered, Node 20
 * tracks every promise in the process, which would tax the ingest latency comparison.
 * Outside it, requests count for `unattributed`.
 */

export type Counts = Record<string, number>;

/** Any AWS SDK v3 client (the document client shares its DynamoDBClient's stack). */
interface MiddlewareClient {
  middlewareStack: { add(middleware: any, options: any): void };
}

export class RequestCounter {
  private readonly storage = new AsyncLocalStorage<string>();
  /** `${service}/${function}/${command}` → logical commands (what the code asked for) */
  private readonly commands = new Map<string, number>();
  /** the same per HTTP attempt (an SDK retry is a second attempt of one command) */
  private readonly attempts = new Map<string, number>();
  /** SQS SendMessage(Batch) entries per queue URL, whoever sent them */
  private readonly sentTo = new Map<string, number>();
  /** records each wrapped function finished (not reported as failures), per function */
  private readonly done = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  /** `${service}/${function}/${command}` → latency of each command (retries included), ms */
  private readonly latency = new Map<string, number[]>();
  /** per wrapped function: records and duration of each invocation */
  private readonly invocations = new Map<string, { records: number; ms: number }[]>();
  attributing = false;

  /** Adds the counting middlewares to a client (a second call replaces them). */
  attach(client: MiddlewareClient, service: 'sqs' | 'dynamodb'): void {
    const key = (context: { commandName?: string }) => `${service}/${this.storage.getStore() ?? 'unattributed'}/${(context.commandName ?? '?').replace(/Command$/, '')}`;
    client.middlewareStack.add(
      (next: (args: any) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: Record<string, unknown> }) => {
        const k = key(context);
        this.commands.set(k, (this.commands.get(k) ?? 0) + 1);
        const input = args.input ?? {};
        if (service === 'sqs' && typeof input.QueueUrl === 'string' && /SendMessage/.test(context.commandName ?? '')) {
          const entries = Array.isArray(input.Entries) ? input.Entries.length : 1;
          this.sentTo.set(input.QueueUrl, (this.sentTo.get(input.QueueUrl) ?? 0) + entries);
        }
        if (!this.attributing) return next(args);
        const started = performance.now();
        try {
          return await next(args);
        } finally {
          const samples = this.latency.get(k) ?? [];
          samples.push(performance.now() - started);
          this.latency.set(k, samples);
        }
      },
      { step: 'initialize', name: `orderbridgeBench${service}Commands`, override: true },
    );
    // deserialize runs inside the retry loop (finalizeRequest): once per HTTP attempt.
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
        const k = key(context);
        this.attempts.set(k, (this.attempts.get(k) ?? 0) + 1);
        return next(args);
      },
      { step: 'deserialize', name: `orderbridgeBench${service}Attempts`, override: true },
    );
  }

  /**
   * Times the handlers' HTTP calls to the upstreams (ky calls `globalThis.fetch` per request)
   * while attributing, as `http/<function>/<upstream>`; `upstreams` maps an origin to a name.
   */
  attachFetch(upstreams: Record<string, string>): () => void {
    const original = globalThis.fetch;
    globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      if (!this.attributing) return original(input, init);
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const k = `http/${this.storage.getStore() ?? 'unattributed'}/${upstreams[url.origin] ?? url.origin}`;
      this.commands.set(k, (this.commands.get(k) ?? 0) + 1);
      const started = performance.now();
      try {
        const response = await original(input, init);
        return response;
      } finally {
        const samples = this.latency.get(k) ?? [];
        samples.push(performance.now() - started);
        this.latency.set(k, samples);
      }
    }) as typeof fetch;
    return () => {
      globalThis.fetch = original;
    };
  }

  /** The handler, run inside `name`'s attribution while `attributing` is on; counts finished SQS records. */
  wrap(name: string, real: () => Handler): Handler {
    return async (event, context) => {
      const run = () => real()(event, context);
      const started = performance.now();
      const records = Array.isArray(event?.Records) ? event.Records.length : 0;
      let result;
      try {
        result = this.attributing ? await this.storage.run(name, run) : await run();
      } catch (error) {
        // A thrown handler fails its whole batch (SQS redelivers it).
        this.failed.set(name, (this.failed.get(name) ?? 0) + records);
        throw error;
      }
      if (this.attributing) {
        const list = this.invocations.get(name) ?? [];
        list.push({ records, ms: performance.now() - started });
        this.invocations.set(name, list);
      }
      if (records) {
        const failures = Array.isArray(result?.batchItemFailures) ? result.batchItemFailures.length : 0;
        this.done.set(name, (this.done.get(name) ?? 0) + records - failures);
        this.failed.set(name, (this.failed.get(name) ?? 0) + failures);
      }
      return result;
    };
  }

  finished(name: string): number {
    return this.done.get(name) ?? 0;
  }

  failures(name: string): number {
    return this.failed.get(name) ?? 0;
  }

  sentToQueue(url: string): number {
    return this.sentTo.get(url) ?? 0;
  }

  /** Requests (HTTP attempts, or logical commands) of one service made by one function, by command. */
  byCommand(service: 'sqs' | 'dynamodb', fn: string, what: 'attempts' | 'commands' = 'attempts'): Counts {
    const prefix = `${service}/${fn}/`;
    const out: Counts = {};
    for (const [k, n] of what === 'attempts' ? this.attempts : this.commands) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = n;
    return out;
  }

  total(service: 'sqs' | 'dynamodb', fn: string, what: 'attempts' | 'commands' = 'attempts', command?: RegExp): number {
    return Object.entries(this.byCommand(service, fn, what))
      .filter(([name]) => !command || command.test(name))
      .reduce((sum, [, n]) => sum + n, 0);
  }

  /** Median latency (ms, retries included) of each command one function made while attributing. */
  latencyP50(service: 'sqs' | 'dynamodb' | 'http', fn: string): Counts {
    const prefix = `${service}/${fn}/`;
    const out: Counts = {};
    for (const [k, samples] of this.latency) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = median(samples);
    return out;
  }

  /** Invocations of a wrapped function while attributing: how many, records per batch, median duration. */
  invocationStats(fn: string): { invocations: number; recordsPerInvocation: number; p50Ms: number } {
    const list = this.invocations.get(fn) ?? [];
    return {
      invocations: list.length,
      recordsPerInvocation: list.length ? Math.round((list.reduce((a, i) => a + i.records, 0) / list.length) * 10) / 10 : 0,
      p50Ms: median(list.map((i) => i.ms)),
    };
  }

  reset(): void {
    for (const map of [this.commands, this.attempts, this.sentTo, this.done, this.failed, this.latency, this.invocations]) map.clear();
  }
}

function median(samples: number[]): number {
  if (!samples.length) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return Math.round(sorted[Math.ceil(sorted.length / 2) - 1]! * 10) / 10;
}

export const sum = (counts: Counts) => Object.values(counts).reduce((a, b) => a + b, 0);
