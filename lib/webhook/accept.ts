import { createHash, randomUUID } from 'node:crypto';
import type { $ZodError } from 'zod/v4/core';
import {
  notificationEnvelopeSchema,
  orderEnvelopeSchema,
  orderIdFromSubject,
} from '../domain/versacommerce.ts';
import { orderChangedMessageSchema, type OrderChangedMessage } from '../domain/messages.ts';
import { probeBodySchema, type ProbeMessage } from '../domain/probe.ts';
import { encodeQueueMessage } from '../queue/encode.ts';
import { isAuthentic, type RawBody } from './auth.ts';

export const WEBHOOK_PATH = '/webhooks/versacommerce';
/** The SQS message limit; a bigger order could not be enqueued anyway. */
export const MAX_BODY_BYTES = 256 * 1024;
/** Room left in an SQS message for its attributes (names, types, values). */
const ATTRIBUTE_ALLOWANCE_BYTES = 1024;

export interface WebhookRequest {
  method: string;
  path: string;
  /** lower-case header names */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  /** exactly what the sender signed: bytes, or a string taken as its UTF-8 encoding */
  rawBody: RawBody;
  requestId?: string;
  /** chosen by the caller already (it needs it for a 500 too); else picked here */
  correlationId?: string;
}

export type WebhookOutcome =
  | 'accepted'
  /** `orderbridge check`'s probe, enqueued (not an order) */
  | 'probe'
  | 'not-found'
  | 'method-not-allowed'
  | 'too-large'
  | 'unauthorized'
  | 'unsupported-media-type'
  | 'malformed-json'
  | 'invalid'
  | 'enqueue-failed';

export interface WebhookReply {
  statusCode: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
  /** for the log line and metrics */
  outcome: WebhookOutcome;
  orderId?: number;
  orderCode?: string;
  probeId?: string;
  correlationId: string;
  /** why enqueueing failed, for the log line only (never the response) */
  cause?: unknown;
}

export interface IngestDeps {
  secrets: readonly string[];
  /** `body` is the message as encoded for the queue (measured here already) */
  enqueueOrderChanged(message: OrderChangedMessage, body: string): Promise<unknown>;
  /** `orderbridge check`'s probe: the same queue, recorded by the order worker, never sent upstream */
  enqueueProbe(message: ProbeMessage, body: string): Promise<unknown>;
  now?: () => Date;
}

export interface FieldIssue {
  path: string;
  message: string;
}

function issuesOf(error: $ZodError, pathOf: (path: string[]) => string = (path) => path.join('.')): FieldIssue[] {
  return error.issues.slice(0, 20).map((issue) => ({
    path: pathOf(issue.path.map(String)) || '(body)',
    message: issue.message,
  }));
}

/**
 * The front door: authenticate, validate, normalise and enqueue. Pure apart from the
 * injected enqueue functions, so every status code is unit-testable.
 *
 * Order of checks: route (404/405) → size (413, before hashing a huge body) → auth (401,
 * before telling a stranger anything about the body) → content type (415) → body (400).
 */
