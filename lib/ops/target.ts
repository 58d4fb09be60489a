import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { sideOn } from '../config/env.ts';
import { OrderbridgeError } from '../domain/errors.ts';

/**
 * Where the CLI acts. First match wins:
 *   1. `--stage <name>`            AWS (resource names derived from the stage)
 *   2. `--local-state <file>`      the local stack that file describes
 *   3. `STAGE` (other than local)  AWS, as 1.
 *   4. `.orderbridge/local-stack.json` in this checkout, while its `npm start` runs
 *   5. the environment itself      HISTORY_TABLE_NAME + ORDERS_QUEUE_URL already set
 * This module imports nothing that reads the configuration: the target's environment is
 * applied before the lib modules that cache it are loaded.
 */

/** Written by `npm start` (local/stack.ts LOCAL_STATE_FILE; a unit test keeps them equal). */
export const DEFAULT_LOCAL_STATE_FILE = fileURLToPath(new URL('../../.orderbridge/local-stack.json', import.meta.url));

export const SERVICE = 'orderbridge';

export const localStateSchema = z.object({
  pid: z.number().int().positive(),
  url: z.string(),
  env: z.record(z.string(), z.string()),
  queues: z.object({ orders: z.string(), ordersDlq: z.string(), klarCosts: z.string(), klarCostsDlq: z.string() }),
});
export type LocalState = z.infer<typeof localStateSchema>;

export interface QueueUrls {
  orders?: string;
  ordersDlq?: string;
  klarCosts?: string;
  klarCostsDlq?: string;
}

export interface Target {
  kind: 'local' | 'stage' | 'env';
  /** one line for the operator: where commands act */
  description: string;
  /** applied to process.env before any lib module reads its configuration */
  env: Record<string, string>;
  queues: QueueUrls;
  /** the local stack's HTTP address (a stage's comes from its CloudFormation outputs) */
  apiUrl?: string;
  /** when the local stack started (its state file was written) */
  startedAt?: Date;
}

/** No target, or one that cannot be used: a usage problem (exit 2), never a crash. */
export class TargetError extends OrderbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

export interface TargetOptions {
  stage?: string;
  region?: string;
  localState?: string;
  env?: NodeJS.ProcessEnv;
  /** the state file `npm start` writes; tests point it elsewhere */
  defaultStateFile?: string;
}

/** Resource names of a deployed stage, exactly as serverless.yml names them. */
export function stageResourceNames(stage: string) {
  const prefix = `${SERVICE}-${stage}`;
  return {
    table: `${prefix}-history`,
    orders: `${prefix}-orders.fifo`,
    ordersDlq: `${prefix}-orders-dlq.fifo`,
    klarCosts: `${prefix}-klar-costs`,
    klarCostsDlq: `${prefix}-klar-costs-dlq`,
    ssmPrefix: `/${SERVICE}/${stage}`,
  };
}

export async function resolveTarget(options: TargetOptions = {}): Promise<Target> {
  const env = options.env ?? process.env;
  const explicitStage = options.stage?.trim();
  // `--stage local` means the local stack, as the local stack's own STAGE does.
  if (explicitStage && explicitStage !== 'local') return stageTarget(explicitStage, options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, env);
  if (options.localState) return localTarget(options.localState, readLocalState(options.localState));
  const envStage = env.STAGE?.trim();
  if (!explicitStage && envStage && envStage !== 'local') return stageTarget(envStage, options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, env);

  const stateFile = options.defaultStateFile ?? DEFAULT_LOCAL_STATE_FILE;
  let stale: string | undefined;
  if (existsSync(stateFile)) {
    let state: LocalState | undefined;
    try {
      state = localStateSchema.parse(JSON.parse(readFileSync(stateFile, 'utf8')));
    } catch {
      state = undefined;
    }
    if (state && isAlive(state.pid)) return localTarget(stateFile, state);
    stale = state
      ? ` (${stateFile} names pid ${state.pid}, which is not running: a stopped or crashed \`npm start\`)`
      : ` (${stateFile} is unreadable)`;
  }
  if (env.HISTORY_TABLE_NAME && env.ORDERS_QUEUE_URL) {
    return {
      kind: 'env',
      description: `the environment's resources (table ${env.HISTORY_TABLE_NAME})`,
      env: {},
      queues: { orders: env.ORDERS_QUEUE_URL, klarCosts: env.KLAR_COSTS_QUEUE_URL },
    };
  }
  throw new TargetError(
    `no Orderbridge to talk to${stale ?? ''}. Start the local stack with \`npm start\` in this checkout, ` +
      'or pass --stage <name> (or set STAGE) to use a deployed stage in AWS.',
  );
}

