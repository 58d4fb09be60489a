import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { parseDocument } from 'yaml';
import { SERVERLESS_YML, type FunctionDefinition } from '../local/infra.ts';
import { REPO_ROOT } from '../local/stack.ts';
import { median, progress } from './stats.ts';

export interface BundleFigures {
  bundleBytes: number;
  initMs: number;
  /** raw medians, for the record */
  importMedianMs: number;
  /** the share of initMs spent loading the external AWS SDK packages the bundle imports */
  sdkInitMs: number;
  sdkPackages: string[];
  file: string;
}

interface EsbuildSettings {
  minify: boolean;
  target: string;
  platform: 'node';
  format: 'esm';
  external: string[];
  banner?: string;
}

/** serverless.yml custom.esbuild is the one source of the bundling options. */
function esbuildSettings(): EsbuildSettings {
  // The CloudFormation tags (!Ref …) are irrelevant here; yaml keeps them as plain values.
  const doc = parseDocument(readFileSync(SERVERLESS_YML, 'utf8'), { logLevel: 'silent' }).toJS() as { custom?: { esbuild?: Record<string, any> } };
  const custom = doc.custom?.esbuild ?? {};
  return {
    minify: custom.minify ?? true,
    target: custom.target ?? 'node22',
    platform: 'node',
    format: 'esm',
    external: custom.exclude ?? custom.external ?? ['@aws-sdk/*'],
    banner: custom.banner?.js,
  };
}

/** One minified ESM bundle per function, exactly as serverless-esbuild would build it. */
export async function buildBundles(functions: readonly FunctionDefinition[], outDir: string): Promise<Map<string, string>> {
  const settings = esbuildSettings();
  const files = new Map<string, string>();
  for (const fn of functions) {
    const outfile = join(outDir, `${fn.name}.mjs`);
    await build({
      entryPoints: [join(REPO_ROOT, fn.module)],
      outfile,
      bundle: true,
      minify: settings.minify,
      sourcemap: false,
      platform: settings.platform,
      format: settings.format,
      target: settings.target,
      external: settings.external,
      banner: settings.banner ? { js: settings.banner } : undefined,
      logLevel: 'error',
    });
    files.set(fn.name, outfile);
  }
  return files;
}

function timeNode(code: string, env: NodeJS.ProcessEnv, cwd: string): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, cwd, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node -e ${code} failed (${result.status}): ${result.stderr.slice(-1500)}`);
  return ms;
}

/**
 * Cold start: time `node -e "await import(bundle)"` in a fresh process, minus the same for
 * an empty script; median of `runs` alternating pairs so drift hits both sides alike.
 */
export function measureInit(files: Map<string, string>, env: NodeJS.ProcessEnv, runs = 7): Map<string, BundleFigures> {
  const figures = new Map<string, BundleFigures>();
  const cwd = REPO_ROOT;
  timeNode('', env, cwd); // warm the file cache for node itself
  for (const [name, file] of files) {
    const load = `await import(${JSON.stringify(pathToFileURL(file).href)});`;
    timeNode(load, env, cwd); // warm the file cache for the bundle and the AWS SDK
    // The AWS SDK is not bundled (Lambda's runtime ships it) but loading it is part of init.
    const sdkPackages = [...new Set([...readFileSync(file, 'utf8').matchAll(/from\s*["'](@aws-sdk\/[^"']+)["']/g)].map((m) => m[1]!))].sort();
    const sdkOnly = sdkPackages.map((name) => `await import(${JSON.stringify(name)});`).join('');
    const empty: number[] = [];
    const loaded: number[] = [];
    const sdk: number[] = [];
    for (let i = 0; i < runs; i++) {
      empty.push(timeNode('', env, cwd));
      loaded.push(timeNode(load, env, cwd));
      sdk.push(timeNode(sdkOnly, env, cwd));
    }
    const importMedianMs = median(loaded);
    const initMs = importMedianMs - median(empty);
    const sdkInitMs = median(sdk) - median(empty);
    const bundleBytes = statSync(file).size;
    figures.set(name, { file, bundleBytes, importMedianMs, initMs, sdkInitMs, sdkPackages });
    progress(`  ${name}: ${(bundleBytes / 1024).toFixed(1)} KB, init ${initMs.toFixed(1)} ms (AWS SDK ${sdkInitMs.toFixed(1)} ms of it)`);
  }
  return figures;
}
