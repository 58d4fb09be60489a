import ky, { HTTPError, TimeoutError, type KyInstance, type Options } from 'ky';
import { UpstreamError } from '../domain/errors.ts';

/** Statuses worth another try (DESIGN: 408, 425, 429 and 5xx); every other 4xx is final. */
export const RETRYABLE_STATUSES: readonly number[] = [408, 425, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)];

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export interface UpstreamClientOptions {
  upstream: string;
  baseUrl: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  retryLimit?: number;
  retryBaseMs?: number;
  /** Longest Retry-After we wait for inside one invocation; longer → SQS redelivers. */
  maxRetryAfterMs?: number;
}

/**
 * One ky instance per upstream: timeouts, jittered exponential backoff, Retry-After
 * honoured. Built once per module (see each client) and reused across invocations.
 */
export function createUpstreamClient(options: UpstreamClientOptions): KyInstance {
  const base = options.retryBaseMs ?? 200;
  const settings: Options = {
    baseUrl: options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`,
    headers: options.headers,
    timeout: options.timeoutMs ?? 8000,
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

/** Turns whatever ky threw into an UpstreamError with the right category. */
export async function toUpstreamError(upstream: string, error: unknown): Promise<UpstreamError> {
  if (error instanceof UpstreamError) return error;
  if (error instanceof HTTPError) {
    const status = error.response.status;
    // ky 2 has already read the body into `data`; the response body itself is consumed.
    const upstreamMessage = messageFromBody(error.data) ?? (await readErrorMessage(error.response));
    const category = isRetryableStatus(status) ? 'transient' : 'permanent';
    return new UpstreamError(
      upstream,
      `${upstream} answered ${status}${upstreamMessage ? `: ${upstreamMessage}` : ''}`,
      category,
      { status, upstreamMessage, cause: error },
    );
  }
  if (error instanceof TimeoutError) {
    return new UpstreamError(upstream, `${upstream} timed out`, 'transient', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new UpstreamError(upstream, `${upstream} unreachable: ${message}`, 'transient', { cause: error });
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

async function readErrorMessage(response: Response): Promise<string | undefined> {
  try {
    const text = await response.clone().text();
    if (!text) return undefined;
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      if (typeof body.error === 'string') return body.error;
      if (typeof body.message === 'string') return body.message;
      return text.slice(0, 500);
    } catch {
      return text.slice(0, 500);
    }
  } catch {
    return undefined;
  }
}
