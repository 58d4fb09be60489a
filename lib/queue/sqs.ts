import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * One SQS client per container. Locally the endpoint comes from AWS_ENDPOINT_URL_SQS
 * (set by the local stack), which the SDK reads by itself.
 */
let client: SQSClient | undefined;

export function sqsClient(): SQSClient {
  // Emulator queue URLs name a host that does not resolve: use the configured endpoint.
  client ??= new SQSClient({ maxAttempts: 3, useQueueUrlAsEndpoint: !process.env.AWS_ENDPOINT_URL_SQS });
  return client;
}

export function resetSqsClient(): void {
  client?.destroy();
  client = undefined;
}
