import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { forgetSecrets, reloadConfig } from '../lib/config/index.ts';
import { sideOn } from '../lib/config/env.ts';
import { resetClients } from '../lib/clients/registry.ts';
import { resetSqsClient } from '../lib/queue/sqs.ts';
import { resetDocumentClient } from '../lib/store/dynamo.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal, startSqsEmulator, type Emulator } from './emulators/index.ts';
import { ensureBundles } from './bundles.ts';
import { readStackDefinition, type FunctionDefinition, type StackDefinition } from './infra.ts';
import { createQueues, createTable, type ProvisionedQueue } from './provision.ts';
import { Schedule, SqsEventSource, matchRoute, startHttpApi, type Handler, type InvocationLog } from './runtime.ts';
import { BundledFunction } from './sandbox.ts';
import {
  startKlarSimulator,
  startKomfortkasseSimulator,
  startVersaCommerceSimulator,
  type KlarSimulator,
  type KomfortkasseSimulator,
  type VersaCommerceSimulator,
} from './simulators/index.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where a running `npm start` tells the CLI how to reach it. */
export const LOCAL_STATE_FILE = join(REPO_ROOT, '.orderbridge', 'local-stack.json');

export const LOCAL_DEFAULTS = {
  webhookSecret: 'local-dev-secret',
  komfortkasseApiKey: 'local-komfortkasse-key',
  klarApiToken: 'local-klar-token',
  versaCommerceApiKey: 'local-vc-key',
  versaCommercePassword: 'local-vc-password',
};

export interface StackOptions {
  /** HTTP port; 0 = a free one. Default: PORT or 3000. */
  port?: number;
  dynamoDbPort?: number;
  sqsPort?: number;
  /** keep DynamoDB data in this directory instead of memory */
  persistDir?: string;
  /** environment for the handlers (defaults to process.env); unset upstream URLs → simulators */
  env?: NodeJS.ProcessEnv;
  /**
   * Run the esbuild bundles `osls package` zips (built when missing or stale) instead of the
   * sources, each function in Lambda-like sandboxes (worker threads) that are killed at the
   * function's timeout. Default: the environment's ORDERBRIDGE_BUNDLED=1 (`npm start -- --bundled`).
   */
  bundled?: boolean;
  /** replace a function's handler (tests of the plumbing itself); runs in this process */
  handlers?: Partial<Record<string, Handler>>;
  /** wrap a function's real handler — bundle or source — (tests of the runtime itself) */
  wrapHandlers?: Partial<Record<string, (real: Handler) => Handler>>;
  /** shorter timeouts than serverless.yml's for some functions (tests of the timeout), in seconds */
  functionTimeouts?: Partial<Record<string, number>>;
  /** shorter visibility timeout for every queue (tests), in seconds */
  visibilityTimeoutSeconds?: number;
  /**
   * hand failed records back after this many seconds instead of the full visibility timeout
   * (a test shortcut: it also replaces a visibility the handler set itself, e.g. sync-order's
   * hand-back after a 429's Retry-After; unset, failed records behave as on SQS)
   */
  retryDelaySeconds?: number;
  /** concurrent invocations per FIFO event source (default: its maximumConcurrency in serverless.yml) */
  fifoConcurrency?: number;
  /** start the SQS pollers (default true) */
  workers?: boolean;
  /** start the schedules' timers (default true; `fireSchedule` works either way) */
  schedules?: boolean;
  /** progress lines for a person (npm start prints them) */
  onProgress?: (message: string) => void;
  /** write the state file the CLI reads (npm start does) */
  writeStateFile?: boolean;
  onInvocation?: (log: InvocationLog) => void;
}

export interface RunningStack {
  url: string;
  port: number;
  /** true when the functions run from their bundles (`--bundled`) */
  bundled: boolean;
  /** the bundled functions' sandboxes (empty unless bundled) */
  bundles: Map<string, BundledFunction>;
  definition: StackDefinition;
  dynamoDb: Emulator;
  sqs: Emulator;
  queues: Record<'orders' | 'ordersDlq' | 'klarCosts' | 'klarCostsDlq', ProvisionedQueue>;
  tableName: string;
  sqsClient: SQSClient;
  dynamoDbClient: DynamoDBClient;
  simulators: { komfortkasse?: KomfortkasseSimulator; klar?: KlarSimulator; versaCommerce?: VersaCommerceSimulator };
  env: Record<string, string>;
  eventSources: SqsEventSource[];
  fireSchedule(functionName: string): Promise<unknown>;
  /**
   * Stops the SQS emulator, waits `downMs`, starts it again on the same port and re-creates
   * the queues (it keeps no state across restarts). Queue URLs stay the same.
   */
  restartSqs(options?: { downMs?: number }): Promise<void>;
  /**
   * Stops DynamoDB Local, waits `downMs`, starts it again on the same port (and persist
   * directory, if any) and creates the table if it is missing.
   */
  restartDynamoDb(options?: { downMs?: number }): Promise<void>;
  stopWorkers(): Promise<void>;
  startWorkers(): void;
  stop(): Promise<void>;
}

