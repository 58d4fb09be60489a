import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readStackDefinition } from '../../local/infra.ts';
import { buildApiGatewayV2Event, buildOrderWebhookBody, WEBHOOK_SECRET } from '../factories/webhooks.ts';

// SQS that accepts the connection and never answers (a dead connection, a partition): the
// ingest handler must answer the shop 503 — counted as enqueue-failed, so the shop retries —
// well before Lambda would kill it at its timeout.

const hung = { sockets: [] as Socket[], connections: 0 };
const server: Server = createServer((socket) => {
  hung.connections++;
  hung.sockets.push(socket); // read nothing, answer nothing
});

const INGEST_TIMEOUT_MS = readStackDefinition({ stage: 'ci' }).functions.find((fn) => fn.name === 'ingest')!.timeoutSeconds * 1000;

describe('ingest with an SQS endpoint that never answers', () => {
  let handler: (typeof import('../../functions/ingest.ts'))['handler'];
  let outcomes: ReturnType<typeof vi.spyOn>;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    // The handler validates its environment at import: set it first.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${port}`,
      AWS_REGION: 'eu-central-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      ORDERS_QUEUE_URL: `http://127.0.0.1:${port}/000000000000/orderbridge-test-orders.fifo`,
      WEBHOOK_SECRETS: WEBHOOK_SECRET,
    });
    const { reloadConfig } = await import('../../lib/config/index.ts');
    const { resetSqsClient } = await import('../../lib/queue/sqs.ts');
    reloadConfig();
    resetSqsClient();
    ({ handler } = await import('../../functions/ingest.ts'));
    const { metrics } = await import('../../lib/observability/metrics.ts');
    outcomes = vi.spyOn(metrics, 'addDimension');
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    for (const socket of hung.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers 503 within the ingest timeout and counts it as enqueue-failed', async () => {
    // prepare
    const event = buildApiGatewayV2Event(buildOrderWebhookBody());
    const started = Date.now();

    // act
    const response = await handler(event, { awsRequestId: 'hung-sqs-1', getRemainingTimeInMillis: () => INGEST_TIMEOUT_MS } as never);

    // assess: the SDK gave up on every attempt (it did reach the endpoint), in time
    const elapsed = Date.now() - started;
    expect(response.statusCode).toBe(503);
    expect(hung.connections).toBeGreaterThanOrEqual(1);
    expect(elapsed).toBeLessThan(INGEST_TIMEOUT_MS);
    expect(outcomes).toHaveBeenCalledWith('outcome', 'enqueue-failed');
    console.info(`hung SQS: 503 after ${elapsed} ms (ingest timeout ${INGEST_TIMEOUT_MS} ms), ${hung.connections} connection(s)`);
  }, 30_000);
});
