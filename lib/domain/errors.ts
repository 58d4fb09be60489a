/**
 * Every error Orderbridge raises says whether trying again can help.
 * permanent: the input or the upstream's verdict will not change on retry → needs-attention.
 * transient: network, throttling, 5xx, a lost race → fail the record so SQS redelivers it.
 */
export type ErrorCategory = 'permanent' | 'transient';

export class OrderbridgeError extends Error {
  readonly category: ErrorCategory;
  constructor(message: string, category: ErrorCategory, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.category = category;
  }
}

/** An upstream HTTP call failed; `status` is absent for network errors and timeouts. */
export class UpstreamError extends OrderbridgeError {
  readonly upstream: string;
  readonly status?: number;
  readonly upstreamMessage?: string;
  /** the upstream said "slow down" (429, or our pacer for it ran out of time): try again after this long */
  readonly retryAfterMs?: number;
  constructor(
    upstream: string,
    message: string,
    category: ErrorCategory,
    details: { status?: number; upstreamMessage?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, category, { cause: details.cause });
    this.upstream = upstream;
    this.status = details.status;
    this.upstreamMessage = details.upstreamMessage;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}

/** How soon a failed call may be tried again when the upstream asked us to slow down; undefined otherwise. */
export function retryAfterOf(error: unknown): number | undefined {
  return error instanceof UpstreamError ? error.retryAfterMs : undefined;
}

/**
 * The upstream refused our credentials (401/403): a wrong or rotated key, not a fault of
 * the order. Transient for the order — retried, then parked in the DLQ, never
 * needs-attention — and counted and alarmed as `upstreamAuthFailed`.
 */
export class UpstreamAuthError extends UpstreamError {
  constructor(upstream: string, message: string, details: { status: number; upstreamMessage?: string; cause?: unknown }) {
    super(upstream, message, 'transient', details);
  }
}

/**
 * The shop answered 404 for the order: it vanished (deleted in the shop). Not a failure of
 * the call: the order worker removes it from Komfortkasse if it was ever submitted.
 */
export class OrderVanishedError extends UpstreamError {
  readonly orderId: number;
  constructor(orderId: number, options?: { cause?: unknown }) {
    super('VersaCommerce', `order ${orderId} does not exist in the shop (VersaCommerce answered 404)`, 'permanent', { status: 404, cause: options?.cause });
    this.orderId = orderId;
  }
}

/**
 * The shop answered 404 for an order, and its API did not answer a plain authenticated
 * request either (`GET /api/orders/count.json`): a wrong base URL, proxy or credentials, not
 * a deleted order. Transient for the order — left untouched, retried, then the DLQ — and
 * counted (`shopApiCheckFailed`) and alarmed.
 */
export class ShopApiUnavailableError extends OrderbridgeError {
  readonly orderId: number;
  constructor(orderId: number, check: string, options?: { cause?: unknown }) {
    super(
      `VersaCommerce answered 404 for order ${orderId}, but its API does not answer either (GET /api/orders/count.json: ${check}): ` +
        'check VERSACOMMERCE_BASE_URL and the VersaCommerce credentials; the order is left untouched',
      'transient',
      options,
    );
    this.orderId = orderId;
  }
}

/** A record on a queue did not match its schema: retrying cannot fix it. */
export class InvalidMessageError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

/** A condition expression lost a race with another worker; the redelivery re-derives. */
export class ConcurrentUpdateError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'transient', options);
  }
}

export class ConfigError extends OrderbridgeError {
  readonly variables: string[];
  constructor(message: string, variables: string[], options?: { cause?: unknown }) {
    super(message, 'permanent', options);
    this.variables = variables;
  }
}

export function isPermanent(error: unknown): boolean {
  return error instanceof OrderbridgeError && error.category === 'permanent';
}

/** A short, log-safe description of any thrown value (no stack, no payload). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
