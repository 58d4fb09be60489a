import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, DescribeAlarmsCommand, type MetricAlarm } from '@aws-sdk/client-cloudwatch';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ListSubscriptionsByTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../bin/cli.ts';
import { isAuthentic } from '../../lib/webhook/auth.ts';
import {
  startKlarSimulator,
  startKomfortkasseSimulator,
  startVersaCommerceSimulator,
  type KlarSimulator,
  type KomfortkasseSimulator,
  type VersaCommerceSimulator,
} from '../../local/simulators/index.ts';

// `orderbridge check --stage prod` with every AWS call mocked (CloudFormation, Lambda, SSM,
// SQS, DynamoDB, SNS, CloudWatch) and the upstreams and the webhook as small local servers:
// the AWS-only checks (alarm subscription, alarm states) the local stack cannot show.

const REGION = 'eu-central-1';
const ACCOUNT_URL = `https://sqs.${REGION}.amazonaws.com/123456789012`;
const TOPIC_ARN = `arn:aws:sns:${REGION}:123456789012:orderbridge-prod-alarms`;
const DAY = 86_400_000;
const QUEUES = {
  orders: 'orderbridge-prod-orders.fifo',
  ordersDlq: 'orderbridge-prod-orders-dlq.fifo',
  klarCosts: 'orderbridge-prod-klar-costs',
  klarCostsDlq: 'orderbridge-prod-klar-costs-dlq',
};
/** The deployed secrets, as SSM holds them (the simulators expect these). */
const SSM_VALUES: Record<string, string> = {
  '/orderbridge/prod/webhook-secrets': 'old-webhook-secret,stage-webhook-secret',
  '/orderbridge/prod/komfortkasse-api-key': 'prod-komfortkasse-key',
  '/orderbridge/prod/klar-api-token': 'prod-klar-token',
  '/orderbridge/prod/versacommerce-api-key': 'prod-vc-key',
  '/orderbridge/prod/versacommerce-api-password': 'prod-vc-password',
};

const sqs = mockClient(SQSClient);
const ssm = mockClient(SSMClient);
const cfn = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);
const sns = mockClient(SNSClient);
const cloudWatch = mockClient(CloudWatchClient);
const dynamoDb = mockClient(DynamoDBClient);
const dynamo = mockClient(DynamoDBDocumentClient);

let komfortkasse: KomfortkasseSimulator;
let klar: KlarSimulator;
let shop: VersaCommerceSimulator;
let webhook: Server;
let webhookUrl: string;
/** probes the fake ingest accepted; the mocked table "records" them */
const accepted = new Set<string>();

