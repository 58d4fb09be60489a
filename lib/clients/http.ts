import type { HTTPError, KyInstance, Options } from 'ky';
import { UpstreamAuthError, UpstreamError } from '../domain/errors.ts';
import { countAuthFailure } from '../observability/metrics.ts';
import { Pacer, retryAfterMs } from './pacer.ts';
import { memoized } from './registry.ts';

/** Statuses worth another try (DESIGN: 408, 425, 429 and 5xx); every other 4xx is final. */
export const RETRYABLE_STATUSES: readonly number[] = [408, 425, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)];

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** 401/403: the upstream refused *our* credentials. */
export function isCredentialStatus(status: number): boolean {
  return status === 401 || status === 403;
}

/** Per call: the invocation's abort signal (middy aborts it shortly before the Lambda deadline). */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface UpstreamClientOptions {
  upstream: string;
  baseUrl: string;
  headers?: Record<string, string>;
  /** per attempt */
  timeoutMs?: number;
  /** the whole call, retries and their delays included */
  totalTimeoutMs?: number;
  retryLimit?: number;
  retryBaseMs?: number;
  /** Longest Retry-After we wait for inside one invocation; longer → SQS redelivers. */
  maxRetryAfterMs?: number;
}

/**
 * The upstream's pacer, one per process (lib/clients/pacer.ts): shared by every client of
 * that upstream and every invocation in this container. A "cold start" (resetClients) drops it.
 */
export function pacerFor(upstream: string): Pacer {
  return memoized(`pacer:${upstream}`, () => new Pacer());
}

/**
 * One ky instance per upstream: timeouts (per attempt and in total), jittered exponential
 * backoff, Retry-After honoured, and every attempt (retries included) through the upstream's
 * pacer: after a 429 the calls go at the rate the upstream accepts. The wait counts against
 * `totalTimeout` (ky races its hooks against it) and ends with the call's abort signal.
 * Built once per module (see each client) and reused. ky is loaded on first use: at import
 * it sets up Node's fetch (about 20 ms), which a cold start that makes no call — and every
 * cold start before its first call — need not pay.
 */
export async function createUpstreamClient(options: UpstreamClientOptions): Promise<KyInstance> {
  const { default: ky } = await import('ky');
  const base = options.retryBaseMs ?? 200;
  const pacer = pacerFor(options.upstream);
  // The request's signal carries the call's abort signal, and ky's own per-attempt one: after
  // a timed-out attempt ky hands beforeRetry the old, aborted request (it makes a fresh one
  // just before fetching), so that signal cannot end the wait (ky already checked the call's).
  const waitForTurn = (retry: boolean) => ({ request }: { request: Request }) => pacer.acquire(request.signal.aborted ? undefined : request.signal, retry);
  const settings: Options = {
    hooks: { beforeRequest: [waitForTurn(false)], beforeRetry: [waitForTurn(true)] },
    // The pacer learns from every answer, by when its request went out (the global fetch
    // at call time, so whatever wraps it — a benchmark's counter — still sees the call).
    fetch: async (input, init) => {
      const sentAt = Date.now();
      const response = await globalThis.fetch(input, init);
      pacer.settled(sentAt, response.status, retryAfterMs(response.headers.get('retry-after')));
      return response;
    },
    baseUrl: options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`,
    headers: options.headers,
    timeout: options.timeoutMs ?? 8000,
    totalTimeout: options.totalTimeoutMs ?? 12_000,
    throwHttpErrors: true,
    retry: {
      limit: options.retryLimit ?? 2,
      methods: ['get', 'post', 'put', 'delete'],
      statusCodes: [...RETRYABLE_STATUSES],
      afterStatusCodes: [413, 429, 503],
      maxRetryAfter: options.maxRetryAfterMs ?? 10_000,
      backoffLimit: 5_000,
      delay: (attempt) => base * 2 ** (attempt - 1),
      jitter: (delay) => delay * (0.5 + Math.random() * 0.5),
      retryOnTimeout: true,
    },
  };
  return ky.create(settings);
}

/**
 * Turns whatever ky threw into an UpstreamError with the right category. A 401/403 becomes
 * an UpstreamAuthError: counted per upstream, and `onCredentialsRejected` lets the client
 * drop the cached secret so the next call reads it again (a rotated SSM value).
 */
export function toUpstreamError(upstream: string, error: unknown, onCredentialsRejected?: () => void): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (isHTTPError(error)) {
    const status = error.response.status;
    // ky 2 has already read the body into `data`; the response body itself is consumed.
    const upstreamMessage = messageFromBody(error.data);
    const message = `${upstream} answered ${status}${upstreamMessage ? `: ${upstreamMessage}` : ''}`;
    if (isCredentialStatus(status)) {
      countAuthFailure(upstream);
      onCredentialsRejected?.();
      return new UpstreamAuthError(upstream, `${message} (our credentials were refused)`, { status, upstreamMessage, cause: error });
    }
    // "Slow down": the record comes back after about the Retry-After, not the full visibility timeout.
    const retryAfter = status === 429 ? Math.max(retryAfterMs(error.response.headers.get('retry-after')) ?? 1000, pacerFor(upstream).backlogMs()) : undefined;
    return new UpstreamError(upstream, message, isRetryableStatus(status) ? 'transient' : 'permanent', { status, upstreamMessage, retryAfterMs: retryAfter, cause: error });
  }
  if ((error as { name?: string })?.name === 'TimeoutError') {
    // Out of time while the upstream is being paced: that is "slow down" too.
    const pacer = pacerFor(upstream);
    const retryAfter = pacer.state().pacing ? Math.max(pacer.backlogMs(), 1000) : undefined;
    return new UpstreamError(upstream, `${upstream} timed out${retryAfter ? ' (waiting for its rate limit)' : ''}`, 'transient', { retryAfterMs: retryAfter, cause: error });
  }
  if ((error as { name?: string })?.name === 'AbortError') {
    return new UpstreamError(upstream, `${upstream} call stopped at the function's deadline`, 'transient', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new UpstreamError(upstream, `${upstream} unreachable: ${message}`, 'transient', { cause: error });
}

/** ky's HTTPError, told by its name (the class loads with ky, on first use). */
export function isHTTPError(error: unknown): error is HTTPError {
  return (error as { name?: string })?.name === 'HTTPError' && (error as { response?: unknown }).response !== undefined;
}

function messageFromBody(data: unknown): string | undefined {
  if (typeof data === 'string') return data.trim() ? data.slice(0, 500) : undefined;
  if (data && typeof data === 'object') {
    const body = data as Record<string, unknown>;
    if (typeof body.error === 'string') return body.error;
    if (typeof body.message === 'string') return body.message;
    return JSON.stringify(body).slice(0, 500);
  }
  return undefined;
}
