import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument, type Tags } from 'yaml';

/**
 * Reads serverless.yml — the one source of the queue and table definitions, the event
 * sources and the schedules — so the local stack builds exactly what AWS gets.
 */
export const SERVERLESS_YML = fileURLToPath(new URL('../serverless.yml', import.meta.url));

interface CfnIntrinsic {
  fn: 'Ref' | 'GetAtt' | 'Sub';
  value: unknown;
}

const intrinsic = (fn: CfnIntrinsic['fn']) => ({
  tag: `!${fn}`,
  identify: () => false,
  resolve: (value: unknown) => ({ fn, value: typeof value === 'string' && fn === 'GetAtt' ? value.split('.') : value }) as CfnIntrinsic,
});
// yaml's custom tags: scalar and sequence forms of the CloudFormation short syntax.
const customTags: Tags = [
  { ...intrinsic('Ref') },
  { ...intrinsic('GetAtt') },
  { ...intrinsic('Sub') },
  { ...intrinsic('GetAtt'), collection: 'seq', resolve: (value: unknown) => ({ fn: 'GetAtt', value: (value as { toJSON(): unknown }).toJSON() }) },
] as unknown as Tags;

export interface QueueDefinition {
  logicalId: string;
  name: string;
  fifo: boolean;
  contentBasedDeduplication: boolean;
  visibilityTimeout?: number;
  messageRetentionPeriod?: number;
  redrive?: { deadLetterLogicalId: string; maxReceiveCount: number };
}

