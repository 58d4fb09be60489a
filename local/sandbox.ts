import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FunctionTimeoutError, type SelfTimedHandler } from './runtime.ts';

/**
 * How long a sandbox may take to initialise (load the bundle, run module-level code). Lambda
 * allows 10 s; a loaded development machine starting several sandboxes at once needs more,
 * and the init phase is not what the local stack is meant to hold to account.
 */
const INIT_TIMEOUT_MS = 60_000;

const SANDBOX_SCRIPT = new URL('./lambda-sandbox.mjs', import.meta.url);

interface LambdaError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** What a sandbox needs of the Lambda context the runtime made: its time left, and its plain fields. */
type InvocationContext = { getRemainingTimeInMillis(): number; [field: string]: unknown };

type SandboxMessage =
  | { type: 'ready' }
  | { type: 'init-error'; error: LambdaError }
  | { type: 'result'; id: number; json?: string }
  | { type: 'error'; id: number; error: LambdaError };

/**
 * One function bundle run the way Lambda runs it: each execution environment is a worker
 * thread on plain Node with the function's environment, that loads the bundle once (its
 * cold start) and then serves one invocation at a time; idle ones are reused (warm starts).
 * An invocation still running at its deadline is killed with its sandbox, as Lambda kills
 * the sandbox: nothing of it runs on, and the next invocation starts a fresh one.
 */
export class BundledFunction {
  private readonly idle: Sandbox[] = [];
  private readonly all = new Set<Sandbox>();
  private stopped = false;
  /** sandboxes started so far (cold starts) */
  coldStarts = 0;
  /** invocations handed to a sandbox */
  invocations = 0;

  constructor(
    readonly functionName: string,
    private readonly bundleFile: string,
    private readonly exportName: string,
    /** the function's environment, fixed when a sandbox starts (as a deployment fixes it) */
    private readonly env: () => Record<string, string>,
  ) {}

  /** The function as a handler: `(event, context)` → its result, in a sandbox, within the context's time. */
  readonly handler: SelfTimedHandler = Object.assign((event: unknown, context: InvocationContext) => this.invoke(event, context), {
    enforcesTimeout: true as const,
  });

  /** Starts one sandbox ahead of the first invocation, so that one is warm (fails on init errors). */
  async warm(): Promise<void> {
    if (this.idle.length === 0) this.idle.push(await this.start());
  }

  async invoke(event: unknown, context: InvocationContext): Promise<unknown> {
    // The time the invocation has; it runs from when a sandbox is ready (after a cold start).
    const timeoutMs = context.getRemainingTimeInMillis();
    const sandbox = this.idle.pop() ?? (await this.start());
    this.invocations++;
    const deadline = Date.now() + timeoutMs;
    const fields = Object.fromEntries(Object.entries(context).filter(([, value]) => typeof value !== 'function'));
    try {
      const result = await sandbox.invoke(event, fields, deadline);
      if (!this.stopped) this.idle.push(sandbox);
      else void sandbox.end();
      return result;
    } catch (error) {
      // A timed-out, crashed or failing-to-answer sandbox is never reused; a handler error is
      // the invocation's, and the sandbox stays warm (as on Lambda).
      if (error instanceof HandlerError && !this.stopped) this.idle.push(sandbox);
      else void sandbox.end();
      throw error instanceof HandlerError ? error.toError() : error;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((sandbox) => sandbox.end()));
  }

  private async start(): Promise<Sandbox> {
    if (this.stopped) throw new Error(`${this.functionName}: the local stack is stopping`);
    this.coldStarts++;
    const sandbox = new Sandbox(this.functionName, this.bundleFile, this.exportName, this.env());
    this.all.add(sandbox);
    sandbox.onEnd = () => this.all.delete(sandbox);
    await sandbox.ready;
    return sandbox;
  }
}

/** A handler's own error, as Lambda reports it (errorType, errorMessage). */
class HandlerError {
  constructor(readonly error: LambdaError) {}
  toError(): Error {
    const error = new Error(this.error.errorMessage);
    error.name = this.error.errorType;
    error.stack = this.error.trace.join('\n') || error.stack;
    return error;
  }
}

class Sandbox {
  private readonly worker: Worker;
  readonly ready: Promise<void>;
  private pending?: { id: number; resolve: (value: unknown) => void; reject: (error: unknown) => void; timer: NodeJS.Timeout };
  private nextId = 1;
  private ended = false;
  onEnd?: () => void;

  constructor(
    private readonly functionName: string,
    bundleFile: string,
    exportName: string,
    env: Record<string, string>,
  ) {
    this.worker = new Worker(SANDBOX_SCRIPT, {
      workerData: { bundleUrl: pathToFileURL(bundleFile).href, exportName },
      env,
      // Plain Node, as on Lambda: no loader flags of this process (tsx, vitest).
      execArgv: [],
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${functionName}: init did not finish within ${INIT_TIMEOUT_MS / 1000} s`));
        void this.end();
      }, INIT_TIMEOUT_MS);
      this.worker.once('message', (message: SandboxMessage) => {
        clearTimeout(timer);
        if (message.type === 'ready') return resolve();
        const detail = message.type === 'init-error' ? `${message.error.errorType}: ${message.error.errorMessage}` : `unexpected ${message.type}`;
        reject(new Error(`${functionName}: init failed — ${detail}`));
        void this.end();
      });
      this.worker.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`${functionName}: the sandbox exited during init`));
      });
    });
    this.ready.catch(() => undefined); // observed by start(); never unhandled here
    this.worker.on('message', (message: SandboxMessage) => this.settle(message));
    this.worker.on('error', (error) => this.fail(new Error(`${functionName}: the runtime crashed — ${error instanceof Error ? error.message : String(error)}`)));
    this.worker.on('exit', (code) => {
      this.ended = true;
      this.fail(new Error(`${functionName}: the runtime exited with code ${code}`));
      this.onEnd?.();
    });
  }

  invoke(event: unknown, context: Record<string, unknown>, deadline: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timeoutMs = Math.max(0, deadline - Date.now());
      // Lambda's timeout: the sandbox is killed at the deadline, whatever the code is doing.
      const timer = setTimeout(() => {
        this.fail(new FunctionTimeoutError(this.functionName, timeoutMs));
        void this.end();
      }, timeoutMs);
      this.pending = { id, resolve, reject, timer };
      this.worker.postMessage({ id, event, context, deadline });
    });
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.worker.terminate();
  }

  private settle(message: SandboxMessage): void {
    const pending = this.pending;
    if (!pending || !('id' in message) || message.id !== pending.id) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    if (message.type === 'result') pending.resolve(message.json === undefined ? undefined : JSON.parse(message.json));
    else pending.reject(new HandlerError(message.error));
  }

  private fail(error: Error): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(error);
  }
}
