import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Message } from '@aws-sdk/client-sqs';
import { sqsEvent } from '../local/events.ts';
import { REPO_ROOT } from '../local/stack.ts';

export interface MemoryFigures {
  peakRssMb: number;
  sampledPeakRssMb: number;
  afterInitRssMb: number;
  batchMs: number;
  records: number;
  failures: number;
}

/** Runs in a fresh node: load the bundle (cold start), then one batch, then report memory. */
const DRIVER = `
import { readFileSync } from 'node:fs';
const [bundle, eventFile] = process.argv.slice(2);
let peak = process.memoryUsage().rss;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 2);
const { handler } = await import(bundle);
const afterInit = process.memoryUsage().rss;
const event = JSON.parse(readFileSync(eventFile, 'utf8'));
const context = { functionName: 'upload-klar-costs', awsRequestId: 'bench', getRemainingTimeInMillis: () => 60000 };
const started = performance.now();
const result = await handler(event, context);
const batchMs = performance.now() - started;
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
process.stdout.write('\\n' + JSON.stringify({ bench: true, maxRssBytes: process.resourceUsage().maxRSS * 1024, peak, afterInit, batchMs, failures: result?.batchItemFailures?.length ?? -1 }) + '\\n');
`;

/** A batch of `count` klar-cost records for orders nobody has seen, as SQS would deliver it. */
function klarBatch(count: number, firstOrderId: number, queueArn: string) {
  const now = new Date().toISOString();
  const messages: Message[] = Array.from({ length: count }, (_, i) => {
    const orderId = firstOrderId + i;
    const body = JSON.stringify({
      kind: 'klar-cost',
      orderId,
      orderCode: `M-${orderId}`,
      total: 20 + (i % 400) / 4,
      currency: '€',
      paymentType: i % 2 ? 'paypal' : 'cod',
      status: 'open',
      createdAt: '2026-01-15T10:00:00+01:00',
      receivedAt: now,
      correlationId: `bench-${orderId}`,
    });
    return { MessageId: randomUUID(), ReceiptHandle: randomUUID(), Body: body, Attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()) } };
  });
  return sqsEvent(messages, queueArn);
}

/**
 * Peak RSS of the upload-klar-costs bundle handling one 1,000-record batch in its own
 * process (the cold start included, as in a fresh Lambda container).
 */
export async function measureKlarBatchMemory(options: { bundle: string; workDir: string; env: NodeJS.ProcessEnv; queueArn: string; records?: number; firstOrderId?: number }): Promise<MemoryFigures> {
  const records = options.records ?? 1000;
  const driver = join(options.workDir, 'klar-memory-driver.mjs');
  const eventFile = join(options.workDir, 'klar-batch-event.json');
  writeFileSync(driver, DRIVER);
  writeFileSync(eventFile, JSON.stringify(klarBatch(records, options.firstOrderId ?? 5_000_000, options.queueArn)));
  const child = spawn(process.execPath, [driver, pathToFileURL(options.bundle).href, eventFile], { cwd: REPO_ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = stdout.split('\n').find((l) => l.startsWith('{"bench":true'));
  if (code !== 0 || !line) throw new Error(`memory driver failed (${code}): ${stderr.slice(-1500)} ${stdout.slice(-500)}`);
  const result = JSON.parse(line) as { maxRssBytes: number; peak: number; afterInit: number; batchMs: number; failures: number };
  const mb = (bytes: number) => bytes / (1024 * 1024);
  return {
    peakRssMb: mb(result.maxRssBytes),
    sampledPeakRssMb: mb(result.peak),
    afterInitRssMb: mb(result.afterInit),
    batchMs: result.batchMs,
    records,
    failures: result.failures,
  };
}
