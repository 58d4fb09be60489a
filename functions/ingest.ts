import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { config, secret, webhookSecretsFrom } from '../lib/config/index.ts';
import { acceptWebhook } from '../lib/domain/ingest.ts';
import { describeError } from '../lib/domain/errors.ts';
import { logger } from '../lib/observability/logger.ts';
import { count, flushMetrics } from '../lib/observability/metrics.ts';
import { enqueueKlarCost, enqueueOrderChanged } from '../lib/queue/orders.ts';

config(); // validate the environment at cold start, naming any bad variable

async function ingest(event: APIGatewayProxyEventV2, context?: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const started = performance.now();
  const rawBody = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  try {
    const reply = await acceptWebhook(
      {
        method: event.requestContext?.http?.method ?? 'POST',
        path: event.rawPath ?? event.requestContext?.http?.path ?? '/',
        headers,
        query: event.queryStringParameters ?? {},
        rawBody,
        requestId: event.requestContext?.requestId ?? context?.awsRequestId,
      },
      {
        secrets: webhookSecretsFrom(await secret('WEBHOOK_SECRETS')),
        enqueueOrderChanged,
        enqueueKlarCost,
      },
    );
    count(reply.statusCode === 202 ? 'enqueued' : reply.statusCode === 503 ? 'enqueueFailed' : 'webhookRejected');
    logger.info('webhook', {
      outcome: reply.outcome,
      status: reply.statusCode,
      orderId: reply.orderId,
      orderCode: reply.orderCode,
      correlationId: reply.correlationId,
      latencyMs: Math.round(performance.now() - started),
    });
    return {
      statusCode: reply.statusCode,
      headers: { 'content-type': 'application/json', 'x-correlation-id': reply.correlationId, ...reply.headers },
      body: JSON.stringify(reply.body),
    };
  } catch (error) {
    // Only configuration problems land here (e.g. an unreadable SSM secret): never echo them.
    count('errors');
    logger.error('webhook failed', { error: describeError(error) });
    return { statusCode: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'internal error' }) };
  } finally {
    count('webhookReceived');
    flushMetrics();
  }
}

export const handler = middy(ingest);
