import { ConfigError } from '../domain/errors.ts';
import { KOMFORTKASSE_CALLS_PER_RECORD, RECORD_OVERHEAD_MS, UPSTREAM_CALLS_PER_RECORD, worstCaseRecordMs } from './budget.ts';
import { parseEnv, type Env } from './env.ts';
import { parseFeeSchedule } from './fee-schedule.ts';
import { parsePaymentTypeMap } from './payment-types.ts';

/**
 * The package-time check of a deployment (run by infra/orderbridge-plugin.cjs through
 * infra/check-deployment.ts before anything is built): the deployed environment passes the
 * same validation a cold start does, and the settings that must agree with each other and
 * with serverless.yml do. Each problem names the variable(s) and setting(s) to change.
 */

export interface DeploymentFunction {
  name: string;
  timeoutSeconds: number;
  /** its environment as packaged (values CloudFormation resolves are any string) */
  environment: Record<string, string>;
  /** the SQS queue (logical id) it consumes, and its batching window */
  sqs?: { queueLogicalId: string; maximumBatchingWindowSeconds: number };
}

export interface DeploymentQueue {
  logicalId: string;
  visibilityTimeoutSeconds: number;
}

export interface Deployment {
  stage: string;
  /** stages that may go without production settings (alarm e-mail, shop URL) */
  devStages: string[];
  functions: DeploymentFunction[];
  queues: DeploymentQueue[];
}

/** AWS Lambda's limit on one function's environment: keys and values together. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;
/** AWS's advice for an SQS event source: a visibility timeout of at least six times the function's timeout (plus the batching window). */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Every problem of the deployment, each once; empty when it may be packaged. */
export function checkDeployment(deployment: Deployment): string[] {
  const problems = new Set<string>();
  for (const fn of deployment.functions) {
    for (const problem of checkEnvironment(fn.environment, deployment)) problems.add(problem);
    for (const problem of checkEnvironmentSize(fn)) problems.add(problem);
    const env = parsedOrUndefined(fn.environment);
    if (env) for (const problem of checkBudgets(env, deployment)) problems.add(problem);
  }
  return [...problems];
}

/** The environment as a cold start validates it, and what a production stage needs. */
function checkEnvironment(environment: Record<string, string>, deployment: Deployment): string[] {
  const problems: string[] = [];
  const checks = [
    () => parseEnv(environment),
    // the JSON-valued settings, parsed as the workers parse them
    () => parsePaymentTypeMap(environment.PAYMENT_TYPE_MAP),
    () => parseFeeSchedule(environment.FEE_SCHEDULE),
  ];
  for (const check of checks) {
    try {
      check();
    } catch (error) {
      problems.push(messageOf(error));
    }
  }
  const production = !deployment.devStages.includes(deployment.stage);
  if (production && !environment.VERSACOMMERCE_BASE_URL?.trim()) {
    problems.push(
      `VERSACOMMERCE_BASE_URL is not set: stage "${deployment.stage}" needs the shop's host (e.g. VERSACOMMERCE_BASE_URL=https://myshop.versacommerce.de) ` +
        `to fetch the orders that notifications and reconcile name. Only the stages ${deployment.devStages.join(', ')} may go without it.`,
    );
  }
  return problems;
}

function checkEnvironmentSize(fn: DeploymentFunction): string[] {
  const bytes = (s: string) => Buffer.byteLength(s);
  const size = Object.entries(fn.environment).reduce((sum, [key, value]) => sum + bytes(key) + bytes(value), 0);
  if (size <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) return [];
  const largest = Object.entries(fn.environment)
    .sort(([, a], [, b]) => bytes(b) - bytes(a))
    .slice(0, 2)
    .map(([key, value]) => `${key} ${bytes(value)} bytes`);
  return [`${fn.name}'s environment is ${size} bytes, over Lambda's ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}: shorten the largest settings (${largest.join(', ')})`];
}

function parsedOrUndefined(environment: Record<string, string>): Env | undefined {
  try {
    return parseEnv(environment);
  } catch {
    return undefined; // reported by checkEnvironment
  }
}