const savedEnv = { ...process.env };
beforeAll(async () => {
  for (const name of Object.keys(process.env)) {
    if (/^(AWS_ENDPOINT_URL|STAGE$|HISTORY_TABLE_NAME$|ORDERS_QUEUE_URL$|KLAR_COSTS_QUEUE_URL$|DRY_RUN$|KOMFORTKASSE_|KLAR_|VERSACOMMERCE_|WEBHOOK_)/.test(name)) delete process.env[name];
  }
  Object.assign(process.env, { AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', UPSTREAM_RETRY_BASE_MS: '1' });
  // This shell's own (wrong) key must not be what is checked: the deployed SSM value is.
  process.env.KOMFORTKASSE_API_KEY = 'a-key-from-this-shell';
  [komfortkasse, klar, shop] = await Promise.all([
    startKomfortkasseSimulator({ apiKey: SSM_VALUES['/orderbridge/prod/komfortkasse-api-key'] }),
    startKlarSimulator({ token: SSM_VALUES['/orderbridge/prod/klar-api-token'] }),
    startVersaCommerceSimulator({ apiKey: SSM_VALUES['/orderbridge/prod/versacommerce-api-key'], password: SSM_VALUES['/orderbridge/prod/versacommerce-api-password'] }),
  ]);
  // The deployed ingest as far as check sees it: 401 without a valid signature, 202 for a probe.
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const ok = req.url === '/webhooks/versacommerce' && isAuthentic({ signatureHeader: req.headers['x-orderbridge-signature'] as string | undefined }, body, ['stage-webhook-secret']);
      const id = ok ? (JSON.parse(body) as { probe: { id: string } }).probe.id : undefined;
      if (id) accepted.add(id);
      res.writeHead(ok ? 202 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { accepted: true, probe: id } : { error: 'unauthorized' }));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  for (const client of [sqs, ssm, cfn, lambda, sns, cloudWatch, dynamoDb, dynamo]) client.restore();
  await Promise.all([komfortkasse.close(), klar.close(), shop.close(), new Promise((resolve) => webhook.close(resolve))]);
});

interface StageContent {
  createdDaysAgo?: number;
  subscriptionArn?: string;
  alarms?: MetricAlarm[];
  dlqDepth?: number;
  /** undefined = half a day ago; null = none on record */
  lastReconcileDaysAgo?: number | null;
}

/** A healthy deployed stage unless told otherwise. */
function stage(content: StageContent = {}) {
  const now = Date.now();
  cfn.on(DescribeStacksCommand).resolves({
    Stacks: [
      {
        StackName: 'orderbridge-prod',
        StackStatus: 'UPDATE_COMPLETE',
        CreationTime: new Date(now - (content.createdDaysAgo ?? 30) * DAY),
        Outputs: [
          { OutputKey: 'HttpApiUrl', OutputValue: webhookUrl },
          { OutputKey: 'AlarmTopicArn', OutputValue: TOPIC_ARN },
          { OutputKey: 'HistoryTableName', OutputValue: 'orderbridge-prod-history' },
        ],
      },
    ],
  });
  lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'orderbridge-prod-sync-order' }).resolves({
    Environment: {
      Variables: {
        STAGE: 'prod',
        DRY_RUN: 'false',
        KOMFORTKASSE_BASE_URL: komfortkasse.url,
        KLAR_BASE_URL: klar.url,
        VERSACOMMERCE_BASE_URL: shop.url,
        WEBHOOK_SECRETS_PARAMETER: '/orderbridge/prod/webhook-secrets',
        KOMFORTKASSE_API_KEY_PARAMETER: '/orderbridge/prod/komfortkasse-api-key',
        KLAR_API_TOKEN_PARAMETER: '/orderbridge/prod/klar-api-token',
        VERSACOMMERCE_API_KEY_PARAMETER: '/orderbridge/prod/versacommerce-api-key',
        VERSACOMMERCE_API_PASSWORD_PARAMETER: '/orderbridge/prod/versacommerce-api-password',
      },
    },
  });
  ssm.on(GetParameterCommand).callsFake((input) => ({ Parameter: { Name: input.Name, Value: SSM_VALUES[input.Name] } }));
  sqs.on(GetQueueUrlCommand).callsFake((input) => ({ QueueUrl: `${ACCOUNT_URL}/${input.QueueName}` }));
  sqs.on(GetQueueAttributesCommand).callsFake((input) => {
    const depth = input.QueueUrl === `${ACCOUNT_URL}/${QUEUES.ordersDlq}` ? (content.dlqDepth ?? 0) : 0;
    return { Attributes: { ApproximateNumberOfMessages: String(depth), ApproximateNumberOfMessagesNotVisible: '0' } };
  });
  dynamoDb.on(DescribeTableCommand, { TableName: 'orderbridge-prod-history' }).resolves({ Table: { TableStatus: 'ACTIVE' } });
  const runAt = new Date(now - (content.lastReconcileDaysAgo ?? 0.5) * DAY).toISOString();
  dynamo.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    if (input.IndexName === 'gsi2') return { Items: [] };
    if (input.ExpressionAttributeValues?.[':pk'] === 'RECONCILE#RUN') {
      if (content.lastReconcileDaysAgo === null) return { Items: [] };
      return { Items: [{ pk: 'RECONCILE#RUN', sk: `RUN#${runAt}`, at: runAt, since: runAt, checked: 10, enqueued: 0, needsAttention: 0, invalid: 0, dryRun: false, trigger: 'schedule' }] };
    }
    throw new Error(`unexpected query ${JSON.stringify(input)}`);
  });
  dynamo.on(BatchGetCommand).resolves({ Responses: {} });
  // The order worker records every probe ingest accepted.
  dynamo.on(GetCommand).callsFake((input) => {
    const id = String(input.Key.pk).replace(/^PROBE#/, '');
    return accepted.has(id) ? { Item: { pk: input.Key.pk, sk: 'PROBE', probeId: id, receivedAt: new Date().toISOString(), recordedAt: new Date().toISOString() } } : {};
  });
  sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC_ARN }).resolves({
    Subscriptions: [{ Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: TOPIC_ARN, SubscriptionArn: content.subscriptionArn ?? `${TOPIC_ARN}:5f1c2d3e` }],
  });
  cloudWatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: content.alarms ?? [] });
}

async function check() {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    ['check', '--stage', 'prod', '--probe-timeout', '5'],
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
    { env: process.env, defaultStateFile: '/nonexistent/orderbridge-state.json' },
  );
  return { code, stdout, stderr };
}

const ALL_SECRETS = [...Object.values(SSM_VALUES).flatMap((v) => v.split(',')), 'a-key-from-this-shell'];

beforeEach(() => {
  for (const client of [sqs, ssm, cfn, lambda, sns, cloudWatch, dynamoDb, dynamo]) client.reset();
});

