import { createHash, randomUUID } from 'node:crypto';
import type { ZodError } from 'zod';
import {
  notificationEnvelopeSchema,
  orderEnvelopeSchema,
  orderIdFromSubject,
} from './versacommerce.ts';
import type { KlarCostMessage, OrderChangedMessage } from './messages.ts';
import { isAuthentic } from './webhook-auth.ts';

export const WEBHOOK_PATH = '/webhooks/versacommerce';
/** The SQS message limit; a bigger order could not be enqueued anyway. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface WebhookRequest {
  method: string;
  path: string;
  /** lower-case header names */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  rawBody: string;
  requestId?: string;
}

export interface WebhookReply {
  statusCode: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
  /** for the log line and metrics */
  outcome: string;
  orderId?: number;
  orderCode?: string;
  correlationId: string;
}

export interface IngestDeps {
  secrets: readonly string[];
  enqueueOrderChanged(message: OrderChangedMessage): Promise<unknown>;
  enqueueKlarCost(message: KlarCostMessage): Promise<unknown>;
  now?: () => Date;
}

interface FieldIssue {
  path: string;
  message: string;
}

function issuesOf(error: ZodError, prefix: string[] = []): FieldIssue[] {
  return error.issues.slice(0, 20).map((issue) => ({
    path: [...prefix, ...issue.path.map(String)].join('.') || '(body)',
    message: issue.message,
  }));
}

/**
 * The front door: authenticate, validate, normalise and enqueue. Pure apart from the
 * injected enqueue functions, so every status code is unit-testable.
 */
export async function acceptWebhook(request: WebhookRequest, deps: IngestDeps): Promise<WebhookReply> {
  const now = deps.now?.() ?? new Date();
  const correlationId = pickCorrelationId(request);
  const reject = (statusCode: number, outcome: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
    ({ statusCode, outcome, body, headers, correlationId }) satisfies WebhookReply;

  if (request.path.replace(/\/+$/, '') !== WEBHOOK_PATH) {
    return reject(404, 'not-found', { error: `no such endpoint: use POST ${WEBHOOK_PATH}` });
  }
  if (request.method.toUpperCase() !== 'POST') {
    return reject(405, 'method-not-allowed', { error: `method ${request.method} not allowed: use POST` }, { allow: 'POST' });
  }
  if (Buffer.byteLength(request.rawBody, 'utf8') > MAX_BODY_BYTES) {
    return reject(413, 'too-large', { error: `body exceeds ${MAX_BODY_BYTES} bytes (256 KiB)` });
  }
  const credentials = {
    signatureHeader: request.headers['x-orderbridge-signature'],
    tokenHeader: request.headers['x-orderbridge-token'],
    tokenQuery: request.query.token,
  };
  if (!isAuthentic(credentials, request.rawBody, deps.secrets, now)) {
    return reject(401, 'unauthorized', { error: 'unauthorized' });
  }
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') {
    return reject(415, 'unsupported-media-type', {
      error: `content type must be application/json, got ${contentType ? JSON.stringify(contentType) : 'none'}`,
    });
  }

  let body: unknown;
  try {
    body = JSON.parse(request.rawBody);
  } catch (error) {
    return reject(400, 'malformed-json', {
      error: 'malformed JSON',
      fields: [{ path: '(body)', message: error instanceof Error ? error.message : 'cannot parse' }],
    });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return reject(400, 'invalid', {
      error: 'body must be a JSON object: {"order":{…}} or a notification envelope',
      fields: [{ path: '(body)', message: 'expected an object' }],
    });
  }

  const deliveryId = pickDeliveryId(request);
  const receivedAt = now.toISOString();
  let orderMessage: OrderChangedMessage;
  let costMessage: KlarCostMessage;

  if ('order' in body) {
    const parsed = orderEnvelopeSchema.safeParse(body);
    if (!parsed.success) {
      return reject(400, 'invalid', { error: 'invalid order', fields: issuesOf(parsed.error) });
    }
    const order = parsed.data.order;
    orderMessage = {
      kind: 'order-changed',
      orderId: order.id,
      orderCode: order.code,
      order: (body as { order: Record<string, unknown> }).order,
      source: 'webhook',
      receivedAt,
      deliveryId,
      correlationId,
    };
    costMessage = {
      kind: 'klar-cost',
      orderId: order.id,
      orderCode: order.code,
      total: order.total,
      currency: order.currency,
      paymentType: order.payment_type ?? undefined,
      status: order.status,
      createdAt: order.created_at,
      receivedAt,
      correlationId,
    };
  } else if ('subject' in body) {
    const parsed = notificationEnvelopeSchema.safeParse(body);
    const orderId = parsed.success ? orderIdFromSubject(parsed.data.subject) : undefined;
    if (!parsed.success || orderId === undefined) {
      return reject(400, 'invalid', {
        error: 'invalid notification envelope',
        fields: parsed.success ? [{ path: 'subject', message: 'no order id' }] : issuesOf(parsed.error),
      });
    }
    // The envelope's body is not trusted as the order: the worker fetches it.
    orderMessage = { kind: 'order-changed', orderId, source: 'notification', receivedAt, deliveryId, correlationId };
    costMessage = { kind: 'klar-cost', orderId, receivedAt, correlationId };
  } else {
    return reject(400, 'invalid', {
      error: 'body must be {"order":{…}} or a notification envelope with a "subject"',
      fields: [{ path: 'order', message: 'required' }],
    });
  }

  const ids = { orderId: orderMessage.orderId, orderCode: orderMessage.orderCode };
  try {
    await Promise.all([deps.enqueueOrderChanged(orderMessage), deps.enqueueKlarCost(costMessage)]);
  } catch {
    // The shop retries a 503; a 202 would promise a message that may not be stored.
    return { statusCode: 503, outcome: 'enqueue-failed', body: { error: 'temporarily unavailable, retry later' }, headers: { 'retry-after': '5' }, correlationId, ...ids };
  }
  return {
    statusCode: 202,
    outcome: 'accepted',
    body: { accepted: true, orderId: ids.orderId, ...(ids.orderCode ? { orderCode: ids.orderCode } : {}) },
    correlationId,
    ...ids,
  };
}

const SAFE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

function pickCorrelationId(request: WebhookRequest): string {
  const header = request.headers['x-correlation-id'];
  if (header && SAFE_ID.test(header)) return header;
  return request.requestId && SAFE_ID.test(request.requestId) ? request.requestId : randomUUID();
}

/** The sender's delivery id when it has one, else the body itself: same content, same id. */
function pickDeliveryId(request: WebhookRequest): string {
  const header = request.headers['x-orderbridge-delivery'] ?? request.headers['x-delivery-id'];
  if (header && SAFE_ID.test(header)) return `delivery:${header}`;
  return `body:${createHash('sha256').update(request.rawBody).digest('hex')}`;
}