const QUEUE_ALIASES = { orders: 'OrdersQueue', ordersDlq: 'OrdersDLQ', klarCosts: 'KlarCostsQueue', klarCostsDlq: 'KlarCostsDLQ' } as const;

/**
 * The whole pipeline on one machine: DynamoDB Local and the SQS emulator as child
 * processes, resources created from serverless.yml, the real handlers fed real events,
 * and simulators for every upstream without a base URL. Resolves once everything is ready.
 */
export async function startStack(options: StackOptions = {}): Promise<RunningStack> {
  const baseEnv = options.env ?? process.env;
  const parsed = readStackDefinition({ stage: 'local', env: baseEnv });
  const definition: StackDefinition = {
    ...parsed,
    functions: parsed.functions.map((fn) => ({ ...fn, timeoutSeconds: options.functionTimeouts?.[fn.name] ?? fn.timeoutSeconds })),
  };
  const bundled = options.bundled ?? isTruthy(baseEnv.ORDERBRIDGE_BUNDLED);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  };
  try {
    // Both at once; if one fails, the other must not outlive us.
    const [dynamoDbStart, sqsStart] = await Promise.allSettled([
      startDynamoDbLocal({ port: options.dynamoDbPort, dataDir: options.persistDir }),
      startSqsEmulator({ port: options.sqsPort }),
    ]);
    if (dynamoDbStart.status === 'rejected' || sqsStart.status === 'rejected') {
      for (const started of [dynamoDbStart, sqsStart]) if (started.status === 'fulfilled') await started.value.stop();
      throw dynamoDbStart.status === 'rejected' ? dynamoDbStart.reason : (sqsStart as PromiseRejectedResult).reason;
    }
    const dynamoDb = dynamoDbStart.value;
    const sqs = sqsStart.value;
    // Mutable: restartSqs/restartDynamoDb replace them, and cleanup must stop the live ones.
    const emulators = { dynamoDb, sqs };
    cleanups.push(() => emulators.dynamoDb.stop(), () => emulators.sqs.stop());

    const sqsClient = new SQSClient({ endpoint: sqs.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const dynamoDbClient = new DynamoDBClient({ endpoint: dynamoDb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    cleanups.push(() => sqsClient.destroy(), () => dynamoDbClient.destroy());

    const [provisioned, tableName] = await Promise.all([
      createQueues(sqsClient, definition, { visibilityTimeoutOverride: options.visibilityTimeoutSeconds }),
      createTable(dynamoDbClient, definition),
    ]);
    const queues = Object.fromEntries(
      Object.entries(QUEUE_ALIASES).map(([alias, logicalId]) => [alias, provisioned.get(logicalId)!]),
    ) as RunningStack['queues'];

    const simulators: RunningStack['simulators'] = {};
    const env: Record<string, string> = {
      STAGE: 'local',
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoDb.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      HISTORY_TABLE_NAME: tableName,
      ORDERS_QUEUE_URL: queues.orders.url,
      KLAR_COSTS_QUEUE_URL: queues.klarCosts.url,
      KLAR_BATCH_WINDOW_SECONDS: baseEnv.KLAR_BATCH_WINDOW_SECONDS ?? '5',
      WEBHOOK_SECRETS: baseEnv.WEBHOOK_SECRETS || LOCAL_DEFAULTS.webhookSecret,
      // In the state file too: `orderbridge status` reports them.
      DRY_RUN: baseEnv.DRY_RUN || 'false',
      KLAR_ENABLED: baseEnv.KLAR_ENABLED || 'true',
      KOMFORTKASSE_ENABLED: baseEnv.KOMFORTKASSE_ENABLED || 'true',
    };
    // A side switched off gets no simulator and no credentials: nothing may need them.
    // (A value the config refuses counts as on here; the handlers' cold start then names it.)
    const komfortkasseOn = sideOn(env.KOMFORTKASSE_ENABLED);
    const klarOn = sideOn(env.KLAR_ENABLED);
    if (komfortkasseOn && !baseEnv.KOMFORTKASSE_BASE_URL) {
      const apiKey = baseEnv.KOMFORTKASSE_API_KEY || LOCAL_DEFAULTS.komfortkasseApiKey;
      simulators.komfortkasse = await startKomfortkasseSimulator({ apiKey });
      cleanups.push(() => simulators.komfortkasse?.close());
      env.KOMFORTKASSE_BASE_URL = simulators.komfortkasse.url;
      env.KOMFORTKASSE_API_KEY = apiKey;
    } else if (komfortkasseOn && !baseEnv.KOMFORTKASSE_API_KEY) {
      env.KOMFORTKASSE_API_KEY = LOCAL_DEFAULTS.komfortkasseApiKey;
    }
    if (klarOn && !baseEnv.KLAR_BASE_URL) {
      const token = baseEnv.KLAR_API_TOKEN || LOCAL_DEFAULTS.klarApiToken;
      simulators.klar = await startKlarSimulator({ token, version: baseEnv.KLAR_API_VERSION || '06.2024' });
      cleanups.push(() => simulators.klar?.close());
      env.KLAR_BASE_URL = simulators.klar.url;
      env.KLAR_API_TOKEN = token;
    } else if (klarOn && !baseEnv.KLAR_API_TOKEN) {
      env.KLAR_API_TOKEN = LOCAL_DEFAULTS.klarApiToken;
    }
    if (!baseEnv.VERSACOMMERCE_BASE_URL) {
      const apiKey = baseEnv.VERSACOMMERCE_API_KEY || LOCAL_DEFAULTS.versaCommerceApiKey;
      const password = baseEnv.VERSACOMMERCE_API_PASSWORD || LOCAL_DEFAULTS.versaCommercePassword;
      simulators.versaCommerce = await startVersaCommerceSimulator({ apiKey, password });
      cleanups.push(() => simulators.versaCommerce?.close());
      env.VERSACOMMERCE_BASE_URL = simulators.versaCommerce.url;
      env.VERSACOMMERCE_API_KEY = apiKey;
      env.VERSACOMMERCE_API_PASSWORD = password;
    } else {
      env.VERSACOMMERCE_API_KEY = baseEnv.VERSACOMMERCE_API_KEY || LOCAL_DEFAULTS.versaCommerceApiKey;
      env.VERSACOMMERCE_API_PASSWORD = baseEnv.VERSACOMMERCE_API_PASSWORD || LOCAL_DEFAULTS.versaCommercePassword;
    }

    // The handlers run in this process: give them the environment Lambda would, then
    // drop every per-container cache so they see it (a fresh "cold start").
    Object.assign(process.env, pickDefined(baseEnv), env);
    reloadConfig();
    forgetSecrets();
    resetSqsClient();
    resetDocumentClient();
    resetClients();

    const handlers = new Map<string, Handler>();
    const bundles = new Map<string, BundledFunction>();
    if (bundled) {
      // The functions' environment is fixed here, as a deployment fixes it.
      const functionEnv = pickDefined(process.env);
      const files = await ensureBundles(
        definition.functions.filter((fn) => !options.handlers?.[fn.name]),
        { onBuild: (names) => options.onProgress?.(`bundling ${names.join(', ')} with esbuild (serverless.yml custom.esbuild) …`) },
      );
      for (const [name, file] of files) {
        const fn = definition.functions.find((candidate) => candidate.name === name)!;
        bundles.set(name, new BundledFunction(name, file, fn.exportName, () => functionEnv));
      }
      cleanups.push(() => Promise.all([...bundles.values()].map((b) => b.stop())));
      // One warm sandbox per function before the port opens (an init error stops the start).
      await Promise.all([...bundles.values()].map((b) => b.warm()));
    }
    for (const fn of definition.functions) {
      const real = options.handlers?.[fn.name] ?? bundles.get(fn.name)?.handler ?? (await loadHandler(fn));
      const wrap = options.wrapHandlers?.[fn.name];
      handlers.set(fn.name, wrap ? wrap(real) : real);
    }
    const handlerOf = (name: string) => () => handlers.get(name)!;

    const eventSources: SqsEventSource[] = [];
    const schedules: Schedule[] = [];
    const disabledSchedules = new Set<Schedule>();
    let httpRoute: { fn: FunctionDefinition; routes: { method: string; path: string }[] } | undefined;
    for (const fn of definition.functions) {
      for (const event of fn.events) {
        if (event.type === 'sqs') {
          const queue = provisioned.get(event.queueLogicalId)!;
          const windowSeconds = fn.name === 'upload-klar-costs' ? Number(env.KLAR_BATCH_WINDOW_SECONDS) : event.maximumBatchingWindow;
          eventSources.push(
            new SqsEventSource(sqsClient, queue, fn.name, handlerOf(fn.name), {
              batchSize: event.batchSize,
              batchWindowMs: windowSeconds * 1000,
              timeoutSeconds: fn.timeoutSeconds,
              reportBatchItemFailures: event.reportBatchItemFailures,
              retryDelaySeconds: options.retryDelaySeconds,
              // FIFO: parallel per message group up to the event source's maximumConcurrency, as
              // Lambda does; batched sources: one at a time.
              concurrency: queue.fifo ? (options.fifoConcurrency ?? event.maximumConcurrency ?? 4) : 1,
              onInvocation: options.onInvocation,
            }),
          );
        } else if (event.type === 'schedule') {
          const schedule = new Schedule(fn.name, event.everyMs, handlerOf(fn.name), event.input, fn.timeoutSeconds, options.onInvocation);
          schedules.push(schedule);
          // A disabled rule (the Klar poller with KLAR_ENABLED=false) never fires on its own.
          if (!event.enabled) disabledSchedules.add(schedule);
        } else if (event.type === 'httpApi') {
          // One HTTP function is served; its routes decide the event's routeKey.
          httpRoute ??= { fn, routes: [] };
          if (httpRoute.fn === fn) httpRoute.routes.push({ method: event.method, path: event.path });
        }
      }
    }
    if (options.workers !== false) for (const source of eventSources) source.start();
    cleanups.push(() => Promise.all(eventSources.map((s) => s.stop())));
    if (options.schedules !== false) for (const schedule of schedules) if (!disabledSchedules.has(schedule)) schedule.start();
    cleanups.push(() => schedules.forEach((s) => s.stop()));

    if (!httpRoute) throw new Error('serverless.yml declares no httpApi function');
    const port = options.port ?? Number(baseEnv.PORT ?? 3000);
    const server: Server = await startHttpApi(port, {
      functionName: httpRoute.fn.name,
      // Like API Gateway: only declared routes reach the function; anything else is its 404.
      routeKeyFor: (method, path) => matchRoute(httpRoute.routes, method, path),
      handler: handlerOf(httpRoute.fn.name),
      timeoutSeconds: httpRoute.fn.timeoutSeconds,
    });
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    const address = server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    const url = `http://127.0.0.1:${actualPort}`;

    if (options.writeStateFile) {
      mkdirSync(dirname(LOCAL_STATE_FILE), { recursive: true });
      writeFileSync(
        LOCAL_STATE_FILE,
        JSON.stringify({ pid: process.pid, url, env, queues: Object.fromEntries(Object.entries(queues).map(([k, q]) => [k, q.url])) }, null, 2),
      );
      cleanups.push(() => rmSync(LOCAL_STATE_FILE, { force: true }));
    }

    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let stopped = false;
    return {
      url,
      port: actualPort,
      bundled,
      bundles,
      definition,
      get dynamoDb() {
        return emulators.dynamoDb;
      },
      get sqs() {
        return emulators.sqs;
      },
      queues,
      tableName,
      sqsClient,
      dynamoDbClient,
      simulators,
      env,
      eventSources,
      async fireSchedule(functionName: string) {
        const schedule = schedules.find((s) => s.functionName === functionName);
        if (!schedule) throw new Error(`no schedule for ${functionName}`);
        return schedule.fire();
      },
      async restartSqs({ downMs = 0 } = {}) {
        await emulators.sqs.stop();
        await sleep(downMs);
        emulators.sqs = await startSqsEmulator({ port: emulators.sqs.port });
        const recreated = await createQueues(sqsClient, definition, { visibilityTimeoutOverride: options.visibilityTimeoutSeconds });
        // Update in place: the event sources and callers hold these objects.
        for (const [logicalId, queue] of recreated) Object.assign(provisioned.get(logicalId)!, queue);
      },
      async restartDynamoDb({ downMs = 0 } = {}) {
        await emulators.dynamoDb.stop();
        await sleep(downMs);
        emulators.dynamoDb = await startDynamoDbLocal({ port: emulators.dynamoDb.port, dataDir: options.persistDir });
        await createTable(dynamoDbClient, definition);
      },
      async stopWorkers() {
        await Promise.all(eventSources.map((s) => s.stop()));
      },
      startWorkers() {
        for (const source of eventSources) source.start();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function loadHandler(fn: FunctionDefinition): Promise<Handler> {
  const module = (await import(pathToFileURL(join(REPO_ROOT, fn.module)).href)) as Record<string, unknown>;
  const handler = module[fn.exportName];
  if (typeof handler !== 'function') throw new Error(`${fn.module} does not export ${fn.exportName}`);
  return handler as Handler;
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

function pickDefined(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