export async function acceptWebhook(request: WebhookRequest, deps: IngestDeps): Promise<WebhookReply> {
  const now = deps.now?.() ?? new Date();
  const correlationId = request.correlationId ?? correlationIdOf(request);
  const reject = (statusCode: number, outcome: WebhookOutcome, body: Record<string, unknown>, headers?: Record<string, string>) =>
    ({ statusCode, outcome, body, headers, correlationId }) satisfies WebhookReply;
  const invalid = (error: string, fields: FieldIssue[]) => reject(400, 'invalid', { error, fields });

  if (request.path.replace(/\/+$/, '') !== WEBHOOK_PATH) {
    return reject(404, 'not-found', { error: `no such endpoint: use POST ${WEBHOOK_PATH}` });
  }
  if (request.method.toUpperCase() !== 'POST') {
    return reject(405, 'method-not-allowed', { error: 'method not allowed: use POST' }, { allow: 'POST' });
  }
  if (byteLength(request.rawBody) > MAX_BODY_BYTES) {
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
      error: `content type must be application/json, got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'none'}`,
    });
  }

  const text = decodeUtf8(request.rawBody);
  if (text === undefined) {
    return reject(400, 'malformed-json', { error: 'malformed JSON', fields: [{ path: '(body)', message: 'not valid UTF-8' }] });
  }
  let body: unknown;
  try {
    body = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    // The parser's message quotes the body: never echo it.
    return reject(400, 'malformed-json', { error: 'malformed JSON', fields: [{ path: '(body)', message: 'not valid JSON' }] });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return invalid('body must be a JSON object: {"order":{…}} or a notification envelope', [{ path: '(body)', message: 'expected an object' }]);
  }

  const receivedAt = now.toISOString();
  // A probe is a body with nothing but `probe`: a shop's order or notification never is one.
  if ('probe' in body && !('order' in body) && !('subject' in body)) return acceptProbe(body, receivedAt, correlationId, deps);

  let orderMessage: OrderChangedMessage;
  let sourceOf: Record<string, string>;

  if ('order' in body) {
    const parsed = orderEnvelopeSchema.safeParse(body);
    if (!parsed.success) return invalid('invalid order', issuesOf(parsed.error));
    const order = parsed.data.order;
    orderMessage = {
      kind: 'order-changed',
      orderId: order.id,
      orderCode: order.code,
      // The snapshot as sent (unknown keys included): the worker parses it itself.
      order: (body as { order: Record<string, unknown> }).order,
      source: 'webhook',
      receivedAt,
      // The same content is the same state: a repeated delivery may be dropped.
      deliveryId: senderDeliveryId(request) ?? `body:${createHash('sha256').update(request.rawBody).digest('hex')}`,
      correlationId,
    };
    sourceOf = ORDER_FIELD_SOURCES;
  } else if ('subject' in body) {
    const parsed = notificationEnvelopeSchema.safeParse(body);
    if (!parsed.success) return invalid('invalid notification envelope', issuesOf(parsed.error));
    const orderId = orderIdFromSubject(parsed.data.subject);
    if (orderId === undefined) return invalid('invalid notification envelope', [{ path: 'subject', message: 'no order id' }]);
    // The envelope's body is not trusted as the order: the worker fetches it. Two identical
    // notifications can announce two changes, so only a delivery id may deduplicate them.
    const deliveryId = senderDeliveryId(request) ?? (request.requestId && SAFE_ID.test(request.requestId) ? `request:${request.requestId}` : `random:${randomUUID()}`);
    orderMessage = { kind: 'order-changed', orderId, source: 'notification', receivedAt, deliveryId, correlationId };
    sourceOf = { orderId: 'subject' };
  } else {
    return invalid('body must be {"order":{…}} or a notification envelope with a "subject"', [{ path: 'order', message: 'required' }]);
  }

  // The order schema is looser than the queue's (e.g. ids beyond 2^53): a message the queue
  // schema refuses is the sender's error, not a 503 that would make the shop retry forever.
  const checked = orderChangedMessageSchema.safeParse(orderMessage);
  if (!checked.success) {
    const pathOf = (path: string[]) => sourceOf[path[0] ?? ''] ?? '(body)';
    return invalid('invalid order', dedupeIssues(issuesOf(checked.error, pathOf)));
  }
  let encoded: string;
  try {
    encoded = encodeQueueMessage(checked.data);
  } catch {
    // JSON.stringify runs out of stack on absurd nesting that JSON.parse still accepts.
    return invalid('invalid order', [{ path: '(body)', message: 'nested too deeply' }]);
  }
  if (Buffer.byteLength(encoded) + ATTRIBUTE_ALLOWANCE_BYTES > MAX_BODY_BYTES) {
    return reject(413, 'too-large', { error: 'the order does not fit into one queue message (256 KiB)' });
  }

  const ids = { orderId: orderMessage.orderId, orderCode: orderMessage.orderCode };
  try {
    // One durable write: the order worker forwards the Klar cost itself.
    await deps.enqueueOrderChanged(checked.data, encoded);
  } catch (cause) {
    // The shop retries a 503; a 202 would promise a message that may not be stored.
    // A retry is harmless: orders.fifo deduplicates it and the workers are level-triggered.
    return {
      statusCode: 503,
      outcome: 'enqueue-failed',
      body: { error: 'temporarily unavailable, retry later' },
      headers: { 'retry-after': '5' },
      correlationId,
      cause,
      ...ids,
    };
  }
  return {
    statusCode: 202,
    outcome: 'accepted',
    body: { accepted: true, orderId: ids.orderId, ...(ids.orderCode ? { orderCode: ids.orderCode } : {}) },
    correlationId,
    ...ids,
  };
}

/**
 * `{"probe":{"id":…}}` from `orderbridge check` (authenticated like any webhook): one
 * message on orders.fifo that the order worker only records. 202 `{"accepted":true,"probe":<id>}`.
 */
async function acceptProbe(body: object, receivedAt: string, correlationId: string, deps: IngestDeps): Promise<WebhookReply> {
  const parsed = probeBodySchema.safeParse(body);
  if (!parsed.success) {
    return { statusCode: 400, outcome: 'invalid', body: { error: 'invalid probe', fields: issuesOf(parsed.error) }, correlationId };
  }
  const probeId = parsed.data.probe.id;
  const message: ProbeMessage = { kind: 'probe', probeId, receivedAt, correlationId };
  try {
    await deps.enqueueProbe(message, encodeQueueMessage(message));
  } catch (cause) {
    return { statusCode: 503, outcome: 'enqueue-failed', body: { error: 'temporarily unavailable, retry later' }, headers: { 'retry-after': '5' }, correlationId, cause, probeId };
  }
  return { statusCode: 202, outcome: 'probe', body: { accepted: true, probe: probeId }, correlationId, probeId };
}

/** Which part of the request each queue-message field came from, for 400 `fields`. */
const ORDER_FIELD_SOURCES: Record<string, string> = {
  orderId: 'order.id',
  orderCode: 'order.code',
  order: 'order',
};

function dedupeIssues(issues: FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function byteLength(body: RawBody): number {
  return typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(body: RawBody): string | undefined {
  if (typeof body === 'string') return body;
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

// API Gateway request ids are base64-like (`JKJaXmPLvHcESHA=`).
const SAFE_ID = /^[A-Za-z0-9._:=+/-]{1,100}$/;

/** The sender's `x-correlation-id` when it is safe to log, else the gateway's request id, else new. */
export function correlationIdOf(request: Pick<WebhookRequest, 'headers' | 'requestId'>): string {
  const header = request.headers['x-correlation-id'];
  if (header && SAFE_ID.test(header)) return header;
  return request.requestId && SAFE_ID.test(request.requestId) ? request.requestId : randomUUID();
}

/** The sender's own id of this delivery, when it sends one: a redelivery repeats it. */
function senderDeliveryId(request: WebhookRequest): string | undefined {
  const header = request.headers['x-orderbridge-delivery'] ?? request.headers['x-delivery-id'];
  return header && SAFE_ID.test(header) ? `delivery:${header}` : undefined;
}
