/**
 * Webhook inputs as they reach the ingest function: VersaCommerce notification envelopes,
 * API Gateway v2 (HTTP API, payload 2.0) events, and the `acceptWebhook` request shape.
 * Overrides are shallow; an override of `undefined` removes the key.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { WebhookRequest } from '../../lib/webhook/accept.ts';
import { signatureHeader } from '../../lib/webhook/auth.ts';
import { applyOverrides, buildVersaCommerceOrder } from './orders.ts';

export const WEBHOOK_SECRET = 'unit-test-webhook-secret';
export const WEBHOOK_PATH = '/webhooks/versacommerce';

/** A VersaCommerce notification: the subject names the order; the XML body is informational. */
export function buildNotificationEnvelope(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return applyOverrides(
    {
      from: 'notifications@versacommerce.de',
      to: 'https://orderbridge.example/webhooks/versacommerce',
      subject: 'create order: 37578',
      shop_id: 953,
      subscription_id: 4711,
      domain: 'myshop.versacommerce.de',
      body: '<?xml version="1.0" encoding="UTF-8"?><order><id type="integer">37578</id><code>196-083-565</code></order>',
    },
    overrides,
  );
}

/** `{"order": …}` — the seed order unless overridden. */
export function buildOrderWebhookBody(orderOverrides: Record<string, unknown> = {}): { order: Record<string, unknown> } {
  return { order: buildVersaCommerceOrder(orderOverrides) };
}

/** `orderbridge check`'s probe body (lib/domain/probe.ts). */
export function buildProbeBody(id = '0b7e3c1a-5d2f-4e8b-9a61-2f4c8d9e7b10'): { probe: { id: string } } {
  return { probe: { id } };
}

export type Auth =
  | { kind: 'signature'; secret?: string; at?: Date }
  | { kind: 'token-header'; secret?: string }
  | { kind: 'token-query'; secret?: string }
  | { kind: 'none' };

export interface EventOptions {
  method?: string;
  path?: string;
  auth?: Auth;
  contentType?: string | null;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /** deliver the body base64-encoded, as API Gateway does for binary content types */
  base64?: boolean;
}

function authParts(auth: Auth, raw: string | Uint8Array): { headers: Record<string, string>; query: Record<string, string> } {
  switch (auth.kind) {
    case 'signature':
      return { headers: { 'x-orderbridge-signature': signatureHeader(auth.secret ?? WEBHOOK_SECRET, raw, auth.at) }, query: {} };
    case 'token-header':
      return { headers: { 'x-orderbridge-token': auth.secret ?? WEBHOOK_SECRET }, query: {} };
    case 'token-query':
      return { headers: {}, query: { token: auth.secret ?? WEBHOOK_SECRET } };
    case 'none':
      return { headers: {}, query: {} };
  }
}

function rawOf(body: unknown): string | Uint8Array {
  return typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
}

/** The request `acceptWebhook` sees; signed with WEBHOOK_SECRET unless told otherwise. */
export function buildWebhookRequest(body: unknown, options: EventOptions = {}): WebhookRequest {
  const rawBody = rawOf(body);
  const auth = authParts(options.auth ?? { kind: 'signature' }, rawBody);
  const contentType = options.contentType === undefined ? 'application/json' : options.contentType;
  return {
    method: options.method ?? 'POST',
    path: options.path ?? WEBHOOK_PATH,
    headers: { ...(contentType === null ? {} : { 'content-type': contentType }), ...auth.headers, ...lowerCase(options.headers ?? {}) },
    query: { ...auth.query, ...options.query },
    rawBody,
    requestId: 'req-unit-1',
  };
}

/** A real-shaped API Gateway v2 event for the ingest handler; signed unless told otherwise. */
export function buildApiGatewayV2Event(body: unknown, options: EventOptions = {}): APIGatewayProxyEventV2 {
  const rawBody = rawOf(body);
  const auth = authParts(options.auth ?? { kind: 'signature' }, rawBody);
  const method = options.method ?? 'POST';
  const path = options.path ?? WEBHOOK_PATH;
  const contentType = options.contentType === undefined ? 'application/json' : options.contentType;
  const query = { ...auth.query, ...options.query };
  const rawQueryString = new URLSearchParams(query).toString();
  const headers: Record<string, string> = {
    accept: '*/*',
    host: 'abc123.execute-api.eu-central-1.amazonaws.com',
    'user-agent': 'VersaCommerce-Webhooks/1.0',
    ...(contentType === null ? {} : { 'content-type': contentType }),
    ...auth.headers,
    ...lowerCase(options.headers ?? {}),
  };
  const bytes = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : Buffer.from(rawBody);
  const base64 = options.base64 ?? typeof rawBody !== 'string';
  const now = new Date();
  return {
    version: '2.0',
    routeKey: 'POST /webhooks/versacommerce',
    rawPath: path,
    rawQueryString,
    headers: { ...headers, 'content-length': String(bytes.length) },
    queryStringParameters: Object.keys(query).length ? query : undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-central-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: headers['user-agent']! },
      requestId: 'Req-Id-1=',
      routeKey: 'POST /webhooks/versacommerce',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: bytes.length === 0 ? undefined : base64 ? bytes.toString('base64') : bytes.toString('utf8'),
    isBase64Encoded: bytes.length > 0 && base64,
  };
}

function lowerCase(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