/** The settings that must agree: deadlines within timeouts, visibility beyond them, the lease beyond a call. */
function checkBudgets(env: Env, deployment: Deployment): string[] {
  const problems: string[] = [];
  const fn = (name: string) => deployment.functions.find((f) => f.name === name);

  const syncOrder = fn('sync-order');
  if (syncOrder) {
    const worstCase = worstCaseRecordMs(env.UPSTREAM_TOTAL_TIMEOUT_MS);
    if (worstCase > syncOrder.timeoutSeconds * 1000) {
      problems.push(
        `UPSTREAM_TOTAL_TIMEOUT_MS (${env.UPSTREAM_TOTAL_TIMEOUT_MS} ms) does not fit sync-order's timeout (${syncOrder.timeoutSeconds} s, functions.sync-order.timeout): ` +
          `one record makes up to ${UPSTREAM_CALLS_PER_RECORD} upstream calls plus ${RECORD_OVERHEAD_MS / 1000} s of DynamoDB, ${worstCase / 1000} s in the worst case — ` +
          `lower UPSTREAM_TOTAL_TIMEOUT_MS to at most ${Math.floor((syncOrder.timeoutSeconds * 1000 - RECORD_OVERHEAD_MS) / UPSTREAM_CALLS_PER_RECORD)} or raise the timeout`,
      );
    }
  }
  const uploadKlarCosts = fn('upload-klar-costs');
  if (uploadKlarCosts && env.KLAR_TOTAL_TIMEOUT_MS > uploadKlarCosts.timeoutSeconds * 1000) {
    problems.push(
      `KLAR_TOTAL_TIMEOUT_MS (${env.KLAR_TOTAL_TIMEOUT_MS} ms) does not fit upload-klar-costs' timeout (${uploadKlarCosts.timeoutSeconds} s, functions.upload-klar-costs.timeout)`,
    );
  }

  // A message must not become visible again while its batch is still being processed.
  for (const consumer of deployment.functions) {
    if (!consumer.sqs) continue;
    const queue = deployment.queues.find((q) => q.logicalId === consumer.sqs!.queueLogicalId);
    if (!queue) continue;
    const window = consumer.sqs.maximumBatchingWindowSeconds;
    const needed = VISIBILITY_TIMEOUT_FACTOR * consumer.timeoutSeconds + window;
    if (queue.visibilityTimeoutSeconds < needed) {
      const windowSetting = consumer.name === 'upload-klar-costs' ? 'KLAR_BATCH_WINDOW_SECONDS' : `functions.${consumer.name} maximumBatchingWindow`;
      problems.push(
        `${queue.logicalId} VisibilityTimeout (${queue.visibilityTimeoutSeconds} s) must be at least ${VISIBILITY_TIMEOUT_FACTOR} × ${consumer.name}'s timeout ` +
          `(${consumer.timeoutSeconds} s, functions.${consumer.name}.timeout) + ${windowSetting} (${window} s) = ${needed} s: raise the VisibilityTimeout or lower the others`,
      );
    }
  }

  // A lease that expires while its holder's calls are still running lets a second worker in.
  const leaseMs = env.KOMFORTKASSE_LEASE_SECONDS * 1000;
  const underLeaseMs = KOMFORTKASSE_CALLS_PER_RECORD * env.UPSTREAM_TOTAL_TIMEOUT_MS + RECORD_OVERHEAD_MS;
  if (leaseMs < underLeaseMs) {
    problems.push(
      `KOMFORTKASSE_LEASE_SECONDS (${env.KOMFORTKASSE_LEASE_SECONDS} s) must outlive the ${KOMFORTKASSE_CALLS_PER_RECORD} Komfortkasse calls of one record ` +
        `(a refused first submission and its re-send), UPSTREAM_TOTAL_TIMEOUT_MS (${env.UPSTREAM_TOTAL_TIMEOUT_MS} ms) each, ` +
        `plus ${RECORD_OVERHEAD_MS / 1000} s to record the outcome: set KOMFORTKASSE_LEASE_SECONDS to at least ${Math.ceil(underLeaseMs / 1000)}`,
    );
  }
  return problems;
}

function messageOf(error: unknown): string {
  if (error instanceof ConfigError) return error.message.replace(/^Invalid configuration — /, '');
  return error instanceof Error ? error.message : String(error);
}
