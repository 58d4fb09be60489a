import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePath, bundleSettings, ensureBundles } from '../../local/bundles.ts';
import { lambdaContext } from '../../local/events.ts';
import { readStackDefinition } from '../../local/infra.ts';
import { FunctionTimeoutError } from '../../local/runtime.ts';
import { BundledFunction } from '../../local/sandbox.ts';
import { REPO_ROOT } from '../../local/stack.ts';
import { buildApiGatewayV2Event, buildOrderWebhookBody } from '../factories/webhooks.ts';

/*
 * What `npm start -- --bundled` runs: the bundles as `osls package` builds them (settings
 * from serverless.yml), rebuilt only when stale, each run in Lambda-like sandboxes (worker
 * threads on plain Node) that are killed at the function's timeout.
 */

const FUNCTIONS = readStackDefinition({ stage: 'local' }).functions;
const ingest = FUNCTIONS.find((fn) => fn.name === 'ingest')!;

/** A handler module standing in for a bundle: counts its invocations per sandbox. */
const PROBE_HANDLER = `
let invocations = 0;
export const handler = async (event, context) => {
  invocations++;
  if (event.spin) for (;;) {} // never yields: only killing the sandbox stops it
  if (event.fail) throw new TypeError('the probe failed');
  return { invocations, remainingMs: context.getRemainingTimeInMillis(), probeEnv: process.env.PROBE_ENV, requestId: context.awsRequestId, at: new Date(0) };
};
`;