/** Reads a state file given explicitly: it must exist, parse and name a running process. */
export function readLocalState(file: string): LocalState {
  let state: LocalState;
  try {
    state = localStateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new TargetError(`cannot use local state file ${file}: ${reason}`, { cause: error });
  }
  if (!isAlive(state.pid)) throw new TargetError(`the local stack in ${file} (pid ${state.pid}) is not running: start it with \`npm start\``);
  return state;
}

function localTarget(file: string, state: LocalState): Target {
  return {
    kind: 'local',
    description: `local stack at ${state.url} (pid ${state.pid}, ${file})`,
    env: state.env,
    queues: state.queues,
    apiUrl: state.url,
    startedAt: startedAt(file),
  };
}

function startedAt(file: string): Date | undefined {
  try {
    return statSync(file).mtime;
  } catch {
    return undefined;
  }
}

/** Resolves a deployed stage's queue URLs by name (GetQueueUrl) with the usual AWS credentials. */
async function stageTarget(stage: string, region: string | undefined, ambient: NodeJS.ProcessEnv): Promise<Target> {
  if (!/^[A-Za-z0-9-]{1,40}$/.test(stage)) throw new TargetError(`invalid stage name "${stage}" (letters, digits and dashes)`);
  const names = stageResourceNames(stage);
  const client = new SQSClient(region ? { region } : {});
  try {
    const url = async (name: string) => {
      try {
        const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
        if (!QueueUrl) throw new Error('no URL in the answer');
        return QueueUrl;
      } catch (error) {
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        throw new TargetError(
          `cannot find queue ${name} for stage ${stage}${region ? ` in ${region}` : ''} (${reason}). ` +
            'Is the stage deployed, and are AWS credentials and region set (AWS_PROFILE, AWS_REGION or --region)?',
          { cause: error },
        );
      }
    };
    // One after the other, so a missing stage is reported by its first queue.
    const orders = await url(names.orders);
    const ordersDlq = await url(names.ordersDlq);
    const klarCosts = await url(names.klarCosts);
    const klarCostsDlq = await url(names.klarCostsDlq);
    const env: Record<string, string> = {
      STAGE: stage,
      HISTORY_TABLE_NAME: names.table,
      ORDERS_QUEUE_URL: orders,
      KLAR_COSTS_QUEUE_URL: klarCosts,
    };
    if (region) env.AWS_REGION = region;
    // As deployed: the shop's API secrets come from SSM unless given directly.
    for (const [name, parameter] of [
      ['VERSACOMMERCE_API_KEY', 'versacommerce-api-key'],
      ['VERSACOMMERCE_API_PASSWORD', 'versacommerce-api-password'],
    ] as const) {
      if (!ambient[name] && !ambient[`${name}_PARAMETER`]) env[`${name}_PARAMETER`] = `${names.ssmPrefix}/${parameter}`;
    }
    return {
      kind: 'stage',
      description: `AWS stage ${stage}${region ? ` (${region})` : ''}: table ${names.table}`,
      env,
      queues: { orders, ordersDlq, klarCosts, klarCostsDlq },
    };
  } finally {
    client.destroy();
  }
}

export { sideOn };

/** kill(pid, 0) probes without signalling; EPERM still means the process exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Applies the target's environment. Only when something changed are the cached
 * configuration and clients dropped: in-process tests share them with running workers.
 */
export async function applyTarget(target: Target, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const changed = Object.entries(target.env).filter(([key, value]) => env[key] !== value);
  if (changed.length === 0) return false;
  for (const [key, value] of changed) env[key] = value;
  const [{ reloadConfig, forgetSecrets }, { resetClients }, { resetSqsClient }, { resetDocumentClient }] = await Promise.all([
    import('../config/index.ts'),
    import('../clients/registry.ts'),
    import('../queue/sqs.ts'),
    import('../store/dynamo.ts'),
  ]);
  reloadConfig();
  forgetSecrets();
  resetClients();
  resetSqsClient();
  resetDocumentClient();
  return true;
}