describe('orderbridge check --stage (AWS mocked)', () => {
  it('passes on a healthy stage, using the deployed settings and SSM secrets, and prints no secret', async () => {
    // prepare
    stage();
    // act
    const result = await check();
    // assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`✓ stack orderbridge-prod: UPDATE_COMPLETE, API ${webhookUrl}`);
    expect(result.stdout).toContain('✓ Komfortkasse: API key accepted');
    expect(result.stdout).toContain('✓ alarm e-mail to ops@example.com: confirmed');
    expect(result.stdout).toContain('✓ alarms: none in ALARM');
    expect(result.stdout).toContain('✓ orderbridge-prod-orders-dlq.fifo: empty');
    expect(result.stdout).toMatch(/✓ reconcile: last completed /);
    expect(result.stdout).toContain(`${webhookUrl}/webhooks/versacommerce?token=<your webhook secret>`);
    expect(result.stdout).toMatch(/✓ All 14 checks passed\.\n$/);
    for (const secret of ALL_SECRETS) expect(result.stdout).not.toContain(secret);
    expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'orderbridge-prod-sync-order' });
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: '/orderbridge/prod/komfortkasse-api-key', WithDecryption: true });
  });

  it('fails when the alarm e-mail subscription is pending confirmation', async () => {
    // prepare
    stage({ subscriptionArn: 'PendingConfirmation' });
    // act
    const result = await check();
    // assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ {2}✗ alarm e-mail to ops@example\.com: PendingConfirmation, so alarms reach nobody yet\n {6}→ click the link in the mail/);
    expect(result.stdout).toMatch(/✗ 1 of 14 checks failed: alarm e-mail to ops@example\.com\n$/);
  });

  it('fails for an alarm of the stage in ALARM, naming it and its description', async () => {
    // prepare
    stage({
      alarms: [
        {
          AlarmName: 'orderbridge-prod-OrdersDLQDepthAlarm-1A2B3C',
          AlarmDescription: 'Messages parked in the orders DLQ (run `orderbridge redrive orders`)',
          StateValue: 'ALARM',
          AlarmActions: [TOPIC_ARN],
          MetricName: 'ApproximateNumberOfMessagesVisible',
        },
        // another stack's alarm in the same account is not this stage's business
        { AlarmName: 'someone-else-Alarm', StateValue: 'ALARM', AlarmActions: ['arn:aws:sns:eu-central-1:123456789012:other'] },
      ],
    });
    // act
    const result = await check();
    // assess
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('  ✗ alarm orderbridge-prod-OrdersDLQDepthAlarm-1A2B3C is in ALARM: Messages parked in the orders DLQ (run `orderbridge redrive orders`)');
    expect(result.stdout).not.toContain('someone-else');
    expect(result.stdout).toMatch(/✗ 1 of 14 checks failed: alarm orderbridge-prod-OrdersDLQDepthAlarm-1A2B3C is in ALARM\n$/);
  });

  it('fails for a DLQ that is not empty, saying how to redrive it', async () => {
    // prepare
    stage({ dlqDepth: 3 });
    // act
    const result = await check();
    // assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ {2}✗ orderbridge-prod-orders-dlq\.fifo: holds 3 message\(s\)\n {6}→ see why with `orderbridge redrive orders --dry-run`/);
    expect(result.stdout).toContain('✓ orderbridge-prod-klar-costs-dlq: empty');
    expect(result.stdout).toMatch(/✗ 1 of 14 checks failed: orderbridge-prod-orders-dlq\.fifo\n$/);
  });

  it('on a stage younger than 2 days, no reconcile yet and its "did not run" alarm are notes, not failures', async () => {
    // prepare
    const notRun: MetricAlarm = {
      AlarmName: 'orderbridge-prod-ReconcileNotRunAlarm-9Z8Y',
      StateValue: 'ALARM',
      AlarmActions: [TOPIC_ARN],
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: 'orderbridge-prod-reconcile' }],
    };
    stage({ createdDaysAgo: 0.25, lastReconcileDaysAgo: null, alarms: [notRun] });
    // act
    const young = await check();
    stage({ createdDaysAgo: 5, lastReconcileDaysAgo: null, alarms: [notRun] });
    const old = await check();
    // assess
    expect(young.code).toBe(0);
    expect(young.stdout).toMatch(/· alarm orderbridge-prod-ReconcileNotRunAlarm-9Z8Y is in ALARM: expected on a stage 6h 0m old/);
    expect(young.stdout).toMatch(/· reconcile: none yet \(the stage is 6h 0m old;/);
    expect(old.code).toBe(1);
    expect(old.stdout).toContain('✗ alarm orderbridge-prod-ReconcileNotRunAlarm-9Z8Y is in ALARM');
    expect(old.stdout).toMatch(/✗ reconcile: none completed on record\n/);
  });
});
