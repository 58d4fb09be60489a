import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as z from 'zod';

/**
 * Shared plumbing for the upstream simulators (Komfortkasse, Klar, VersaCommerce).
 *
 * Each simulator is a plain node:http server so the real clients talk real HTTP to it:
 * timeouts, retries, headers and status codes behave as they would against the upstream.
 * Besides the upstream routes every simulator answers a small set of control endpoints
 * under `/__sim/` so tests running in another process (e.g. against `npm start`) can read
 * what was sent and inject faults.
 */

/** Lambda's synchronous payload limit; nothing bigger can reach or leave a handler anyway. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

const CONTROL_PREFIX = '/__sim/';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** Parsed JSON, or the raw string if the body is not JSON, or undefined if there was none. */
  body: unknown;
  /** What the simulator answered (0 when a fault dropped the connection). */
  status: number;
  /** ISO timestamp of arrival. */
  at: string;
}

export interface Fault {
  method?: string;
  /** Matched against the path without the query string. */
  pathPrefix?: string;
  /** With status (or body, or destroy) the fault answers instead of the simulator. */
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Delay before answering; alone it delays and then handles the request normally. */
  delayMs?: number;
  /**
   * Handle the request normally (state changes) and then hold the response this long: the
   * upstream has accepted the call, but the caller has not heard back yet (crash tests).
   */
  delayAfterMs?: number;
  /** How many matching requests the fault affects; default 1, Infinity allowed. */
  times?: number;
  /** Drop the connection without answering, to simulate a network error. */
  destroy?: boolean;
}

export interface Simulator {
  /** Base URL exactly as the client must be configured. */
  url: string;
  port: number;
  /** Every request except control endpoints, in order of answering. */
  requests: RecordedRequest[];
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Clears requests, faults and stored state. */
  reset(): void;
  close(): Promise<void>;
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
}

/** A request as seen by a simulator's handler: the body is already read and, if possible, parsed. */
export interface SimRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  searchParams: URLSearchParams;
  headers: Record<string, string | undefined>;
  rawBody: string;
  /** Parsed JSON if `isJson`, else the raw string, or undefined when the body is empty. */
  body: unknown;
  isJson: boolean;
}

export interface SimResponse {
  status: number;
  /** Serialised as JSON unless it is a string (sent as is). Omitted for undefined. */
  body?: unknown;
  headers?: Record<string, string>;
}

export type SimHandler = (req: SimRequest) => SimResponse | Promise<SimResponse>;

/** Answers a simulator-specific control request, or undefined to fall through to the shared ones. */
export type ControlHandler = (
  req: SimRequest,
) => SimResponse | undefined | Promise<SimResponse | undefined>;

export interface SimulatorServerConfig extends SimulatorOptions {
  /** Display name used in error messages. */
  name: string;
  /** Path appended to the origin in `url` (e.g. `/api/v2` for Komfortkasse). */
  basePath?: string;
  handle: SimHandler;
  /** JSON-serialisable snapshot of the stored state for `GET /__sim/state`. */
  dumpState: () => unknown;
  /** Clears the simulator's stored state (requests and faults are cleared by the server). */
  resetState: () => void;
  control?: ControlHandler;
}

// ---------------------------------------------------------------------------
// Small response helpers shared by the simulators.

export function json(status: number, body: unknown, headers?: Record<string, string>): SimResponse {
  return headers ? { status, body, headers } : { status, body };
}

export function noContent(): SimResponse {
  return { status: 204 };
}

/** True if the Content-Type header names JSON (parameters such as charset are allowed). */
export function isJsonContentType(headers: Record<string, string | undefined>): boolean {
  const type = headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json';
}

/** Deep copy of JSON data, so state handed out cannot be mutated behind the simulator's back. */
export function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

// ---------------------------------------------------------------------------
// Fault control-endpoint schema: JSON cannot carry Infinity, so `times: null` stands for it.

const faultSchema = z.strictObject({
  method: z.string().min(1).optional(),
  pathPrefix: z.string().optional(),
  status: z.number().int().min(100).max(599).optional(),
  body: z.unknown().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  delayMs: z.number().min(0).optional(),
  delayAfterMs: z.number().min(0).optional(),
  times: z
    .number()
    .int()
    .positive()
    .nullable()
    .optional()
    .transform((times) => (times === null ? Infinity : times)),
  destroy: z.boolean().optional(),
});

interface ActiveFault extends Fault {
  remaining: number;
}

// ---------------------------------------------------------------------------

function flattenHeaders(headers: IncomingMessage['headers']): Record<string, string | undefined> {
  const flat: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

function queryRecord(params: URLSearchParams): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of params) {
    // The first occurrence wins, like most frameworks' single-value accessors.
    if (!(key in query)) query[key] = value;
  }
  return query;
}

/** Reads the whole body; past the limit it keeps draining (so the client sees our 413, not EPIPE). */
function readBody(req: IncomingMessage): Promise<{ raw: string; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve({ raw: tooLarge ? '' : Buffer.concat(chunks).toString('utf8'), tooLarge }));
    req.on('error', reject);
  });
}

function parseBody(raw: string): { body: unknown; isJson: boolean } {
  if (raw.length === 0) return { body: undefined, isJson: false };
  try {
    return { body: JSON.parse(raw) as unknown, isJson: true };
  } catch {
    return { body: raw, isJson: false };
  }
}

