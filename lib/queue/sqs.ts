import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

/**
 * One SQS client per container. Locally the endpoint comes from AWS_ENDPOINT_URL_SQS
 * (set by the local stack), which the SDK reads by itself.
 */
let client: SQSClient | undefined;

/**
 * Per attempt: SQS answers a send in milliseconds, so an attempt still open after this is
 * hung (a dead connection, a network partition). Without it the SDK waits forever and ingest
 * ends as a Lambda timeout instead of the counted 503 the shop retries: three attempts
 * (2 s each, plus the SDK's backoff of well under a second) end after ~6.3 s, inside
 * ingest's 10 s. Long enough for redrive's 1-second ReceiveMessage polls.
 */
export const SQS_CONNECTION_TIMEOUT_MS = 1_000;
export const SQS_REQUEST_TIMEOUT_MS = 2_000;
export const SQS_MAX_ATTEMPTS = 3;

export function sqsClient(): SQSClient {
  // Emulator queue URLs name a host that does not resolve: use the configured endpoint.
  client ??= new SQSClient({
    maxAttempts: SQS_MAX_ATTEMPTS,
    // throwOnRequestTimeout: without it the SDK only logs a warning and keeps waiting.
    requestHandler: { connectionTimeout: SQS_CONNECTION_TIMEOUT_MS, requestTimeout: SQS_REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
    useQueueUrlAsEndpoint: !process.env.AWS_ENDPOINT_URL_SQS,
  });
  return client;
}

export function resetSqsClient(): void {
  client?.destroy();
  client = undefined;
}

/** A queue's messages waiting (visible) and received but not yet deleted (in flight). */
export async function queueCounts(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes } = await sqsClient().send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}
