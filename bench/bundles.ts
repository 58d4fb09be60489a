import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { buildBundles, bundleSettings } from '../local/bundles.ts';
import type { FunctionDefinition } from '../local/infra.ts';
import { REPO_ROOT } from '../local/stack.ts';
import { median, progress } from './stats.ts';

export interface BundleFigures {
  bundleBytes: number;
  /** `await import(bundle)` in a fresh node, median */
  initMs: number;
  /** the same for the AWS SDK packages the bundle imports (same bindings) and the clients it constructs at import, alone */
  sdkInitMs: number;
  initRatio: number;
  sdkPackages: string[];
  /** SDK clients the bundle constructs while it is imported (what the SDK-only side constructs too) */
  clientsAtInit: string[];
  /** both sides loaded exactly the same files from node_modules (checked once per function) */
  sdkFilesMatch: boolean;
  sdkFilesLoaded: number;
  /** what the bundle loads beyond the SDK side (should be empty) */
  extraFiles: string[];
  /** top-level statements of our own code and whole bundled packages costing the most at import */
  initBreakdown: { what: string; ms: number }[];
  /** the bundle's own top-level code, all modules (from the breakdown build) */
  bodyMs: number;
  file: string;
}

/** The breakdown build: the same settings as the packaged bundle (local/bundles.ts), with overrides. */
async function bundle(entry: string, outfile: string, overrides: BuildOptions = {}): Promise<void> {
  const { outExtension: _outExtension, ...settings } = bundleSettings().esbuild;
  await build({ ...settings, entryPoints: [entry], outfile, logLevel: 'error', ...overrides });
}

/** One bundle per function, exactly as `osls package` builds it (serverless.yml custom.esbuild). */
export { buildBundles };

function runNode(code: string, env: NodeJS.ProcessEnv): string {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, cwd: REPO_ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`node -e failed (${result.status}): ${result.stderr.slice(-1500)}\n${code.slice(0, 500)}`);
  return result.stdout;
}

/** The last `{"bench":…}` line a probe printed. */
function benchLine<T>(stdout: string): T {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('{"bench":'));
  if (!line) throw new Error(`probe printed no result: ${stdout.slice(-500)}`);
  return JSON.parse(line) as T;
}

/** Times `body` (ES module code) inside a fresh node: no process start-up or exit in the figure. */
function timed(body: string): string {
  return `const __t0 = performance.now();\n${body}\nprocess.stdout.write('\\n' + JSON.stringify({ bench: true, ms: performance.now() - __t0 }) + '\\n');`;
}

/** Every file under node_modules the process loaded through the CommonJS loader (the AWS SDK is CommonJS). */
const LOADED_FILES = `(await import('node:module')).createRequire(import.meta.url).cache`;

interface ImportedBinding {
  pkg: string;
  names: string[];
}

/** The bundle's static imports of external packages, with the bindings it takes from each. */
function staticSdkImports(source: string): ImportedBinding[] {
  const byPkg = new Map<string, Set<string>>();
  for (const m of source.matchAll(/import\s*(?:\{([^}]*)\}|\*\s*as\s*[\w$]+|[\w$]+)?\s*(?:from\s*)?["'](@aws-sdk\/[^"']+)["']/g)) {
    const names = byPkg.get(m[2]!) ?? new Set<string>();
    for (const part of (m[1] ?? '').split(',')) {
      const name = part.trim().split(/\s+as\s+/)[0]!.trim();
      if (name) names.add(name);
    }
    byPkg.set(m[2]!, names);
  }
  return [...byPkg].map(([pkg, names]) => ({ pkg, names: [...names].sort() })).sort((a, b) => a.pkg.localeCompare(b.pkg));
}

interface ClientConstruction {
  /** `SQSClient`, or `DynamoDBDocumentClient.from` */
  what: string;
  pkg: string;
  /** the (JSON-able part of the) configuration it was given */
  config: unknown;
}

/**
 * Which SDK clients the bundle constructs while it is imported (at cold start), and every
 * file it loads from node_modules: a copy of the bundle whose SDK imports go through shims
 * that record constructions.
 */