function send(res: ServerResponse, response: SimResponse): void {
  const headers: Record<string, string> = { ...response.headers };
  let payload: string | undefined;
  if (response.body !== undefined && response.status !== 204 && response.status !== 304) {
    if (typeof response.body === 'string') {
      payload = response.body;
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else {
      payload = JSON.stringify(response.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  res.writeHead(response.status, headers);
  res.end(payload);
}

function formatHost(host: string): string {
  // A wildcard bind is reachable via loopback; the URL must name something connectable.
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function toRecord(req: SimRequest, status: number, at: string, body: unknown = req.body): RecordedRequest {
  return { method: req.method, path: req.path, query: req.query, headers: req.headers, body, status, at };
}

function faultMatches(fault: ActiveFault, req: SimRequest): boolean {
  if (fault.remaining <= 0) return false;
  if (fault.method && fault.method.toUpperCase() !== req.method) return false;
  if (fault.pathPrefix !== undefined && !req.path.startsWith(fault.pathPrefix)) return false;
  return true;
}

/** A fault answers by itself when it says what to answer; a bare delay only slows the request. */
function faultAnswers(fault: Fault): boolean {
  return fault.status !== undefined || fault.body !== undefined || fault.destroy === true;
}

/**
 * Starts a simulator server and resolves once it is listening. The returned object is the
 * common {@link Simulator} API; each simulator adds its own state on top of it.
 */
export async function startSimulatorServer(config: SimulatorServerConfig): Promise<Simulator> {
  const host = config.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  let faults: ActiveFault[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const injectFault = (fault: Fault): void => {
    faults.push({ ...cloneJson(fault), times: fault.times, remaining: fault.times ?? 1 });
  };
  const clearFaults = (): void => {
    faults = [];
  };
  const reset = (): void => {
    requests.length = 0;
    clearFaults();
    config.resetState();
  };

  /** Takes the first matching fault (consuming one of its uses) or undefined. */
  const takeFault = (req: SimRequest): ActiveFault | undefined => {
    const fault = faults.find((candidate) => faultMatches(candidate, req));
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults = faults.filter((candidate) => candidate !== fault);
    return fault;
  };

  const handleControl = async (req: SimRequest): Promise<SimResponse> => {
    const specific = await config.control?.(req);
    if (specific) return specific;
    const route = `${req.method} ${req.path}`;
    switch (route) {
      case 'GET /__sim/requests':
        return json(200, requests);
      case 'GET /__sim/state':
        return json(200, config.dumpState());
      case 'POST /__sim/reset':
        reset();
        return noContent();
      case 'DELETE /__sim/faults':
        clearFaults();
        return noContent();
      case 'POST /__sim/faults': {
        const parsed = faultSchema.safeParse(req.body);
        if (!req.isJson || !parsed.success) {
          const reason = parsed.success ? 'body must be JSON' : z.prettifyError(parsed.error);
          return json(400, { error: `Invalid fault: ${reason}` });
        }
        injectFault(parsed.data as Fault);
        return noContent();
      }
      default:
        return json(404, { error: `Unknown control endpoint ${route}` });
    }
  };

  const handleUpstream = async (req: SimRequest, res: ServerResponse, at: string): Promise<void> => {
    const record = (status: number) => requests.push(toRecord(req, status, at));

    const fault = takeFault(req);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (closed) return;

    let response: SimResponse;
    if (fault && faultAnswers(fault)) {
      if (fault.destroy) {
        record(0);
        res.socket?.destroy();
        return;
      }
      response = {
        status: fault.status ?? 500,
        body: fault.body ?? { error: 'Simulated fault' },
        ...(fault.headers ? { headers: fault.headers } : {}),
      };
    } else {
      try {
        response = await config.handle(req);
      } catch (error) {
        // A simulator bug must be loud, but still answer so the caller does not hang.
        console.error(`[${config.name} simulator] handler failed`, error);
        response = json(500, { error: `Simulator error: ${(error as Error).message}` });
      }
    }
    // Record before answering: a test awaiting the response must already see the record.
    record(response.status);
    if (fault?.delayAfterMs) {
      await sleep(fault.delayAfterMs);
      if (closed) return;
    }
    send(res, response);
  };

  const server: Server = createServer((incoming, res) => {
    const at = new Date().toISOString();
    void (async () => {
      const url = new URL(incoming.url ?? '/', 'http://simulator.invalid');
      const { raw, tooLarge } = await readBody(incoming);
      const req: SimRequest = {
        method: (incoming.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        query: queryRecord(url.searchParams),
        searchParams: url.searchParams,
        headers: flattenHeaders(incoming.headers),
        rawBody: raw,
        ...parseBody(raw),
      };
      if (req.path.startsWith(CONTROL_PREFIX)) {
        send(res, await handleControl(req));
        return;
      }
      if (tooLarge) {
        requests.push(toRecord(req, 413, at, undefined));
        send(res, json(413, { error: 'Payload too large' }));
        return;
      }
      await handleUpstream(req, res, at);
    })().catch((error: unknown) => {
      console.error(`[${config.name} simulator] request failed`, error);
      if (!res.headersSent) send(res, json(500, { error: 'Simulator error' }));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const { port } = server.address() as AddressInfo;
  const url = `http://${formatHost(host)}:${port}${config.basePath ?? ''}`;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    await new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      // Keep-alive sockets would otherwise hold close() open until they time out.
      server.closeAllConnections();
    });
  };

  return { url, port, requests, injectFault, clearFaults, reset, close };
}
