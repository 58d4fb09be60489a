import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

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

/** A queue's messages waiting (visible) and received but not yet deleted (in flight). */
export async function queueCounts(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes } = await sqsClient().send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}
