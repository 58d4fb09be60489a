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
  constructor(
    upstream: string,
    message: string,
    category: ErrorCategory,
    details: { status?: number; upstreamMessage?: string; cause?: unknown } = {},
  ) {
    super(message, category, { cause: details.cause });
    this.upstream = upstream;
    this.status = details.status;
    this.upstreamMessage = details.upstreamMessage;
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