function probeBundle(file: string, imports: ImportedBinding[], env: NodeJS.ProcessEnv): { clients: ClientConstruction[]; files: string[] } {
  let source = readFileSync(file, 'utf8');
  for (const { pkg, names } of imports) {
    const shim = join(file, `../${basename(file, '.mjs')}.shim-${pkg.replace(/[@/]/g, '_')}.mjs`);
    const clients = names.filter((n) => /Client$/.test(n));
    writeFileSync(
      shim,
      [
        `export * from ${JSON.stringify(pkg)};`,
        `import * as real from ${JSON.stringify(pkg)};`,
        `const record = (what, config) => { let json; try { json = JSON.parse(JSON.stringify(config ?? null)); } catch { json = '(unserialisable)'; } (globalThis.__benchClients ??= []).push({ what, pkg: ${JSON.stringify(pkg)}, config: json }); };`,
        ...clients.map(
          (name) =>
            `export const ${name} = new Proxy(real.${name}, { construct(target, args, newTarget) { record(${JSON.stringify(name)}, args[0]); return Reflect.construct(target, args, newTarget); }, get(target, key, receiver) { const value = Reflect.get(target, key, receiver); return key === 'from' && typeof value === 'function' ? (...args) => { record(${JSON.stringify(`${name}.from`)}, args[1]); return value.apply(target, args); } : value; } });`,
        ),
      ].join('\n'),
    );
    source = source.replaceAll(new RegExp(`(from\\s*)(["'])${pkg.replace(/[/]/g, '\\/')}\\2`, 'g'), `$1${JSON.stringify(pathToFileURL(shim).href)}`);
  }
  const probe = join(file, `../${basename(file, '.mjs')}.probe.mjs`);
  writeFileSync(probe, source);
  const out = runNode(
    `await import(${JSON.stringify(pathToFileURL(probe).href)});
     const files = Object.keys(${LOADED_FILES}).filter((f) => f.includes('/node_modules/'));
     process.stdout.write('\\n' + JSON.stringify({ bench: true, clients: globalThis.__benchClients ?? [], files }) + '\\n');`,
    env,
  );
  return benchLine<{ clients: ClientConstruction[]; files: string[] }>(out);
}

/**
 * The AWS SDK part of a cold start, alone: the same static imports (same packages, same
 * bindings) and the same client constructions, with the same configuration, in the same order.
 */
function sdkOnlyCode(imports: ImportedBinding[], clients: ClientConstruction[]): string {
  const lines = imports.map(({ pkg, names }) => `const { ${names.join(', ')} } = await import(${JSON.stringify(pkg)});`);
  // (dynamic imports, each awaited: the bundle's static imports of the same packages load the same files)
  lines.push('globalThis.__benchKeep = [];');
  let lastClient = 'undefined';
  clients.forEach((c, i) => {
    const config = JSON.stringify(c.config);
    if (c.what.endsWith('.from')) {
      lines.push(`const c${i} = ${c.what}(${lastClient}, ${config}); globalThis.__benchKeep.push(c${i});`);
    } else {
      lines.push(`const c${i} = new ${c.what}(${config} ?? undefined); globalThis.__benchKeep.push(c${i});`);
    }
    lastClient = `c${i}`;
  });
  return lines.join('\n');
}

/**
 * Cold start of each bundle against the AWS SDK it needs, both timed inside fresh node
 * processes (`await import(…)`, median of `runs`, alternating so drift hits both alike).
 *
 * Honesty checks, once per function: the bundle is probed for the SDK clients it constructs
 * while being imported (the SDK-only side constructs exactly those), and both sides must
 * load exactly the same files from node_modules.
 */
