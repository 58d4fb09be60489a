import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { parseDocument } from 'yaml';
import { SERVERLESS_YML, type FunctionDefinition } from './infra.ts';

/**
 * The function bundles exactly as `osls package` builds them (serverless-esbuild with the
 * options of serverless.yml `custom.esbuild`), for `npm start -- --bundled`, the template
 * test and the benchmark. serverless.yml stays the one source of the options: this module
 * only applies serverless-esbuild's own defaults and drops the options that are the
 * plugin's, not esbuild's — as serverless-esbuild 1.57 does before it calls esbuild.
 */

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Where the local bundles land (git-ignored), laid out as in the zips: `functions/ingest.mjs`. */
export const LOCAL_BUNDLE_DIR = join(REPO_ROOT, '.orderbridge', 'bundles');

/** serverless-esbuild's defaults (its index.js), below serverless.yml's own settings. */
const PLUGIN_DEFAULTS: Record<string, unknown> = { bundle: true, target: 'node18', external: [], exclude: ['aws-sdk'], platform: 'node', outputFileExtension: '.js' };

/** Options serverless-esbuild consumes itself and removes before calling esbuild (its bundle.js). */
const PLUGIN_ONLY_OPTIONS = [
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
];

export interface BundleSettings {
  /** esbuild's options, as serverless-esbuild passes them (without entry points and output) */
  esbuild: BuildOptions;
  /** `.mjs` for ESM, as on Lambda */
  outputFileExtension: string;
}

/** The bundling settings of serverless.yml (`custom.esbuild`, the runtime's Node major as the default target). */
export function bundleSettings(file = SERVERLESS_YML): BundleSettings {
  // The CloudFormation tags (!Ref …) do not matter here; yaml keeps them as plain values.
  const doc = parseDocument(readFileSync(file, 'utf8'), { logLevel: 'silent' }).toJS() as {
    provider?: { runtime?: string };
    custom?: { esbuild?: Record<string, unknown> };
  };
  const runtimeTarget = /^nodejs(\d+)\.x$/.exec(doc.provider?.runtime ?? '')?.[1];
  const merged: Record<string, unknown> = { ...PLUGIN_DEFAULTS, ...(runtimeTarget ? { target: `node${runtimeTarget}` } : {}), ...doc.custom?.esbuild };
  const exclude = asStrings(merged.exclude);
  const esbuild: Record<string, unknown> = Object.fromEntries(Object.entries(merged).filter(([key]) => !PLUGIN_ONLY_OPTIONS.includes(key)));
  esbuild.external = [...asStrings(merged.external), ...(exclude.includes('*') ? [] : exclude)];
  const outputFileExtension = String(merged.outputFileExtension);
  if (outputFileExtension !== '.js') esbuild.outExtension = { '.js': outputFileExtension };
  return { esbuild: esbuild as BuildOptions, outputFileExtension };
}

function asStrings(value: unknown): string[] {
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

/** The bundle of a function inside `outDir`, where serverless-esbuild puts it: `functions/ingest.ts` → `functions/ingest.mjs`. */
export function bundlePath(fn: FunctionDefinition, outDir = LOCAL_BUNDLE_DIR, settings = bundleSettings()): string {
  return join(outDir, fn.module.replace(/\.[^./]+$/, settings.outputFileExtension));
}

/** Builds one function's bundle into `outDir`; returns its path and the files it was built from. */
export async function buildBundle(fn: FunctionDefinition, outDir: string, settings = bundleSettings()): Promise<{ file: string; inputs: string[] }> {
  // Entry relative to the service directory, as serverless-esbuild passes it: same output bytes.
  const result = await build({
    ...settings.esbuild,
    entryPoints: [fn.module],
    outdir: join(outDir, dirname(fn.module)),
    absWorkingDir: REPO_ROOT,
    metafile: true,
    logLevel: 'error',
  });
  return { file: bundlePath(fn, outDir, settings), inputs: Object.keys(result.metafile.inputs).map((input) => join(REPO_ROOT, input)) };
}

/** One bundle per function in `outDir` (always built). */
export async function buildBundles(functions: readonly FunctionDefinition[], outDir: string): Promise<Map<string, string>> {
  const settings = bundleSettings();
  const files = new Map<string, string>();
  for (const fn of functions) files.set(fn.name, (await buildBundle(fn, outDir, settings)).file);
  return files;
}

interface Manifest {
  /** hash of the esbuild settings the bundles were built with */
  settings: string;
  /** per function: the files esbuild read (our sources and the bundled packages) */
  inputs: Record<string, string[]>;
}

/**
 * The local bundles, built when missing, older than any file they were built from (esbuild's
 * metafile lists them: our sources and every bundled package), or built with other settings.
 * A fresh clone builds them on first use. Writes go through a temporary file and a rename, so
 * a stack starting meanwhile never loads half a bundle.
 */
export async function ensureBundles(
  functions: readonly FunctionDefinition[],
  options: { outDir?: string; onBuild?: (names: string[]) => void } = {},
): Promise<Map<string, string>> {
  const outDir = options.outDir ?? LOCAL_BUNDLE_DIR;
  const settings = bundleSettings();
  const settingsHash = createHash('sha256').update(JSON.stringify(settings)).digest('hex');
  const manifestFile = join(outDir, 'manifest.json');
  const manifest = readManifest(manifestFile);
  const files = new Map<string, string>();
  const stale = functions.filter((fn) => {
    const file = bundlePath(fn, outDir, settings);
    files.set(fn.name, file);
    const inputs = manifest?.settings === settingsHash ? manifest.inputs[fn.name] : undefined;
    return !inputs || !existsSync(file) || isOlderThan(file, inputs);
  });
  if (stale.length === 0) return files;
  options.onBuild?.(stale.map((fn) => fn.name));
  const inputs: Record<string, string[]> = manifest?.settings === settingsHash ? { ...manifest.inputs } : {};
  const staging = join(outDir, `.staging-${process.pid}-${Date.now()}`);
  for (const fn of stale) {
    const built = await buildBundle(fn, staging, settings);
    const target = bundlePath(fn, outDir, settings);
    mkdirSync(dirname(target), { recursive: true });
    renameSync(built.file, target);
    inputs[fn.name] = built.inputs.map((input) => relative(REPO_ROOT, input));
  }
  writeFileSync(`${manifestFile}.${process.pid}`, JSON.stringify({ settings: settingsHash, inputs } satisfies Manifest));
  renameSync(`${manifestFile}.${process.pid}`, manifestFile);
  rmSync(staging, { recursive: true, force: true });
  return files;
}

function readManifest(file: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** True when the bundle is older than one of its inputs, or an input is gone (a moved source). */
function isOlderThan(file: string, inputs: readonly string[]): boolean {
  const built = statSync(file).mtimeMs;
  return inputs.some((input) => {
    try {
      return statSync(join(REPO_ROOT, input)).mtimeMs > built;
    } catch {
      return true;
    }
  });
}
