import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { config, secret, webhookSecretsFrom } from '../lib/config/index.ts';
import { acceptWebhook, type WebhookReply } from '../lib/webhook/accept.ts';
import { ConfigError, describeError } from '../lib/domain/errors.ts';
import { logger } from '../lib/observability/logger.ts';
import { count, flushMetrics, metrics, MetricUnit } from '../lib/observability/metrics.ts';
import { enqueueKlarCost, enqueueOrderChanged } from '../lib/queue/orders.ts';

config(); // validate the environment at cold start, naming any bad variable

async function ingest(event: APIGatewayProxyEventV2, context?: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const started = performance.now();
  // Bytes exactly as sent when API Gateway base64-encoded them: the signature covers bytes.
  const rawBody = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64') : event.body;
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  try {
    const secrets = webhookSecretsFrom(await secret('WEBHOOK_SECRETS'));
    // Fail loudly (5xx, so the shop retries) instead of answering every delivery 401.
    if (secrets.length === 0) throw new ConfigError('WEBHOOK_SECRETS is not set (nor WEBHOOK_SECRETS_PARAMETER)', ['WEBHOOK_SECRETS']);
    const reply = await acceptWebhook(
      {
        method: event.requestContext?.http?.method ?? 'POST',
        path: event.rawPath ?? event.requestContext?.http?.path ?? '/',
        headers,
        query: event.queryStringParameters ?? {},
        rawBody,
        requestId: event.requestContext?.requestId ?? context?.awsRequestId,
      },
      { secrets, enqueueOrderChanged, enqueueKlarCost },
    );
    countOutcome(reply.outcome);
    count(reply.statusCode === 202 ? 'enqueued' : reply.statusCode === 503 ? 'enqueueFailed' : 'webhookRejected');
    logReply(reply, started);
    return {
      statusCode: reply.statusCode,
      headers: { 'content-type': 'application/json', 'x-correlation-id': reply.correlationId, ...reply.headers },
      body: JSON.stringify(reply.body),
    };
  } catch (error) {
    // Only configuration problems land here (e.g. an unreadable SSM secret): never echo them.
    countOutcome('error');
    count('errors');
    logger.error('webhook', { outcome: 'error', status: 500, error: describeError(error), latencyMs: latency(started) });
    return { statusCode: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'internal error' }) };
  } finally {
    count('webhookReceived');
    flushMetrics();
  }
}

/** One line per request: ids, outcome, latency — never the body, headers or query (secrets, PII). */
function logReply(reply: WebhookReply, started: number): void {
  const line = {
    outcome: reply.outcome,
    status: reply.statusCode,
    orderId: reply.orderId,
    orderCode: reply.orderCode,
    correlationId: reply.correlationId,
    latencyMs: latency(started),
    ...(reply.cause === undefined ? {} : { error: describeError(reply.cause) }),
  };
  if (reply.statusCode >= 500) logger.error('webhook', line);
  else if (reply.statusCode >= 400) logger.warn('webhook', line);
  else logger.info('webhook', line);
}

/** `webhookOutcome` with an `outcome` dimension: one series per outcome, alarms can pick any. */
function countOutcome(outcome: string): void {
  if (process.env.ORDERBRIDGE_METRICS === 'off') return;
  const single = metrics.singleMetric();
  single.addDimension('outcome', outcome);
  single.addMetric('webhookOutcome', MetricUnit.Count, 1);
}

function latency(started: number): number {
  return Math.round(performance.now() - started);
}

export const handler = middy(ingest);