export interface TableDefinition {
  logicalId: string;
  tableName: string;
  attributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
  keySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  globalSecondaryIndexes: {
    IndexName: string;
    KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
    Projection: { ProjectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE' };
  }[];
  ttlAttribute?: string;
}

export type EventSource =
  | {
      type: 'sqs';
      queueLogicalId: string;
      batchSize: number;
      maximumBatchingWindow: number;
      /** the event source's maximumConcurrency (concurrent invocations), when set */
      maximumConcurrency?: number;
      reportBatchItemFailures: boolean;
    }
  | { type: 'httpApi'; method: string; path: string }
  | { type: 'schedule'; rate: string; everyMs: number; input?: unknown; /** false: the rule exists but never fires */ enabled: boolean };

export interface FunctionDefinition {
  name: string;
  /** module path relative to the repo root, e.g. functions/ingest.ts */
  module: string;
  exportName: string;
  timeoutSeconds: number;
  events: EventSource[];
}

export interface StackDefinition {
  service: string;
  stage: string;
  queues: QueueDefinition[];
  table: TableDefinition;
  functions: FunctionDefinition[];
}

type VariableContext = { service: string; stage: string; custom: Record<string, unknown>; env: NodeJS.ProcessEnv };

/** Innermost variables first, as osls does, so `${strToBool(${env:X, 'true'})}` resolves too. */
function resolveVariables(text: string, context: VariableContext): string {
  for (let previous = '', current = text, rounds = 0; ; rounds++) {
    if (current === previous || rounds > 5) return current;
    previous = current;
    current = resolveInnermost(current, context);
  }
}

function resolveInnermost(text: string, context: VariableContext): string {
  return text.replace(/\$\{([^{}]+)\}/g, (whole, expression: string) => {
    const [source, fallback] = splitFallback(expression);
    let value: unknown;
    const toBool = /^strToBool\((.*)\)$/.exec(source);
    if (toBool) return strToBool(toBool[1]!);
    if (source === 'self:service') value = context.service;
    else if (source === 'sls:stage' || source === 'self:provider.stage' || source.startsWith('opt:stage')) value = context.stage;
    else if (source.startsWith('self:custom.')) value = context.custom[source.slice('self:custom.'.length)];
    else if (source.startsWith('env:')) value = context.env[source.slice(4)];
    else if (source.startsWith('opt:')) value = undefined;
    else return whole; // CloudFormation's own ${AWS::Region} etc.
    if (value === undefined || value === '') value = fallback;
    return value === undefined ? '' : String(value);
  });
}

/** osls' strToBool: true/false/1/0 (any case); anything else fails, as packaging does. */
function strToBool(input: string): string {
  const value = input.trim().toLowerCase();
  if (value === 'true' || value === '1') return 'true';
  if (value === 'false' || value === '0') return 'false';
  throw new Error(`serverless.yml: strToBool expects true, false, 1 or 0, got "${input}"`);
}

function splitFallback(expression: string): [string, string | undefined] {
  const comma = expression.indexOf(',');
  if (comma < 0) return [expression.trim(), undefined];
  const fallback = expression.slice(comma + 1).trim().replace(/^['"]|['"]$/g, '');
  return [expression.slice(0, comma).trim(), fallback];
}

/** `rate(15 minutes)` → milliseconds. */
export function rateToMs(rate: string): number {
  const match = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(rate.trim());
  if (!match) throw new Error(`unsupported schedule expression ${rate} (use rate(N minutes|hours|days))`);
  const unit = match[2]!.startsWith('minute') ? 60_000 : match[2]!.startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(match[1]) * unit;
}

export function readStackDefinition(options: { stage?: string; file?: string; env?: NodeJS.ProcessEnv } = {}): StackDefinition {
  const stage = options.stage ?? 'local';
  const source = readFileSync(options.file ?? SERVERLESS_YML, 'utf8');
  const raw = parseDocument(source, { customTags }).toJS() as Record<string, any>;
  const service = String(raw.service);
  const custom = Object.fromEntries(
    Object.entries(raw.custom ?? {}).filter(([, v]) => typeof v === 'string'),
  ) as Record<string, unknown>;
  const context = { service, stage, custom: {} as Record<string, unknown>, env: options.env ?? process.env };
  for (const [key, value] of Object.entries(custom)) context.custom[key] = resolveVariables(String(value), context);
  const text = (value: unknown) => resolveVariables(String(value), context);

  const resources = raw.resources?.Resources ?? {};
  const queues: QueueDefinition[] = [];
  let table: TableDefinition | undefined;
  for (const [logicalId, resource] of Object.entries<any>(resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::SQS::Queue') {
      const redrive = props.RedrivePolicy;
      queues.push({
        logicalId,
        name: text(props.QueueName),
        fifo: props.FifoQueue === true,
        contentBasedDeduplication: props.ContentBasedDeduplication === true,
        visibilityTimeout: props.VisibilityTimeout,
        messageRetentionPeriod: props.MessageRetentionPeriod,
        redrive: redrive
          ? { deadLetterLogicalId: (redrive.deadLetterTargetArn as CfnIntrinsic).value instanceof Array ? ((redrive.deadLetterTargetArn as CfnIntrinsic).value as string[])[0]! : String((redrive.deadLetterTargetArn as CfnIntrinsic).value), maxReceiveCount: Number(redrive.maxReceiveCount) }
          : undefined,
      });
    } else if (resource.Type === 'AWS::DynamoDB::Table') {
      table = {
        logicalId,
        tableName: text(props.TableName),
        attributeDefinitions: props.AttributeDefinitions,
        keySchema: props.KeySchema,
        globalSecondaryIndexes: props.GlobalSecondaryIndexes ?? [],
        ttlAttribute: props.TimeToLiveSpecification?.Enabled ? props.TimeToLiveSpecification.AttributeName : undefined,
      };
    }
  }
  if (!table) throw new Error('serverless.yml declares no DynamoDB table');

  const functions: FunctionDefinition[] = Object.entries<any>(raw.functions ?? {}).map(([name, fn]) => {
    const [modulePath, exportName] = splitHandler(String(fn.handler));
    const events: EventSource[] = (fn.events ?? []).map((event: any): EventSource => {
      if (event.sqs) {
        const arn = event.sqs.arn as CfnIntrinsic;
        return {
          type: 'sqs',
          queueLogicalId: Array.isArray(arn.value) ? String(arn.value[0]) : String(arn.value),
          batchSize: Number(event.sqs.batchSize ?? 10),
          maximumBatchingWindow: Number(text(event.sqs.maximumBatchingWindow ?? 0)),
          ...(event.sqs.maximumConcurrency === undefined ? {} : { maximumConcurrency: maximumConcurrency(name, text(event.sqs.maximumConcurrency)) }),
          reportBatchItemFailures: event.sqs.functionResponseType === 'ReportBatchItemFailures',
        };
      }
      if (event.httpApi) {
        // `httpApi: '*'` is the $default route; `httpApi: 'POST /path'` the short form of a route.
        const http = typeof event.httpApi === 'string' ? parseRouteString(event.httpApi) : event.httpApi;
        return { type: 'httpApi', method: String(http.method ?? '*').toUpperCase(), path: String(http.path ?? '*') };
      }
      if (event.schedule) {
        const schedule = typeof event.schedule === 'string' ? { rate: event.schedule } : event.schedule;
        const enabled = schedule.enabled === undefined || text(schedule.enabled) !== 'false';
        return { type: 'schedule', rate: String(schedule.rate), everyMs: rateToMs(String(schedule.rate)), input: schedule.input, enabled };
      }
      throw new Error(`function ${name}: unsupported event ${Object.keys(event).join(',')}`);
    });
    return { name, module: `${modulePath}.ts`, exportName, timeoutSeconds: Number(fn.timeout ?? raw.provider?.timeout ?? 6), events };
  });

  return { service, stage, queues, table, functions };
}

/** `${env:ORDER_WORKER_CONCURRENCY, 5}` resolved from the same shell a deploy would see; SQS allows 2 to 1000. */
function maximumConcurrency(functionName: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 2 || parsed > 1000) {
    throw new Error(`function ${functionName}: maximumConcurrency must be a whole number from 2 to 1000, not "${value}" (serverless.yml names the variable that sets it)`);
  }
  return parsed;
}

function parseRouteString(route: string): { method: string; path: string } {
  const trimmed = route.trim();
  if (trimmed === '*') return { method: '*', path: '*' };
  const [method, path] = trimmed.split(/\s+/, 2);
  if (!method || !path) throw new Error(`unsupported httpApi route "${route}" (use '*' or 'METHOD /path')`);
  return { method: method === 'ANY' ? '*' : method, path };
}

function splitHandler(handler: string): [string, string] {
  const dot = handler.lastIndexOf('.');
  return [handler.slice(0, dot), handler.slice(dot + 1)];
}
