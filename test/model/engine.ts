/**
 * Deterministic interleaving of real code. Every invocation (order worker, Klar batch,
 * forget, reconcile) runs inside an AsyncLocalStorage context; every I/O it makes — each
 * DynamoDB request (an SDK middleware), each upstream call (a fake `fetch`), each SQS send
 * (an SDK middleware that hands the message to the model's queues) — parks at a gate.
 * The driver lets exactly one gate go at a time, waits until everything is parked again,
 * and asks the schedule which gate goes next. So one schedule always runs the same way,
 * whatever the machine's load, and a failure replays.
 *
 * At a gate the schedule may inject a fault (a DynamoDB error before or after the write
 * applied, an upstream status, a lost answer) or abandon the invocation (as Lambda does at
 * its timeout): an abandoned invocation's pending I/O never completes and it does nothing more.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Fault, FaultTarget } from './schedule.ts';
import type { ShopVersion, Upstream, World } from './world.ts';
import { BASE_URLS } from './world.ts';

export type InvocationKind = 'order' | 'klar' | 'forget' | 'reconcile';

export interface Invocation {
  id: number;
  kind: InvocationKind;
  label: string;
  state: 'running' | 'done' | 'abandoned';
  gates: number;
  abandonAt?: { gate: number; after: boolean };
  /** shop versions a fetch answered this invocation with */
  seen: ShopVersion[];
  /** the shop's API answered 404 to everything (a misconfiguration fault) */
  misconfigured?: Fault;
}

interface Waiting {
  invocation: Invocation;
  label: string;
  release: () => void;
}

export interface SentMessage {
  queue: 'orders' | 'klar';
  body: string;
  groupId?: string;
}

type Target = FaultTarget | 'sqs';

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** The engine of the schedule being run (one at a time); hooks do nothing without one. */
let active: Engine | undefined;

export class Engine {
  readonly als = new AsyncLocalStorage<Invocation>();
  waiting: Waiting[] = [];
  invocations: Invocation[] = [];
  private inFlight = 0;
  private shortTimers = 0;
  private changes = 0;
  private wake: (() => void) | undefined;
  /** faults and abandonments happen only while the schedule's steps run */
  faultsOn = true;
  private counters: Record<FaultTarget, number> = { ddb: 0, komfortkasse: 0, versacommerce: 0, klar: 0 };

  constructor(
    readonly world: World,
    private readonly faults: Fault[],
    private readonly abandons: { invocation: number; gate: number; after: boolean }[],
    readonly onSend: (message: SentMessage) => void,
  ) {}

  activate(): void {
    active = this;
  }

  deactivate(): void {
    if (active === this) active = undefined;
  }

  /** Starts `fn` as an invocation; `done` runs when it ends (never, if it is abandoned). */
  start<T>(kind: InvocationKind, label: string, fn: () => Promise<T>, done: (outcome: { ok: true; value: T } | { ok: false; error: unknown }, invocation: Invocation) => void): Invocation {
    const id = this.invocations.length;
    const plan = this.abandons.find((a) => a.invocation === id);
    const invocation: Invocation = { id, kind, label: `#${id} ${label}`, state: 'running', gates: 0, seen: [], ...(plan && this.faultsOn ? { abandonAt: { gate: plan.gate, after: plan.after } } : {}) };
    this.invocations.push(invocation);
    void this.als.run(invocation, async () => {
      let outcome: { ok: true; value: T } | { ok: false; error: unknown };
      try {
        outcome = { ok: true, value: await fn() };
      } catch (error) {
        outcome = { ok: false, error };
      }
      if (invocation.state !== 'running') return;
      invocation.state = 'done';
      done(outcome, invocation);
      this.poke();
    });
    return invocation;
  }

  current(): Invocation | undefined {
    return this.als.getStore();
  }

