import type { Deployment } from '../../lib/config/deployment.ts';
import { readStackDefinition } from '../../local/infra.ts';

/**
 * The deployment the package-time check sees, built from the real serverless.yml (timeouts,
 * event sources, queues) for a stage and a deploy shell's settings; every function gets the
 * same environment, as provider.environment gives it.
 */
export function buildDeployment(options: { stage?: string; env?: Record<string, string> } = {}): Deployment {
  const stage = options.stage ?? 'ci';
  const env = options.env ?? {};
  const definition = readStackDefinition({ stage, env });
  return {
    stage,
    devStages: ['local', 'dev', 'ci'],
    functions: definition.functions.map((fn) => {
      const sqs = fn.events.find((event) => event.type === 'sqs');
      return {
        name: fn.name,
        timeoutSeconds: fn.timeoutSeconds,
        environment: { STAGE: stage, ...env },
        ...(sqs?.type === 'sqs' ? { sqs: { queueLogicalId: sqs.queueLogicalId, maximumBatchingWindowSeconds: sqs.maximumBatchingWindow } } : {}),
      };
    }),
    queues: definition.queues.map((queue) => ({ logicalId: queue.logicalId, visibilityTimeoutSeconds: queue.visibilityTimeout ?? 30 })),
  };
}