describe('local bundles (npm start -- --bundled)', () => {
  let workDir: string;
  const started: BundledFunction[] = [];

  beforeAll(() => {
    // Inside the checkout, so the bundles' external @aws-sdk/* imports resolve from node_modules.
    mkdirSync(join(REPO_ROOT, '.orderbridge'), { recursive: true });
    workDir = mkdtempSync(join(REPO_ROOT, '.orderbridge', 'test-bundles-'));
  });

  afterAll(async () => {
    await Promise.all(started.map((fn) => fn.stop()));
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const sandboxed = (name: string, file: string, env: Record<string, string>) => {
    const fn = new BundledFunction(name, file, 'handler', () => env);
    started.push(fn);
    return fn;
  };

  it('bundles as serverless.yml custom.esbuild says: ESM .mjs for the runtime, createRequire banner, AWS SDK left to the runtime', () => {
    // prepare / act
    const settings = bundleSettings();

    // assess
    expect(settings.outputFileExtension).toBe('.mjs');
    expect(settings.esbuild).toMatchObject({ bundle: true, minify: true, format: 'esm', platform: 'node', target: 'node22', outExtension: { '.js': '.mjs' } });
    expect(settings.esbuild.external).toEqual(['@aws-sdk/*']);
    expect(settings.esbuild.banner?.js).toContain('createRequire(import.meta.url)');
    // serverless-esbuild's own options never reach esbuild
    expect(settings.esbuild).not.toHaveProperty('exclude');
    expect(settings.esbuild).not.toHaveProperty('outputFileExtension');
    expect(bundlePath(ingest, workDir)).toBe(join(workDir, 'functions', 'ingest.mjs'));
  });

  it('builds a missing bundle, reuses a fresh one, and rebuilds one older than its sources', async () => {
    // prepare
    const builds: string[][] = [];
    const onBuild = (names: string[]) => builds.push(names);

    // act: a fresh checkout has none
    const files = await ensureBundles([ingest], { outDir: workDir, onBuild });
    const file = files.get('ingest')!;
    const firstBuild = statSync(file).mtimeMs;
    await ensureBundles([ingest], { outDir: workDir, onBuild });
    // a bundle older than functions/ingest.ts (as after an edit of the source)
    const source = statSync(join(REPO_ROOT, ingest.module)).mtime;
    utimesSync(file, new Date(source.getTime() - 60_000), new Date(source.getTime() - 60_000));
    await ensureBundles([ingest], { outDir: workDir, onBuild });

    // assess
    expect(builds).toEqual([['ingest'], ['ingest']]);
    expect(statSync(file).mtimeMs).toBeGreaterThanOrEqual(firstBuild);
    const code = readFileSync(file, 'utf8');
    expect(code.startsWith(bundleSettings().esbuild.banner!.js!)).toBe(true);
    expect(code).toMatch(/from"@aws-sdk\/client-sqs"/);
    const manifest = JSON.parse(readFileSync(join(workDir, 'manifest.json'), 'utf8'));
    expect(manifest.inputs.ingest).toContain('functions/ingest.ts');
  }, 60_000);

  it('runs the real ingest bundle in a sandbox on plain Node (ESM, SDK from node_modules) and answers as Lambda would', async () => {
    // prepare
    const [file] = (await ensureBundles([ingest], { outDir: workDir })).values();
    const fn = sandboxed('ingest', file!, {
      WEBHOOK_SECRETS: 'bundled-secret',
      AWS_REGION: 'eu-central-1',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });

    // act
    const response = (await fn.handler(buildApiGatewayV2Event(buildOrderWebhookBody(), { auth: { kind: 'none' } }), lambdaContext('ingest', 10))) as {
      statusCode: number;
      body: string;
    };

    // assess
    expect(response.statusCode).toBe(401);
    expect(JSON.parse(response.body)).toEqual({ error: 'unauthorized' });
  }, 30_000);

  describe('sandboxes', () => {
    let probe: string;
    beforeAll(() => {
      probe = join(workDir, 'probe.mjs');
      writeFileSync(probe, PROBE_HANDLER);
    });

    it('keeps a sandbox warm between invocations, with its own environment and the context deadline; results travel as JSON', async () => {
      // prepare
      const fn = sandboxed('probe', probe, { PROBE_ENV: 'from-the-deployment' });

      // act
      const first = (await fn.handler({}, lambdaContext('probe', 5))) as Record<string, unknown>;
      const second = (await fn.handler({}, lambdaContext('probe', 5))) as Record<string, unknown>;

      // assess
      expect(first).toMatchObject({ invocations: 1, probeEnv: 'from-the-deployment', at: '1970-01-01T00:00:00.000Z' });
      expect(second).toMatchObject({ invocations: 2 });
      expect(first.requestId).not.toBe(second.requestId);
      expect(first.remainingMs).toBeGreaterThan(0);
      expect(first.remainingMs).toBeLessThanOrEqual(5_000);
      expect(fn.coldStarts).toBe(1);
      expect(process.env.PROBE_ENV).toBeUndefined();
    }, 30_000);

    it('kills a sandbox whose invocation outlives the timeout, even one that never yields; the next invocation starts cold', async () => {
      // prepare
      const fn = sandboxed('probe', probe, {});
      await fn.handler({}, lambdaContext('probe', 5));
      const started = Date.now();

      // act
      const timedOut = await fn.handler({ spin: true }, lambdaContext('probe', 1)).catch((error: unknown) => error);
      const elapsedMs = Date.now() - started;
      const after = (await fn.handler({}, lambdaContext('probe', 5))) as Record<string, unknown>;

      // assess
      expect(timedOut).toBeInstanceOf(FunctionTimeoutError);
      expect((timedOut as FunctionTimeoutError).message).toMatch(/^probe timed out after/);
      expect(elapsedMs).toBeGreaterThanOrEqual(900);
      expect(elapsedMs).toBeLessThan(10_000);
      expect(after.invocations).toBe(1); // a new sandbox: the spinning one is gone
      expect(fn.coldStarts).toBe(2);
    }, 30_000);

    it("reports a handler's error as Lambda does (errorType, errorMessage) and keeps the sandbox warm", async () => {
      // prepare
      const fn = sandboxed('probe', probe, {});

      // act
      const failed = await fn.handler({ fail: true }, lambdaContext('probe', 5)).catch((error: unknown) => error);
      const after = (await fn.handler({}, lambdaContext('probe', 5))) as Record<string, unknown>;

      // assess
      expect(failed).toBeInstanceOf(Error);
      expect(failed).toMatchObject({ name: 'TypeError', message: 'the probe failed' });
      expect(after.invocations).toBe(2);
      expect(fn.coldStarts).toBe(1);
    }, 30_000);

    it('fails the start of a sandbox whose bundle cannot load, naming the function', async () => {
      // prepare
      const broken = join(workDir, 'broken.mjs');
      writeFileSync(broken, "throw new Error('HISTORY_TABLE_NAME is required');\n");
      const fn = sandboxed('broken', broken, {});

      // act
      const failure = await fn.warm().catch((error: unknown) => error);

      // assess
      expect(String(failure)).toMatch(/broken: init failed — Error: HISTORY_TABLE_NAME is required/);
    }, 30_000);
  });
});