  /** One I/O of the current invocation, under the schedule's control. */
  async io<T>(target: Target, label: string, apply: (fault: Fault | undefined) => Promise<T>): Promise<T> {
    const invocation = this.als.getStore();
    if (!invocation) return apply(undefined); // the model itself (checking invariants): not scheduled
    if (invocation.state !== 'running') return never();
    const gate = ++invocation.gates;
    await new Promise<void>((release) => {
      this.waiting.push({ invocation, label: `${invocation.label}: ${label}`, release });
      this.poke();
    });
    if (invocation.state !== 'running') return never();
    const abandon = this.faultsOn && invocation.abandonAt?.gate === gate ? invocation.abandonAt : undefined;
    if (abandon && !abandon.after) return this.abandon(invocation);
    const fault = target === 'sqs' ? undefined : this.faultFor(target, invocation);
    let result: { ok: true; value: T } | { ok: false; error: unknown };
    this.inFlight++;
    try {
      result = { ok: true, value: await apply(fault) };
    } catch (error) {
      result = { ok: false, error };
    } finally {
      this.inFlight--;
      this.poke();
    }
    if (abandon) return this.abandon(invocation);
    if (!result.ok) throw result.error;
    return result.value;
  }

  private abandon<T>(invocation: Invocation): Promise<T> {
    invocation.state = 'abandoned';
    for (const w of this.waiting.filter((w) => w.invocation === invocation)) w.release();
    this.waiting = this.waiting.filter((w) => w.invocation !== invocation);
    this.poke();
    return never();
  }

  private faultFor(target: FaultTarget, invocation: Invocation): Fault | undefined {
    if (!this.faultsOn) return undefined;
    const index = this.counters[target]++;
    // A shop answering 404 is a misconfiguration (URL, proxy): it lasts for the rest of the
    // invocation, so a check whether the API answers at all sees it too.
    if (target === 'versacommerce' && invocation.misconfigured) return invocation.misconfigured;
    const fault = this.faults.find((f) => f.target === target && index >= f.at && index < f.at + f.length);
    if (target === 'versacommerce' && fault?.kind === 404) invocation.misconfigured = fault;
    return fault;
  }

  /** Lets one parked I/O go. */
  release(index: number): void {
    const [w] = this.waiting.splice(index, 1);
    w?.release();
  }

  /** Resolves once nothing runs: every live invocation waits at a gate, ended or was abandoned. */
  async idle(): Promise<void> {
    let stable = 0;
    let last = -1;
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.inFlight > 0 || this.shortTimers > 0) {
        stable = 0;
        await new Promise<void>((r) => {
          this.wake = r;
          // a safety net, should a wake-up be missed
          setTimeout(r, 50).unref();
        });
        continue;
      }
      if (this.changes === last) {
        if (++stable >= 2) return;
      } else {
        stable = 0;
        last = this.changes;
      }
    }
  }

  poke(): void {
    this.changes++;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  timerStarted(): void {
    this.shortTimers++;
  }

  timerEnded(): void {
    this.shortTimers--;
    this.poke();
  }
}

/* ------------------------------------------------------------------ hooks, installed once */

const realDate = Date;
let clockOffsetMs = 0;

/** The model's clock: real time plus what the schedule let pass (visibility timeouts, leases). */
export function advanceClock(ms: number): void {
  clockOffsetMs += ms;
}

export function modelNow(): number {
  return realDate.now() + clockOffsetMs;
}

class ModelDate extends realDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(realDate.now() + clockOffsetMs);
    else super(...(args as [string | number]));
  }

  static override now(): number {
    return realDate.now() + clockOffsetMs;
  }
}

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realFetch = globalThis.fetch;
const tracked = new Map<unknown, () => void>();

/** Short timers of a running invocation are work in progress (a retry's backoff); long ones are timeouts. */
function modelSetTimeout(this: unknown, fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
  const engine = active;
  const invocation = engine?.current();
  if (!engine || !invocation || invocation.state !== 'running' || (ms ?? 0) >= 1000 || typeof fn !== 'function') {
    return realSetTimeout(fn, ms, ...args);
  }
  engine.timerStarted();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    engine.timerEnded();
  };
  const handle = realSetTimeout(
    (...a: unknown[]) => {
      tracked.delete(handle);
      end();
      fn(...a);
    },
    ms,
    ...args,
  );
  tracked.set(handle, end);
  return handle;
}

