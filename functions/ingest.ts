import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { config, secret, webhookSecretsFrom } from '../lib/config/index.ts';
import { ConfigError, describeError } from '../lib/domain/errors.ts';
import { lambdaHandler } from '../lib/observability/handler.ts';
import { logger } from '../lib/observability/logger.ts';
import { countWebhookOutcome } from '../lib/observability/metrics.ts';
import { enqueueOrderChanged, enqueueProbe } from '../lib/queue/orders.ts';
import { acceptWebhook, correlationIdOf, type WebhookReply, type WebhookRequest } from '../lib/webhook/accept.ts';

config(); // validate the environment at cold start, naming any bad variable

async function ingest(event: APIGatewayProxyEventV2, context?: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const started = performance.now();
  // Bytes exactly as sent when API Gateway base64-encoded them: the signature covers bytes.
  const rawBody = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64') : event.body;
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const request: WebhookRequest = {
    method: event.requestContext?.http?.method ?? 'POST',
    path: event.rawPath ?? event.requestContext?.http?.path ?? '/',
    headers,
    query: event.queryStringParameters ?? {},
    rawBody,
    requestId: event.requestContext?.requestId ?? context?.awsRequestId,
  };
  request.correlationId = correlationIdOf(request);
  try {
    const secrets = webhookSecretsFrom(await secret('WEBHOOK_SECRETS'));
    // Fail loudly (5xx, so the shop retries) instead of answering every delivery 401.
    if (secrets.length === 0) throw new ConfigError('WEBHOOK_SECRETS is not set (nor WEBHOOK_SECRETS_PARAMETER)', ['WEBHOOK_SECRETS']);
    const reply = await acceptWebhook(request, { secrets, enqueueOrderChanged, enqueueProbe });
    countWebhookOutcome(reply.outcome);
    logReply(reply, started);
    return {
      statusCode: reply.statusCode,
      headers: { 'content-type': 'application/json', 'x-correlation-id': reply.correlationId, ...reply.headers },
      body: JSON.stringify(reply.body),
    };
  } catch (error) {
    // Only configuration problems land here (e.g. an unreadable SSM secret): never echo them.
    countWebhookOutcome('error');
    logger.error('webhook', { outcome: 'error', status: 500, correlationId: request.correlationId, error: describeError(error), latencyMs: latency(started) });
    return {
      statusCode: 500,
      headers: { 'content-type': 'application/json', 'x-correlation-id': request.correlationId },
      body: JSON.stringify({ error: 'internal error' }),
    };
  }
}

/** One line per request: ids, outcome, latency — never the body, headers or query (secrets, PII). */
function logReply(reply: WebhookReply, started: number): void {
  const line = {
    outcome: reply.outcome,
    status: reply.statusCode,
    orderId: reply.orderId,
    orderCode: reply.orderCode,
    probeId: reply.probeId,
    correlationId: reply.correlationId,
    latencyMs: latency(started),
    ...(reply.cause === undefined ? {} : { error: describeError(reply.cause) }),
  };
  if (reply.statusCode >= 500) logger.error('webhook', line);
  else if (reply.statusCode >= 400) logger.warn('webhook', line);
  else logger.info('webhook', line);
}

function latency(started: number): number {
  return Math.round(performance.now() - started);
}

// No early-timeout signal: the one SQS send has its own SDK timeouts (lib/queue/sqs.ts), so a
// hung send ends as the counted 503 well before the function times out.
export const handler = lambdaHandler(ingest, { timeoutEarlyInMillis: 0 });
