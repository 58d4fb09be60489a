import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../bin/cli.ts';
import { reloadConfig } from '../../lib/config/index.ts';
import type { KlarCostMessage, OrderChangedMessage } from '../../lib/domain/messages.ts';
import { resolveTarget, TargetError } from '../../lib/ops/target.ts';
import { listAttempts } from '../../lib/store/attempts.ts';
import { getOrderRecord } from '../../lib/store/order-record.ts';
import type { RunningStack } from '../../local/stack.ts';
import { buildVersaCommerceAddress, buildVersaCommerceOrder } from '../factories/orders.ts';
import { bootStack, cliFor, drained, postWebhook, queueDepth, waitFor } from './harness.ts';

const BIN = fileURLToPath(new URL('../../bin/orderbridge.js', import.meta.url));

// Every CLI command against a real local stack (DynamoDB Local, SQS emulator, simulators,
// the real workers), run in-process through runCli, plus the real binary as a child process.
describe('orderbridge CLI against the local stack', () => {
  let stack: RunningStack;
  let stateFile: string;
  let cli: Awaited<ReturnType<typeof cliFor>>['cli'];
  let cleanup = () => {};

  beforeAll(async () => {
    stack = await bootStack();
    // What `npm start` writes, pointing at this test's stack.
    ({ cli, stateFile, cleanup } = await cliFor(stack));
  });
  afterAll(async () => {
    await stack?.stop();
    cleanup();
  });
  const historyJson = async (ref: string) => {
    const result = await cli('history', ref, '--json');
    return result.code === 0 ? JSON.parse(result.stdout) : undefined;
  };

  let nextId = 7000;
  const freshOrder = (overrides: Record<string, unknown> = {}) => {
    const id = nextId++;
    return buildVersaCommerceOrder({ id, code: `CLI-${id}`, ...overrides });
  };
  const kkSubmits = (code: string) => stack.simulators.komfortkasse!.requests.filter((r) => r.method === 'POST' && r.path === `/api/v2/order/${code}`);
  /** Posts the order as the shop would and waits until both workers have recorded it. */
  async function syncViaWebhook(order: Record<string, unknown> & { code: string }) {
    expect((await postWebhook(stack, { order })).status).toBe(202);
    return waitFor(async () => {
      const h = await historyJson(order.code);
      // The Klar worker records the state before it appends its attempt: wait for both.
      const klarLogged = h?.attempts.some((a: { target: string }) => a.target === 'klar');
      return h?.komfortkasse.state === 'submitted' && h.klar.state === 'uploaded' && klarLogged ? h : undefined;
    }, `order ${order.code} to sync`);
  }

  describe('history', () => {
    it('prints the recorded state and attempt log as exactly the DESIGN.md JSON shape', async () => {
      // prepare
      const order = freshOrder({ payment_type: 'invoice' });
      // act
      const json = await syncViaWebhook(order);
      // assess
      expect(Object.keys(json)).toEqual(['orderId', 'orderCode', 'komfortkasse', 'klar', 'attempts']);
      expect(json).toMatchObject({ orderId: order.id, orderCode: order.code });
      expect(json.komfortkasse).toEqual({
        state: 'submitted',
        payloadHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        referenceNumber: stack.simulators.komfortkasse!.orders.get(order.code)!.referenceNumber,
        paymentStatus: 'UNPAID',
      });
      expect(json.klar).toEqual({ state: 'uploaded', transactionCosts: 0 }); // invoice: fee 0, still uploaded
      const allowed = ['at', 'target', 'action', 'outcome', 'httpStatus', 'latencyMs', 'error'];
      for (const attempt of json.attempts) expect(allowed).toEqual(expect.arrayContaining(Object.keys(attempt)));
      expect(json.attempts).toEqual(
        expect.arrayContaining([
          { at: expect.any(String), target: 'komfortkasse', action: 'submit', outcome: 'success', httpStatus: 200, latencyMs: expect.any(Number) },
          { at: expect.any(String), target: 'klar', action: 'upload', outcome: 'success', httpStatus: expect.any(Number), latencyMs: expect.any(Number) },
        ]),
      );
      expect(json.attempts.map((a: { at: string }) => a.at)).toEqual([...json.attempts.map((a: { at: string }) => a.at)].sort());
      expect(kkSubmits(order.code)).toHaveLength(1);
    });

    it('prints a readable table, also when asked by the numeric order id', async () => {
      const order = freshOrder();
      await syncViaWebhook(order);
      // act
      const byCode = await cli('history', order.code);
      const byId = await cli('history', String(order.id));
      // assess
      expect(byCode.code).toBe(0);
      expect(byCode.stdout).toContain(`Order ${order.code} (id ${order.id})`);
      expect(byCode.stdout).toMatch(/Komfortkasse\s+submitted\s+reference K\d+ · payment UNPAID · payload [0-9a-f]{12}…/);
      expect(byCode.stdout).toMatch(/Klar\s+uploaded\s+transaction costs 2\.00 EUR/); // COD: fixed 2.00
      expect(byCode.stdout).toMatch(/Attempts \(2\):\n\s+AT\s+TARGET\s+ACTION\s+OUTCOME\s+HTTP\s+MS\s+ERROR/);
      expect(byCode.stdout).toMatch(/komfortkasse\s+submit\s+success\s+200/);
      expect(byId.stdout).toBe(byCode.stdout);
    });

    it('an unknown order is a clear message and exit code 1', async () => {
      const result = await cli('history', 'NO-SUCH-ORDER');
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/no history for order "NO-SUCH-ORDER"/);
    });

    it('shows the exact requests DRY_RUN=true workers would have sent, and sends none', async () => {
      // prepare
      const order = freshOrder({ customer_email: 'dry.run@example.org' });
      await drained(stack);
      process.env.DRY_RUN = 'true';
      reloadConfig();
      try {
        // act
        expect((await postWebhook(stack, { order })).status).toBe(202);
        await waitFor(async () => (await listAttempts(order.id)).filter((a) => a.outcome === 'dry-run').length === 2, 'both dry-run attempts');
      } finally {
        delete process.env.DRY_RUN;
        reloadConfig();
      }
      const table = await cli('history', order.code);
      const json = await historyJson(order.code);
      // assess
      expect(kkSubmits(order.code)).toHaveLength(0);
      expect(stack.simulators.klar!.requests.filter((r) => JSON.stringify(r.body ?? '').includes(`"${order.id}"`))).toHaveLength(0);
      expect(table.stdout).toContain(`would send POST ${stack.env.KOMFORTKASSE_BASE_URL}/order/${order.code}`);
      expect(table.stdout).toMatch(/would send POST http:\/\/127\.0\.0\.1:\d+\/06\.2024\/transaction-costs\/json/);
      expect(table.stdout).toContain('"customerEmail": "dry.run@example.org"');
      expect(json.komfortkasse.state).toBe('pending');
      const kkAttempt = json.attempts.find((a: { target: string }) => a.target === 'komfortkasse');
      expect(kkAttempt).toMatchObject({ action: 'submit', outcome: 'dry-run', request: { method: 'POST', body: { amount: 15.94, type: 'COD' } } });
    });
  });

  describe('needs-attention and replay', () => {
    it('lists an order Komfortkasse rejected with its message; replay after the fix syncs it', async () => {
      // prepare: Komfortkasse rejects this one order once
      const order = freshOrder();
      stack.simulators.versaCommerce!.addOrder(order);
      stack.simulators.komfortkasse!.injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 400, body: { error: 'amount does not match the invoice' } });
      expect((await postWebhook(stack, { order })).status).toBe(202);
      await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'needs-attention', 'needs-attention');
      // act
      const table = await cli('needs-attention');
      const json = JSON.parse((await cli('needs-attention', '--json')).stdout);
      // assess
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`${order.code}\\s+${order.id}\\s+needs-attention\\s+\\S+\\s+\\S+\\s+.*amount does not match the invoice`));
      expect(json).toContainEqual({
        orderId: order.id,
        orderCode: order.code,
        komfortkasse: { state: 'needs-attention', error: expect.stringContaining('amount does not match the invoice') },
        klar: { state: expect.any(String) },
        updatedAt: expect.any(String),
      });

      // act: the cause is fixed upstream (no more fault); replay the unchanged order
      const replay = await cli('replay', order.code);
      // assess
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain(`enqueued order ${order.code} (id ${order.id}) with the shop's current data`);
      expect(replay.stderr).toMatch(/orderbridge replay: using local stack at http/);
      await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'submitted', 'the replayed order to be submitted');
      const after = JSON.parse((await cli('needs-attention', '--json')).stdout);
      expect(after.map((e: { orderId: number }) => e.orderId)).not.toContain(order.id);
      expect(kkSubmits(order.code).map((r) => r.status)).toEqual([400, 200]);
    });

    it('replays without a snapshot when the shop cannot be reached from here; the worker fetches it', async () => {
      // prepare: an order only the shop knows (its webhook was lost); the CLI's fetch fails
      const order = freshOrder();
      stack.simulators.versaCommerce!.addOrder(order);
      stack.simulators.versaCommerce!.injectFault({ pathPrefix: `/api/orders/${order.id}.json`, status: 503, times: 3 });
      // act
      const replay = await cli('replay', String(order.id));
      // assess
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain(`enqueued order (code unknown) (id ${order.id}) without a snapshot`);
      expect(replay.stderr).toMatch(/could not fetch the order here: UpstreamError: VersaCommerce answered 503/);
      const synced = await waitFor(async () => {
        const r = await getOrderRecord(order.id);
        return r?.komfortkasse.state === 'submitted' && r.klar.state === 'uploaded' ? r : undefined;
      }, 'the worker to fetch and sync the order');
      expect(synced.orderCode).toBe(order.code);
    });

    it('replay of an order neither the history nor the shop knows fails with exit 1', async () => {
      const byCode = await cli('replay', 'NOPE-1');
      expect(byCode.code).toBe(1);
      expect(byCode.stderr).toMatch(/not in the history; pass the shop's numeric order id/);
      const byId = await cli('replay', '999999');
      expect(byId.code).toBe(1);
      expect(byId.stderr).toMatch(/order 999999 does not exist in the shop/);
      expect(await queueDepth(stack, stack.queues.orders.url)).toBe(0);
    });
  });

  describe('redrive', () => {
    /** Parks a message in a DLQ as SQS would after maxReceiveCount failures. */
    async function park(queueUrl: string, body: OrderChangedMessage | KlarCostMessage, groupId?: string) {
      await stack.sqsClient.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(body),
          MessageAttributes: { correlationId: { DataType: 'String', StringValue: body.correlationId } },
          ...(groupId ? { MessageGroupId: groupId, MessageDeduplicationId: `parked-${body.orderId}` } : {}),
        }),
      );
    }
    const orderChanged = (orderId: number): OrderChangedMessage => ({
      kind: 'order-changed',
      orderId,
      source: 'notification',
      receivedAt: new Date().toISOString(),
      deliveryId: `lost-${orderId}`,
      correlationId: `parked-${orderId}`,
    });

    it('moves dead-lettered order messages back (dry run first, then --max, then the rest) and the worker syncs them', async () => {
      // prepare: two orders whose messages ended in the DLQ while Komfortkasse was down
      const dlq = stack.queues.ordersDlq.url;
      const orders = [freshOrder(), freshOrder()];
      for (const order of orders) {
        stack.simulators.versaCommerce!.addOrder(order);
        await park(dlq, orderChanged(order.id), String(order.id));
      }

      // act 1: dry run
      const dry = await cli('redrive', 'orders', '--dry-run');
      // assess 1: listed, nothing moved, still there
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('dry run: would move 2 message(s) from orderbridge-local-orders-dlq.fifo back to orderbridge-local-orders.fifo');
      for (const order of orders) expect(dry.stdout).toMatch(new RegExp(`\\s${order.id}\\s+order-changed\\s+\\s*${order.id}`));
      expect(await queueDepth(stack, dlq)).toBe(2);
      expect(await getOrderRecord(orders[0]!.id)).toBeUndefined();

      // act 2: one message only
      const one = await cli('redrive', 'orders', '--max', '1');
      // assess 2
      expect(one.code).toBe(0);
      expect(one.stdout).toContain('moved 1 message(s) from orderbridge-local-orders-dlq.fifo back to orderbridge-local-orders.fifo');
      expect(one.stderr).toMatch(/redrive orders: orderbridge-local-orders-dlq\.fifo → orderbridge-local-orders\.fifo, ~2 message\(s\) waiting/);
      expect(one.stderr).toMatch(/redrive orders: moved 1 of ~2/);
      expect(one.stderr).toMatch(/stopped at --max 1/);
      expect(await queueDepth(stack, dlq)).toBe(1);

      // act 3: the rest
      const rest = await cli('redrive', 'orders');
      // assess 3: the DLQ is empty and the worker synced both orders
      expect(rest.code).toBe(0);
      expect(rest.stdout).toContain('moved 1 message(s)');
      expect(await queueDepth(stack, dlq)).toBe(0);
      for (const order of orders) {
        await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'submitted', `order ${order.id} to be submitted`);
        expect(kkSubmits(order.code)).toHaveLength(1);
        const attempts = await listAttempts(order.id);
        expect(attempts.find((a) => a.target === 'komfortkasse')?.correlationId).toBe(`parked-${order.id}`);
      }
    });

    it('moves dead-lettered Klar cost messages back to klar-costs', async () => {
      // prepare
      const order = freshOrder({ payment_type: 'paypal', total: '100.00' });
      await park(stack.queues.klarCostsDlq.url, {
        kind: 'klar-cost',
        orderId: order.id,
        orderCode: order.code,
        total: 100,
        currency: '€',
        paymentType: 'paypal',
        status: 'open',
        createdAt: String(order.created_at),
        receivedAt: new Date().toISOString(),
        correlationId: `parked-${order.id}`,
      });
      // act
      const result = await cli('redrive', 'klar-costs');
      // assess
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('moved 1 message(s) from orderbridge-local-klar-costs-dlq back to orderbridge-local-klar-costs');
      const record = await waitFor(async () => {
        const r = await getOrderRecord(order.id);
        return r?.klar.state === 'uploaded' ? r : undefined;
      }, 'the Klar cost to be uploaded');
      expect(record.klar.transactionCosts).toBe(2.84); // PayPal 2.49 % + 0.35
      expect(await queueDepth(stack, stack.queues.klarCostsDlq.url)).toBe(0);
    });

    it('stops after the current batch when interrupted, and loses no message', async () => {
      // prepare: twelve parked Klar cost messages
      const dlq = stack.queues.klarCostsDlq.url;
      const ids = Array.from({ length: 12 }, () => nextId++);
      for (const orderId of ids) {
        await park(dlq, { kind: 'klar-cost', orderId, total: 10, currency: 'EUR', paymentType: 'cod', status: 'open', createdAt: '2025-06-01T10:00:00Z', receivedAt: new Date().toISOString(), correlationId: `parked-${orderId}` });
      }
      const controller = new AbortController();
      let stdout = '';
      let stderr = '';
      // act: Ctrl-C as soon as the first batch is reported
      const code = await runCli(['redrive', 'klar-costs', '--local-state', stateFile], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: {
          write: (s: string) => {
            stderr += s;
            if (/moved \d+/.test(s)) controller.abort();
          },
        },
        signal: controller.signal,
      });
      // assess: what moved is gone from the DLQ, the rest is still there
      expect(code).toBe(0);
      const moved = Number(/moved (\d+) message/.exec(stdout)?.[1]);
      expect(moved).toBeGreaterThan(0);
      expect(moved).toBeLessThan(12);
      expect(stderr).toMatch(/interrupted; what is left stays in orderbridge-local-klar-costs-dlq/);
      expect(await queueDepth(stack, dlq)).toBe(12 - moved);
      const rest = await cli('redrive', 'klar-costs');
      expect(rest.stdout).toContain(`moved ${12 - moved} message(s)`);
      for (const orderId of ids) await waitFor(async () => (await getOrderRecord(orderId))?.klar.state === 'uploaded', `order ${orderId}'s cost`);
    });

    it('an empty DLQ moves nothing', async () => {
      const result = await cli('redrive', 'klar-costs');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('moved 0 message(s)');
    });
  });

  describe('klar-state', () => {
    it('says when nothing was recorded, then shows the poller readings', async () => {
      // prepare
      const before = await cli('klar-state');
      expect(before.code).toBe(0);
      expect(before.stdout).toMatch(/No Klar state recorded yet/);
      // act
      await stack.fireSchedule('poll-klar-state');
      await stack.fireSchedule('poll-klar-state');
      const table = await cli('klar-state');
      const json = JSON.parse((await cli('klar-state', '--json', '--limit', '1')).stdout);
      // assess
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^Klar import OK as of \d{4}-/);
      expect(table.stdout).toMatch(/READ AT\s+STATUS\s+TOTAL\s+LAST BATCH\s+LAST SUCCESS\s+LAST FAILURE\s+ENDPOINT/);
      expect(table.stdout.trim().split('\n')).toHaveLength(4); // summary, header, two readings
      expect(json).toHaveLength(1);
      expect(json[0]).toMatchObject({ endpoint: '/transaction-costs/state', failing: false, lastSuccess: expect.any(String), total: expect.any(Number) });
    });
  });

  describe('forget', () => {
    it("removes an order's personal data from the history and keeps the anonymous counts", async () => {
      // prepare: a dry-run order (whose history holds the would-be request with PII) and an error
      const order = freshOrder({
        customer_email: 'forget.me@example.org',
        billing_address: buildVersaCommerceAddress('billing', { firstname: 'Vergiss', lastname: 'Mich' }),
      });
      await drained(stack);
      process.env.DRY_RUN = 'true';
      reloadConfig();
      try {
        expect((await postWebhook(stack, { order })).status).toBe(202);
        await waitFor(async () => (await listAttempts(order.id)).filter((a) => a.outcome === 'dry-run').length === 2, 'dry-run attempts');
      } finally {
        delete process.env.DRY_RUN;
        reloadConfig();
      }
      stack.simulators.komfortkasse!.injectFault({ pathPrefix: `/api/v2/order/${order.code}`, status: 400, body: { error: 'customerEmail forget.me@example.org rejected' } });
      expect((await postWebhook(stack, { order }, { headers: { 'x-orderbridge-delivery': `again-${order.id}` } })).status).toBe(202);
      await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'needs-attention', 'needs-attention');
      const before = await historyJson(order.code);
      expect(before.komfortkasse.error).toContain('forget.me@example.org');
      expect(JSON.stringify(before.attempts)).toContain('forget.me@example.org');
      // act
      const result = await cli('forget', order.code);
      // assess
      expect(result.stderr).toMatch(/^orderbridge forget: using local stack at http\S+ \(pid \d+, .*\)\n$/);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`forgot the personal data of order ${order.code} (id ${order.id})`);
      expect(result.stdout).toContain('3 attempt(s)');
      const after = await cli('history', order.code);
      const json = await historyJson(order.code);
      expect(after.stdout).not.toMatch(/forget\.me|Vergiss|Mich|would send/);
      expect(json.komfortkasse).toEqual({ state: 'needs-attention', payloadHash: before.komfortkasse.payloadHash });
      expect(json.attempts.map((a: { outcome: string }) => a.outcome).sort()).toEqual(['dry-run', 'dry-run', 'failed-permanent']);
      for (const attempt of json.attempts) {
        expect(attempt).not.toHaveProperty('request');
        expect(attempt).not.toHaveProperty('error');
        expect(attempt).toMatchObject({ at: expect.any(String), target: expect.any(String), action: expect.any(String) });
      }
      const raw = JSON.stringify(await listAttempts(order.id));
      expect(raw).not.toContain('example.org');
    });

    it('an unknown order is exit code 1', async () => {
      const result = await cli('forget', 'NOPE-2');
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/no history for order "NOPE-2"/);
    });
  });

  describe('where it connects', () => {
    it("uses the state file `npm start` writes, without flags, and the environment's resources", async () => {
      const order = freshOrder();
      await syncViaWebhook(order);
      const run = async (context: { env: NodeJS.ProcessEnv; defaultStateFile: string }) => {
        let stdout = '';
        const code = await runCli(['history', order.code, '--json'], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => true } }, context);
        return { code, json: code === 0 ? JSON.parse(stdout) : undefined };
      };
      // act: the live state file, no flags
      const viaStateFile = await run({ env: { ...process.env }, defaultStateFile: stateFile });
      // act: no state file, but the environment names table and queues (as in Lambda)
      const viaEnv = await run({ env: { ...process.env }, defaultStateFile: join(dirname(stateFile), 'absent.json') });
      // assess
      expect(viaStateFile).toMatchObject({ code: 0, json: { orderCode: order.code } });
      expect(viaEnv).toMatchObject({ code: 0, json: { orderCode: order.code } });
    });

    it('finds a dead-letter queue by the redrive policy when only the source queue is known', async () => {
      // prepare: the environment names the queues (no DLQ URLs), as inside a Lambda
      const order = freshOrder();
      stack.simulators.versaCommerce!.addOrder(order);
      await stack.sqsClient.send(
        new SendMessageCommand({
          QueueUrl: stack.queues.ordersDlq.url,
          MessageBody: JSON.stringify({ kind: 'order-changed', orderId: order.id, source: 'notification', receivedAt: new Date().toISOString(), deliveryId: `d-${order.id}`, correlationId: `c-${order.id}` }),
          MessageGroupId: String(order.id),
          MessageDeduplicationId: `d-${order.id}`,
        }),
      );
      let stdout = '';
      // act
      const code = await runCli(['redrive', 'orders'], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => true } }, {
        env: { ...process.env },
        defaultStateFile: join(dirname(stateFile), 'absent.json'),
      });
      // assess
      expect(code).toBe(0);
      expect(stdout).toContain('moved 1 message(s) from orderbridge-local-orders-dlq.fifo back to orderbridge-local-orders.fifo');
      await waitFor(async () => (await getOrderRecord(order.id))?.komfortkasse.state === 'submitted', 'the redriven order to sync');
    });

    it('resolves a stage by its queue names (GetQueueUrl) and table name', async () => {
      // prepare: a "deployed" stage's queues in the SQS emulator
      const names = ['orderbridge-ci-orders.fifo', 'orderbridge-ci-orders-dlq.fifo', 'orderbridge-ci-klar-costs', 'orderbridge-ci-klar-costs-dlq'];
      const urls = [];
      for (const name of names) {
        const fifo = name.endsWith('.fifo') ? { FifoQueue: 'true' } : undefined;
        urls.push((await stack.sqsClient.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }))).QueueUrl);
      }
      // act
      const target = await resolveTarget({ stage: 'ci', env: process.env });
      // assess
      expect(target.kind).toBe('stage');
      expect(target.env).toMatchObject({ STAGE: 'ci', HISTORY_TABLE_NAME: 'orderbridge-ci-history', ORDERS_QUEUE_URL: urls[0], KLAR_COSTS_QUEUE_URL: urls[2] });
      expect(target.env.VERSACOMMERCE_API_KEY_PARAMETER).toBeUndefined(); // the key is set in this environment
      expect(target.queues).toEqual({ orders: urls[0], ordersDlq: urls[1], klarCosts: urls[2], klarCostsDlq: urls[3] });
      await expect(resolveTarget({ stage: 'missing', env: process.env })).rejects.toThrow(TargetError);
      await expect(resolveTarget({ stage: 'missing', env: process.env })).rejects.toThrow(/cannot find queue orderbridge-missing-orders\.fifo for stage missing/);
    });
  });

  describe('the real binary', () => {
    function runBin(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        // Executed directly: the shebang and the executable bit are part of what is tested.
        const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    }

    it('is executable and prints its help', async () => {
      accessSync(BIN, constants.X_OK);
      const result = await runBin(['--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^orderbridge — operate Orderbridge/);
      for (const command of ['status', 'history', 'replay', 'redrive', 'reconcile', 'klar-state', 'needs-attention', 'forget']) {
        expect(result.stdout).toContain(`  ${command}`);
      }
      expect(result.stderr).toBe('');
      const sub = await runBin(['redrive', '--help']);
      expect(sub.code).toBe(0);
      expect(sub.stdout).toMatch(/^Usage: orderbridge redrive <orders\|klar-costs> \[--max N\] \[--dry-run\]/);
    });

    it('exits 2 on a bad date and reads this stack through --local-state', async () => {
      const order = freshOrder();
      await syncViaWebhook(order);
      // act
      const bad = await runBin(['reconcile', '--since', '2025-31-12']);
      const history = await runBin(['history', order.code, '--json', '--local-state', stateFile], { PATH: process.env.PATH });
      // assess
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/invalid --since date "2025-31-12"/);
      expect(history.code).toBe(0);
      expect(JSON.parse(history.stdout)).toMatchObject({ orderId: order.id, orderCode: order.code, komfortkasse: { state: 'submitted' } });
    });
  });
});