function modelClearTimeout(handle: unknown) {
  tracked.get(handle)?.();
  tracked.delete(handle);
  realClearTimeout(handle as NodeJS.Timeout);
}

function upstreamOf(url: URL): Upstream {
  const origin = url.origin;
  if (BASE_URLS.komfortkasse.startsWith(origin)) return 'komfortkasse';
  if (BASE_URLS.klar.startsWith(origin)) return 'klar';
  if (BASE_URLS.versacommerce.startsWith(origin)) return 'versacommerce';
  throw new Error(`the model has no upstream at ${origin}`);
}

async function modelFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const engine = active;
  if (!engine) throw new Error('model: an upstream call outside a schedule');
  const request = input instanceof Request ? input : new Request(input, init);
  const url = new URL(request.url);
  const upstream = upstreamOf(url);
  return engine.io(upstream, `${request.method} ${url.pathname}`, async (fault) => {
    const text = request.method === 'GET' ? '' : await request.text();
    const body: unknown = text ? JSON.parse(text) : undefined;
    const invocation = engine.current();
    const answer = engine.world.answer(upstream, request.method, url, body, fault, (version) => invocation?.seen.push(version));
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { 'content-type': 'application/json', ...answer.headers },
    });
  });
}

export function injectedDynamoDbError(when: string): Error {
  const error = new Error(`injected DynamoDB failure (${when})`);
  error.name = 'InternalServerError';
  Object.assign(error, { $fault: 'server', $metadata: { httpStatusCode: 500 } });
  return error;
}

interface MiddlewareStackLike {
  add(middleware: unknown, options: { step: 'initialize'; name: string; priority: 'high' }): void;
}

/**
 * Installs the global hooks (Date, setTimeout, fetch) and the SDK middlewares. Call once,
 * after the environment is set; `uninstallHooks` puts the globals back.
 */
export function installHooks(clients: { dynamo: { middlewareStack: MiddlewareStackLike }; sqs: { middlewareStack: MiddlewareStackLike } }): void {
  globalThis.Date = ModelDate as DateConstructor;
  globalThis.setTimeout = modelSetTimeout as typeof setTimeout;
  globalThis.clearTimeout = modelClearTimeout as typeof clearTimeout;
  globalThis.fetch = modelFetch as typeof fetch;
  clients.dynamo.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      const engine = active;
      if (!engine) return next(args);
      return engine.io('ddb', context.commandName ?? 'DynamoDB', async (fault) => {
        if (fault?.kind === 'error-before') throw injectedDynamoDbError('not applied');
        const result = await next(args);
        if (fault?.kind === 'error-after') throw injectedDynamoDbError('applied, answer lost');
        return result;
      });
    },
    { step: 'initialize', name: 'modelDynamoDbGate', priority: 'high' },
  );
  let sent = 0;
  clients.sqs.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input: Record<string, unknown> }) => {
      const engine = active;
      if (!engine || context.commandName !== 'SendMessageCommand') return next(args);
      return engine.io('sqs', 'SendMessage', async () => {
        const input = args.input as { QueueUrl: string; MessageBody: string; MessageGroupId?: string };
        engine.onSend({ queue: input.QueueUrl.includes('.fifo') ? 'orders' : 'klar', body: input.MessageBody, groupId: input.MessageGroupId });
        return { output: { MessageId: `model-${++sent}`, $metadata: {} }, response: {} };
      });
    },
    { step: 'initialize', name: 'modelSqsQueues', priority: 'high' },
  );
}

export function uninstallHooks(): void {
  globalThis.Date = realDate;
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
  globalThis.fetch = realFetch;
}