export async function measureInit(functions: readonly FunctionDefinition[], files: Map<string, string>, env: NodeJS.ProcessEnv, runs = 9): Promise<Map<string, BundleFigures>> {
  const figures = new Map<string, BundleFigures>();
  for (const [name, file] of files) {
    const module = functions.find((f) => f.name === name)!.module;
    const source = readFileSync(file, 'utf8');
    const imports = staticSdkImports(source);
    const probe = probeBundle(file, imports, env);
    const sdkOnly = sdkOnlyCode(imports, probe.clients);
    const sdkFiles = benchLine<{ files: string[] }>(
      runNode(`${sdkOnly}\nprocess.stdout.write('\\n' + JSON.stringify({ bench: true, files: Object.keys(${LOADED_FILES}).filter((f) => f.includes('/node_modules/')) }) + '\\n');`, env),
    ).files;
    const sdkSet = new Set(sdkFiles);
    const bundleSet = new Set(probe.files);
    const extraFiles = probe.files.filter((f) => !sdkSet.has(f)).map((f) => f.slice(f.lastIndexOf('node_modules/')));
    const missing = sdkFiles.filter((f) => !bundleSet.has(f));
    if (missing.length) throw new Error(`${name}: the SDK-only side loads files the bundle does not: ${missing.slice(0, 5).join(', ')}`);

    const load = timed(`await import(${JSON.stringify(pathToFileURL(file).href)});`);
    const sdk = timed(sdkOnly);
    runNode(load, env); // warm the file cache for the bundle and the AWS SDK
    const loaded: number[] = [];
    const sdkMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      loaded.push(benchLine<{ ms: number }>(runNode(load, env)).ms);
      sdkMs.push(benchLine<{ ms: number }>(runNode(sdk, env)).ms);
    }
    const breakdown = await initBreakdown(module, file, env);
    const initMs = median(loaded);
    const sdkInitMs = median(sdkMs);
    const bundleBytes = statSync(file).size;
    figures.set(name, {
      file,
      bundleBytes,
      initMs,
      sdkInitMs,
      initRatio: initMs / sdkInitMs,
      sdkPackages: imports.map((i) => i.pkg),
      clientsAtInit: probe.clients.map((c) => c.what),
      sdkFilesMatch: extraFiles.length === 0,
      sdkFilesLoaded: sdkFiles.length,
      extraFiles,
      initBreakdown: breakdown.top,
      bodyMs: breakdown.bodyMs,
    });
    const top = breakdown.top.slice(0, 3).map((t) => `${t.what.split(' ')[0]} ${t.ms.toFixed(1)}`).join(', ');
    progress(`  ${name}: ${(bundleBytes / 1024).toFixed(1)} KB, init ${initMs.toFixed(1)} ms vs AWS SDK alone ${sdkInitMs.toFixed(1)} ms (×${(initMs / sdkInitMs).toFixed(2)}); clients at import: ${probe.clients.length ? probe.clients.map((c) => c.what).join(', ') : 'none'}; top: ${top}`);
  }
  return figures;
}

/**
 * Where a bundle's own init time goes: the same bundle unminified (identical code, readable
 * module boundaries), a timestamp before every module and before every top-level statement
 * of our own modules (lib/, functions/); median of `runs` fresh processes per item.
 */
async function initBreakdown(module: string, file: string, env: NodeJS.ProcessEnv, runs = 3): Promise<{ bodyMs: number; top: { what: string; ms: number }[] }> {
  const plain = join(file, `../${basename(file, '.mjs')}.breakdown.mjs`);
  await bundle(join(REPO_ROOT, module), plain, { minify: false });
  const lines = readFileSync(plain, 'utf8').split('\n');
  const out: string[] = [];
  let current = '';
  const labels: string[] = [];
  const mark = (label: string) => {
    labels.push(label);
    out.push(`globalThis.__benchMark(${labels.length - 1});`);
  };
  for (const line of lines) {
    // esbuild names each module's section by its path from the working directory.
    const boundary = /^\/\/ (?:\S*?\/)?((?:lib|functions|local|node_modules)\/\S+)$/.exec(line);
    if (boundary) {
      current = boundary[1]!;
      mark(current);
    } else if ((current.startsWith('lib/') || current.startsWith('functions/')) && /^(var|let|const|[A-Za-z_$][\w$.]*\()/.test(line)) {
      mark(`${current}: ${line.slice(0, 80).trim()}`);
    }
    out.push(line);
  }
  mark('(end)');
  writeFileSync(plain, out.join('\n'));
  const perLabel = new Map<string, number[]>();
  const bodies: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = benchLine<{ marks: number[] }>(
      runNode(
        `const marks = []; globalThis.__benchMark = (i) => { marks[i] = performance.now(); };
         await import(${JSON.stringify(pathToFileURL(plain).href)});
         process.stdout.write('\\n' + JSON.stringify({ bench: true, marks }) + '\\n');`,
        env,
      ),
    );
    const m = result.marks;
    bodies.push(m[m.length - 1]! - m[0]!);
    const costs = new Map<string, number>();
    for (let j = 0; j < m.length - 1; j++) {
      // Whole bundled packages count as one item; our own code per statement.
      const label = labels[j]!.startsWith('node_modules/') ? labels[j]!.split('/').slice(0, labels[j]!.split('/')[1]!.startsWith('@') ? 3 : 2).join('/') : labels[j]!;
      costs.set(label, (costs.get(label) ?? 0) + (m[j + 1]! - m[j]!));
    }
    for (const [label, ms] of costs) perLabel.set(label, [...(perLabel.get(label) ?? []), ms]);
  }
  const top = [...perLabel]
    .map(([what, samples]) => ({ what, ms: Math.round(median(samples) * 100) / 100 }))
    .filter((t) => t.ms >= 0.5)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 12);
  return { bodyMs: median(bodies), top };
}
