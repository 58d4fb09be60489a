import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundles } from '../../local/bundles.ts';
import { envSchema, envSources, type EnvSource } from '../../lib/config/env.ts';
import { readStackDefinition } from '../../local/infra.ts';
import { REPO_ROOT } from '../../local/stack.ts';

/*
 * The deployment as CloudFormation gets it: `osls package --stage ci` once, then assertions
 * on the packaged template — alarms reach a person, every function is watched, the dashboard
 * names every queue and function, the front door is throttled and has exactly one route, and
 * every role grants exactly what its function's code calls.
 *
 * The IAM part is derived from the code, not from a hand list: each function is bundled as
 * serverless-esbuild bundles it (local/bundles.ts, settings from serverless.yml), and the
 * AWS SDK commands the bundle really uses (esbuild keeps unused import specifiers of external
 * packages, so usage is resolved on the bundle's syntax tree) become IAM actions. When a
 * function starts or stops calling something, the test names the grant to add or remove.
 */

const ALARM_EMAIL = 'ops@example.com';
/** Orderbridge's own metrics: one CloudWatch namespace per stage. */
const namespaceOf = (stage: string) => `Orderbridge/${stage}`;
const SHOP_URL = 'https://myshop.versacommerce.de';
const STAGE = 'ci';
const NAMESPACE = namespaceOf(STAGE);
const OSLS_TIMEOUT_MS = 180_000;
const FUNCTIONS = readStackDefinition({ stage: STAGE }).functions.map((fn) => fn.name);

type Template = {
  Parameters?: Record<string, { Default?: unknown }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: any; Condition?: string; DependsOn?: unknown; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
  Outputs?: Record<string, { Value: unknown }>;
};

interface OslsRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

/** `npx osls …` in its own process group, killed as a whole on timeout (osls hangs after some build errors). */
function osls(args: string[], env: NodeJS.ProcessEnv): Promise<OslsRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('npx', ['osls', ...args], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      output += `\n[killed after ${OSLS_TIMEOUT_MS} ms]`;
      killGroup();
    }, OSLS_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(); // nothing of this run may outlive it
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
}

type EnvName = keyof typeof envSources;
const sourced = (from: EnvSource['from']) => (Object.entries(envSources) as [EnvName, EnvSource][]).filter(([, source]) => source.from === from).map(([name]) => name);
/** The settings serverless.yml takes from the deploy shell, derived from the config schema's annotations. */
const DEPLOY_SETTINGS = sourced('deploy');

/** The environment of a deploy machine: no alarm e-mail, no throttle overrides and no setting unless given. */
function deployEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  for (const name of ['ORDERBRIDGE_ALARM_EMAIL', 'WEBHOOK_THROTTLE_BURST', 'WEBHOOK_THROTTLE_RATE', ...DEPLOY_SETTINGS]) delete env[name];
  return { ...env, ...extra };
}

/**
 * A valid value other than the default for every deploy-shell setting. JSON values carry
 * commas, quotes, spaces, colons and a non-ASCII character: what YAML or variable resolution
 * would mangle. (A new setting without a sample fails the test that uses them.)
 */
const NON_DEFAULT_SETTINGS: Record<string, string> = {
  KOMFORTKASSE_BASE_URL: 'https://komfortkasse.example.com/api/v2',
  KOMFORTKASSE_INITIAL_DUNNING_LEVEL: '2',
  KOMFORTKASSE_TIMEOUT_MS: '7000',
  KOMFORTKASSE_LEASE_SECONDS: '45',
  KLAR_BASE_URL: 'https://klar.example.com',
  KLAR_API_VERSION: '07.2025',
  KLAR_BATCH_WINDOW_SECONDS: '30',
  KLAR_ORDER_ID_FIELD: 'code',
  KLAR_BODY_WRAPPER: 'array',
  PAYMENT_TYPE_MAP: '{"barzahlung": "SKIP", "rechnung, später":"INVOICE", "Überweisung":"PREPAYMENT"}',
  FEE_SCHEDULE: '{"rules":[{"paymentType":"paypal","fixed":0.35,"percent":2.49},{"paymentType":"cod","currency":"EUR","fixed":2,"percent":0,"min":1,"max":5}]}',
  DEFAULT_COUNTRY_CODE: 'AT',
  VERSACOMMERCE_BASE_URL: SHOP_URL,
  DRY_RUN: 'true',
  HISTORY_RETENTION_DAYS: '120',
  UPSTREAM_RETRY_LIMIT: '3',
  UPSTREAM_RETRY_BASE_MS: '250',
  UPSTREAM_TOTAL_TIMEOUT_MS: '15000',
  KLAR_TOTAL_TIMEOUT_MS: '45000',
  SECRETS_TTL_SECONDS: '120',
  KLAR_ENABLED: 'false',
  // Both sides off is refused at package time, so with Klar off this one stays on: spelled
  // `1` (not the default `true`), it still shows that the value arrives exactly as given.
  KOMFORTKASSE_ENABLED: '1',
};
/** Samples that must parse to the default (see KOMFORTKASSE_ENABLED above). */
const SAME_AS_DEFAULT = new Set(['KOMFORTKASSE_ENABLED']);

/** One variable as a function would see it: the schema's parse of exactly this value. */
const parsed = (name: EnvName, value: string | undefined): unknown => (envSchema.shape[name] as { parse(v: unknown): unknown }).parse(value);

// ---------------------------------------------------------------------------------------------
// What a bundle calls: AWS SDK commands → IAM actions

/** lib-dynamodb's document-client commands carry other names than the API actions they call. */
const DOCUMENT_CLIENT_ACTIONS: Record<string, string[]> = {
  GetCommand: ['dynamodb:GetItem'],
  PutCommand: ['dynamodb:PutItem'],
  UpdateCommand: ['dynamodb:UpdateItem'],
  DeleteCommand: ['dynamodb:DeleteItem'],
  QueryCommand: ['dynamodb:Query'],
  ScanCommand: ['dynamodb:Scan'],
  BatchGetCommand: ['dynamodb:BatchGetItem'],
  BatchWriteCommand: ['dynamodb:BatchWriteItem'],
  TransactGetCommand: ['dynamodb:GetItem'],
  // TransactWriteItems has no IAM action of its own: each item kind needs its own action.
  TransactWriteCommand: [],
};
/** Batch APIs that IAM authorizes through the single-message action. */
const BATCH_ACTIONS: Record<string, string> = {
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
  'dynamodb:TransactGetItems': 'dynamodb:GetItem',
  'dynamodb:TransactWriteItems': '',
};
const TRANSACT_ITEM_ACTIONS: Record<string, string> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
};

/** IAM actions of one SDK export, [] for what is no API call (clients, errors), undefined when unknown. */
function actionsOf(pkg: string, exported: string): string[] | undefined {
  const paginated = /^paginate([A-Z]\w*)$/.exec(exported);
  const command = paginated ? `${paginated[1]}Command` : exported;
  if (!command.endsWith('Command')) return [];
  if (pkg === '@aws-sdk/lib-dynamodb') return DOCUMENT_CLIENT_ACTIONS[command];
  const service = /^@aws-sdk\/client-([a-z0-9-]+)$/.exec(pkg)?.[1];
  if (!service) return undefined;
  const action = `${service}:${command.slice(0, -'Command'.length)}`;
  if (action in BATCH_ACTIONS) return BATCH_ACTIONS[action] ? [BATCH_ACTIONS[action]!] : [];
  return [action];
}

interface BundleUsage {
  /** `@aws-sdk/…` exports the code really uses, as `pkg#Export` */
  sdkExports: Set<string>;
  /** string literals passed as call/element-access arguments, and names read as `.PROPERTY` */
  names: Set<string>;
  /** object-literal keys: TransactItems kinds (Put, Update, …) */
  keys: Set<string>;
  /** query shapes: IndexName of every object literal with a KeyConditionExpression ('' = the table) */
  queriedIndexes: Set<string>;
}

const SCOPE_KINDS = new Set([
  ts.SyntaxKind.SourceFile,
  ts.SyntaxKind.Block,
  ts.SyntaxKind.CaseBlock,
  ts.SyntaxKind.ForStatement,
  ts.SyntaxKind.ForInStatement,
  ts.SyntaxKind.ForOfStatement,
  ts.SyntaxKind.CatchClause,
  ts.SyntaxKind.ClassDeclaration,
  ts.SyntaxKind.ClassExpression,
]);
const isScope = (node: ts.Node) => SCOPE_KINDS.has(node.kind) || ts.isFunctionLike(node);

function bindingNames(name: ts.BindingName, out: ts.Identifier[] = []): ts.Identifier[] {
  if (ts.isIdentifier(name)) out.push(name);
  else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bindingNames(element.name, out);
  return out;
}

/**
 * Which AWS SDK exports a bundle uses: an import binding counts only when an identifier that
 * resolves to it (scope by scope, so a shadowing local does not count) appears outside its
 * declaration. Dynamic `await import('@aws-sdk/…')` with destructuring or `.Export` access
 * counts the same way.
 */
function analyzeBundle(source: string): BundleUsage {
  const file = ts.createSourceFile('bundle.mjs', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const declarations = new Map<ts.Node, Map<string, ts.Identifier>>();
  const sdkBindings = new Map<ts.Identifier, string>(); // declaration identifier → pkg#Export
  const usage: BundleUsage = { sdkExports: new Set(), names: new Set(), keys: new Set(), queriedIndexes: new Set() };

  const declare = (scope: ts.Node, id: ts.Identifier) => {
    let names = declarations.get(scope);
    if (!names) declarations.set(scope, (names = new Map()));
    names.set(id.text, id);
  };
  const enclosingScope = (node: ts.Node, functionScoped: boolean): ts.Node => {
    let current = node.parent;
    while (current && !(functionScoped ? ts.isFunctionLike(current) || ts.isSourceFile(current) : isScope(current))) current = current.parent;
    return current ?? file;
  };
  const sdkPackage = (node: ts.Node | undefined) =>
    node && ts.isStringLiteralLike(node) && node.text.startsWith('@aws-sdk/') ? node.text : undefined;

  // 1st pass: declarations, SDK bindings, names, keys, query shapes
  const collect = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const pkg = sdkPackage(node.moduleSpecifier);
      const clause = node.importClause;
      if (clause?.name) declare(file, clause.name);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const specifier of bindings.elements) {
          declare(file, specifier.name);
          if (pkg) sdkBindings.set(specifier.name, `${pkg}#${(specifier.propertyName ?? specifier.name).text}`);
        }
      } else if (bindings && ts.isNamespaceImport(bindings)) declare(file, bindings.name);
      return;
    }
    if (ts.isVariableDeclaration(node)) {
      const list = node.parent;
      const functionScoped = ts.isVariableDeclarationList(list) && (list.flags & (ts.NodeFlags.Let | ts.NodeFlags.Const)) === 0;
      const scope = enclosingScope(list, functionScoped);
      for (const id of bindingNames(node.name)) declare(scope, id);
      // let { GetParameterCommand: s } = await import("@aws-sdk/client-ssm")
      let init = node.initializer;
      while (init && (ts.isAwaitExpression(init) || ts.isParenthesizedExpression(init))) init = init.expression;
      const pkg = init && ts.isCallExpression(init) && init.expression.kind === ts.SyntaxKind.ImportKeyword ? sdkPackage(init.arguments[0]) : undefined;
      if (pkg && ts.isObjectBindingPattern(node.name)) {
        for (const element of node.name.elements) {
          const exported = element.propertyName && ts.isIdentifier(element.propertyName) ? element.propertyName.text : ts.isIdentifier(element.name) ? element.name.text : undefined;
          if (exported && ts.isIdentifier(element.name)) sdkBindings.set(element.name, `${pkg}#${exported}`);
        }
      } else if (pkg && ts.isIdentifier(node.name)) {
        sdkBindings.set(node.name, `${pkg}#*`); // a namespace: its `.Export` reads count below
      }
    } else if (ts.isParameter(node)) {
      for (const id of bindingNames(node.name)) declare(node.parent, id);
    } else if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node)) && node.name) {
      declare(enclosingScope(node, false), node.name);
    } else if ((ts.isFunctionExpression(node) || ts.isClassExpression(node)) && node.name) {
      declare(node, node.name);
    } else if (ts.isCatchClause(node) && node.variableDeclaration) {
      for (const id of bindingNames(node.variableDeclaration.name)) declare(node, id);
    } else if (ts.isCallExpression(node)) {
      for (const argument of node.arguments) if (ts.isStringLiteralLike(argument)) usage.names.add(argument.text);
      // (await import("@aws-sdk/…")).GetParameterCommand
      const pkg = node.expression.kind === ts.SyntaxKind.ImportKeyword ? sdkPackage(node.arguments[0]) : undefined;
      let outer: ts.Node = node.parent;
      while (ts.isAwaitExpression(outer) || ts.isParenthesizedExpression(outer)) outer = outer.parent;
      if (pkg && ts.isPropertyAccessExpression(outer)) usage.sdkExports.add(`${pkg}#${outer.name.text}`);
    } else if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression)) {
      usage.names.add(node.argumentExpression.text);
    } else if (ts.isPropertyAccessExpression(node)) {
      usage.names.add(node.name.text);
    } else if (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) {
      if (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name)) usage.keys.add(node.name.text);
    } else if (ts.isObjectLiteralExpression(node)) {
      const property = (name: string) =>
        node.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) && p.name.text === name);
      if (property('KeyConditionExpression')) {
        const index = property('IndexName')?.initializer;
        usage.queriedIndexes.add(index === undefined ? '' : ts.isStringLiteralLike(index) ? index.text : '?');
      }
    }
    ts.forEachChild(node, collect);
  };
  collect(file);

  const resolve = (id: ts.Identifier): ts.Identifier | undefined => {
    for (let scope: ts.Node | undefined = id.parent; scope; scope = scope.parent) {
      const found = declarations.get(scope)?.get(id.text);
      if (found) return found;
    }
    return undefined;
  };
  const isDeclarationName = (id: ts.Identifier): boolean => {
    const parent = id.parent;
    return (
      (ts.isPropertyAccessExpression(parent) && parent.name === id) ||
      (ts.isPropertyAssignment(parent) && parent.name === id) ||
      (ts.isBindingElement(parent) && (parent.propertyName === id || parent.name === id)) ||
      (ts.isVariableDeclaration(parent) && parent.name === id) ||
      (ts.isParameter(parent) && parent.name === id) ||
      ((ts.isFunctionDeclaration(parent) || ts.isFunctionExpression(parent) || ts.isClassDeclaration(parent) || ts.isClassExpression(parent)) && parent.name === id) ||
      ((ts.isMethodDeclaration(parent) || ts.isPropertyDeclaration(parent) || ts.isGetAccessor(parent) || ts.isSetAccessor(parent)) && parent.name === id) ||
      ts.isImportSpecifier(parent) ||
      ts.isImportClause(parent) ||
      ts.isNamespaceImport(parent) ||
      ts.isExportSpecifier(parent) ||
      ts.isLabeledStatement(parent) ||
      ts.isBreakOrContinueStatement(parent) ||
      ts.isMetaProperty(parent)
    );
  };
  // 2nd pass: references
  const reference = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && !isDeclarationName(node)) {
      const binding = resolve(node);
      const exported = binding && sdkBindings.get(binding);
      if (exported?.endsWith('#*')) {
        if (ts.isPropertyAccessExpression(node.parent) && node.parent.expression === node) usage.sdkExports.add(exported.replace('#*', `#${node.parent.name.text}`));
      } else if (exported) usage.sdkExports.add(exported);
    }
    ts.forEachChild(node, reference);
  };
  reference(file);
  return usage;
}

// ---------------------------------------------------------------------------------------------
// The template side

/** A resource reference as one string: GetAtt → `${X.Arn}`, Sub → its text, Ref → `${X}`. */
function canonical(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v && Array.isArray(v['Fn::GetAtt'])) return `\${${(v['Fn::GetAtt'] as string[]).join('.')}}`;
  if (v && typeof v['Fn::GetAtt'] === 'string') return `\${${v['Fn::GetAtt']}}`;
  if (v && typeof v['Fn::Sub'] === 'string') return v['Fn::Sub'];
  if (v && typeof v.Ref === 'string') return `\${${v.Ref}}`;
  return JSON.stringify(value);
}

const asList = <T,>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Every (action, resource) pair a role allows, as `action on resource`. */
function grantsOf(role: Template['Resources'][string]): string[] {
  const grants: string[] = [];
  for (const policy of asList(role.Properties?.Policies) as { PolicyDocument: { Statement: any } }[]) {
    for (const statement of asList(policy.PolicyDocument.Statement) as { Effect: string; Action: string | string[]; Resource: unknown }[]) {
      expect(statement.Effect, 'only Allow statements').toBe('Allow');
      for (const action of asList(statement.Action)) for (const resource of asList(statement.Resource)) grants.push(`${action} on ${canonical(resource)}`);
    }
  }
  return [...new Set(grants)].sort();
}

interface Expectation {
  /** must be granted */
  required: Set<string>;
  /** may be granted (⊇ required): the code may need them, the analysis cannot tell for sure */
  allowed: Set<string>;
  /** what the analysis saw, for the failure message */
  why: string[];
}

/** One file of a zip archive (stored or deflated), read through its central directory. */
function readZipEntry(zipFile: string, name: string): Buffer | undefined {
  const zip = readFileSync(zipFile);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  let offset = zip.readUInt32LE(end + 16);
  for (let i = zip.readUInt16LE(end + 10); i > 0; i--) {
    const nameLength = zip.readUInt16LE(offset + 28);
    if (zip.toString('utf8', offset + 46, offset + 46 + nameLength) === name) {
      const local = zip.readUInt32LE(offset + 42);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + zip.readUInt32LE(offset + 20));
      return zip.readUInt16LE(offset + 10) === 0 ? Buffer.from(data) : inflateRawSync(data);
    }
    offset += 46 + nameLength + zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32);
  }
  return undefined;
}

describe('the packaged CloudFormation template (osls package --stage ci)', () => {
  let workDir: string;
  let template: Template;
  let packaged: OslsRun;
  let prodWithoutEmail: OslsRun;
  let badThrottle: OslsRun;
  let prodWithoutShop: OslsRun;
  let badJson: OslsRun;
  let inconsistent: OslsRun;
  /** prod, with every deploy-shell setting set to a value other than its default */
  let prodPackaged: OslsRun;
  let prodTemplate: Template;
  const usages = new Map<string, BundleUsage>();
  /** each function's bundle as local/bundles.ts builds it (what `npm start -- --bundled` runs) */
  let bundleFiles = new Map<string, string>();

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'orderbridge-template-'));
    // The refusals fail in the plugin before anything is built, so they run alongside a build;
    // two builds share serverless-esbuild's work folder, so they run one after the other.
    const refuse = (name: string, stage: string, env: Record<string, string>) => osls(['package', '--stage', stage, '--package', join(workDir, name)], deployEnv(env));
    [packaged, prodWithoutEmail, badThrottle, prodWithoutShop, badJson, inconsistent] = await Promise.all([
      osls(['package', '--stage', STAGE, '--package', join(workDir, 'ci')], deployEnv({ ORDERBRIDGE_ALARM_EMAIL: ALARM_EMAIL })),
      refuse('prod', 'prod', {}),
      refuse('throttle', 'prod', { ORDERBRIDGE_ALARM_EMAIL: ALARM_EMAIL, VERSACOMMERCE_BASE_URL: SHOP_URL, WEBHOOK_THROTTLE_BURST: 'lots' }),
      refuse('no-shop', 'prod', { ORDERBRIDGE_ALARM_EMAIL: ALARM_EMAIL }),
      refuse('bad-json', STAGE, { PAYMENT_TYPE_MAP: '{"barzahlung":"SKIP",}' }),
      // two calls of 40 s cannot fit sync-order's 60 s
      refuse('inconsistent', STAGE, { UPSTREAM_TOTAL_TIMEOUT_MS: '40000' }),
    ]);
    prodPackaged = await osls(['package', '--stage', 'prod', '--package', join(workDir, 'prod-settings')], deployEnv({ ORDERBRIDGE_ALARM_EMAIL: ALARM_EMAIL, ...NON_DEFAULT_SETTINGS }));
    for (const [stage, run] of [[STAGE, packaged], ['prod', prodPackaged]] as const) {
      if (run.code !== 0) throw new Error(`osls package --stage ${stage} failed (${run.code ?? run.signal}):\n${run.output.slice(-4000)}`);
    }
    template = JSON.parse(readFileSync(join(workDir, 'ci', 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
    prodTemplate = JSON.parse(readFileSync(join(workDir, 'prod-settings', 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
    console.info(
      `osls package --stage ${STAGE}: ${(packaged.ms / 1000).toFixed(1)} s; --stage prod: ${(prodPackaged.ms / 1000).toFixed(1)} s; ` +
        `refusals: ${[prodWithoutEmail, badThrottle, prodWithoutShop, badJson, inconsistent].map((run) => `${(run.ms / 1000).toFixed(1)} s`).join(', ')}`,
    );

    const definition = readStackDefinition({ stage: STAGE });
    bundleFiles = await buildBundles(definition.functions, join(workDir, 'bundles'));
    for (const [name, file] of bundleFiles) usages.set(name, analyzeBundle(readFileSync(file, 'utf8')));
  }, 3 * OSLS_TIMEOUT_MS);

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const resourcesOf = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);
  const resources = (type: string) => resourcesOf(template, type);
  /** The dashboard's metric rows, its Fn::Sub resolved as CloudFormation would: region, queue names, API id. */
  const dashboardMetrics = (t: Template): unknown[][] => {
    const [[, dashboard] = []] = resourcesOf(t, 'AWS::CloudWatch::Dashboard');
    const sub = dashboard?.Properties.DashboardBody['Fn::Sub'] as string;
    expect(typeof sub).toBe('string');
    const resolved = sub.replace(/\$\{([^}]+)\}/g, (_, expression: string) => {
      if (expression === 'AWS::Region') return 'eu-central-1';
      const [id, attribute] = expression.split('.');
      const resource = t.Resources[id!];
      if (!resource) throw new Error(`DashboardBody refers to \${${expression}}, which is not in the template`);
      if (attribute === 'QueueName') return resource.Properties.QueueName;
      if (!attribute) return `ref-of-${id}`;
      throw new Error(`DashboardBody uses \${${expression}}`);
    });
    const body = JSON.parse(resolved) as { widgets: { properties: { metrics?: unknown[][] } }[] };
    return body.widgets.flatMap((w) => w.properties.metrics ?? []);
  };
  const lambdaOf = (fn: string) => {
    const found = resources('AWS::Lambda::Function').find(([, r]) => r.Properties.FunctionName === `orderbridge-${STAGE}-${fn}`);
    if (!found) throw new Error(`no Lambda function orderbridge-${STAGE}-${fn} in the template`);
    return { logicalId: found[0], resource: found[1] };
  };
  const alarms = () => resources('AWS::CloudWatch::Alarm');
  const dims = (alarm: Template['Resources'][string]) =>
    Object.fromEntries((alarm.Properties.Dimensions ?? []).map((d: { Name: string; Value: unknown }) => [d.Name, d.Value]));
  const findAlarm = (namespace: string, metric: string, dimensions: Record<string, unknown>) =>
    alarms().filter(([, a]) => a.Properties.Namespace === namespace && a.Properties.MetricName === metric && JSON.stringify(dims(a)) === JSON.stringify(dimensions));

  /** Every function's deployed environment, by function name. */
  const environments = (t: Template) =>
    Object.values(t.Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => [r.Properties.FunctionName as string, (r.Properties.Environment?.Variables ?? {}) as Record<string, unknown>] as const);

  it('deploys every variable the config schema reads, from where the schema says, with its default', () => {
    // prepare: what the schema says of each variable
    const deployed = environments(template);
    expect(deployed.map(([name]) => name).sort()).toEqual(FUNCTIONS.map((fn) => `orderbridge-${STAGE}-${fn}`).sort());
    // assess: each function gets each variable it may read
    for (const [fn, env] of deployed) {
      for (const [name, source] of Object.entries(envSources) as [EnvName, EnvSource][]) {
        const where = `${name} (${source.from}) in ${fn}`;
        if (source.from === 'local') {
          expect(env, where).not.toHaveProperty(name);
        } else if (source.from === 'ssm') {
          // the secret itself never sits in the template; the function reads it from SSM by this path
          expect(env, where).not.toHaveProperty(name);
          expect(env[`${name}_PARAMETER`], where).toMatch(new RegExp(`^/orderbridge/${STAGE}/[a-z-]+$`));
        } else if (source.from === 'stack') {
          expect(env, where).toHaveProperty(name);
        } else {
          // nothing set in the deploy shell: the deployed value means the schema's default
          // (or the one the schema's annotation names for AWS)
          expect(typeof env[name], where).toBe('string');
          const expected = source.deployedDefault === undefined ? parsed(name, undefined) : parsed(name, source.deployedDefault);
          expect(parsed(name, env[name] as string), where).toEqual(expected);
        }
      }
    }
  });

  it('carries every deploy-shell setting to every function exactly as given (JSON included)', () => {
    // prepare: the samples are valid and none is a default
    expect(Object.keys(NON_DEFAULT_SETTINGS).sort(), 'a non-default sample for every deploy-shell setting').toEqual([...DEPLOY_SETTINGS].sort());
    for (const name of DEPLOY_SETTINGS) if (!SAME_AS_DEFAULT.has(name)) expect(parsed(name, NON_DEFAULT_SETTINGS[name]), name).not.toEqual(parsed(name, undefined));
    // assess
    for (const [fn, env] of environments(prodTemplate)) {
      for (const name of DEPLOY_SETTINGS) expect(env[name], `${name} in ${fn}`).toBe(NON_DEFAULT_SETTINGS[name]);
    }
    const [, klarCosts] = Object.entries(prodTemplate.Resources).find(
      ([, r]) => r.Type === 'AWS::Lambda::EventSourceMapping' && canonical(r.Properties.EventSourceArn) === '${KlarCostsQueue.Arn}',
    )!;
    expect(klarCosts.Properties.MaximumBatchingWindowInSeconds).toBe(Number(NON_DEFAULT_SETTINGS.KLAR_BATCH_WINDOW_SECONDS));
  });

  it('subscribes ORDERBRIDGE_ALARM_EMAIL to the alarm topic, only when it is set (Condition)', () => {
    const subscriptions = resources('AWS::SNS::Subscription');
    expect(subscriptions).toHaveLength(1);
    const [, subscription] = subscriptions[0]!;
    expect(subscription.Properties.Protocol).toBe('email');
    expect(subscription.Properties.TopicArn).toEqual({ Ref: 'AlarmTopic' });
    expect(template.Resources.AlarmTopic?.Type).toBe('AWS::SNS::Topic');
    // the address: a template parameter whose default is the variable's value
    const endpoint = subscription.Properties.Endpoint as { Ref: string };
    expect(template.Parameters?.[endpoint.Ref]?.Default).toBe(ALARM_EMAIL);
    expect(subscription.Condition).toBeDefined();
    expect(template.Conditions?.[subscription.Condition!]).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: endpoint.Ref }, ''] }] });
  });

  it('refuses to package a production stage without ORDERBRIDGE_ALARM_EMAIL, naming it, before building anything', () => {
    expect(prodWithoutEmail.code).not.toBe(0);
    expect(prodWithoutEmail.output).toContain('ORDERBRIDGE_ALARM_EMAIL');
    expect(existsSync(join(workDir, 'prod')) ? readdirSync(join(workDir, 'prod')) : []).toEqual([]);
  });

  it('refuses a throttle setting that is not a number, naming the variable', () => {
    expect(badThrottle.code).not.toBe(0);
    expect(badThrottle.output).toContain('WEBHOOK_THROTTLE_BURST');
  });

  /** A refusal comes from the plugin before anything is built. */
  const expectRefused = (run: OslsRun, name: string) => {
    expect(run.code, run.output.slice(-2000)).not.toBe(0);
    expect(existsSync(join(workDir, name)) ? readdirSync(join(workDir, name)) : [], `${name}: nothing built`).toEqual([]);
  };

  it('refuses to package a production stage without VERSACOMMERCE_BASE_URL, naming it', () => {
    expectRefused(prodWithoutShop, 'no-shop');
    expect(prodWithoutShop.output).toContain('VERSACOMMERCE_BASE_URL is not set: stage "prod"');
  });

  it('refuses a JSON setting that is not valid JSON, naming the variable', () => {
    expectRefused(badJson, 'bad-json');
    expect(badJson.output).toMatch(/PAYMENT_TYPE_MAP is not valid JSON/);
  });

  it('refuses settings that do not agree, naming both', () => {
    expectRefused(inconsistent, 'inconsistent');
    expect(inconsistent.output).toMatch(/UPSTREAM_TOTAL_TIMEOUT_MS \(40000 ms\) does not fit sync-order's timeout \(60 s, functions\.sync-order\.timeout\)/);
  });

  it('has an AWS/Lambda Errors alarm for every function', () => {
    for (const fn of FUNCTIONS) {
      const name = lambdaOf(fn).resource.Properties.FunctionName;
      expect(findAlarm('AWS/Lambda', 'Errors', { FunctionName: name }), `Errors alarm of ${name}`).toHaveLength(1);
    }
  });

  it('alarms on ingest 5xx, a silent Klar poller, a reconcile that did not run and rejected credentials', () => {
    const service = { service: 'orderbridge' };
    expect(findAlarm(NAMESPACE, 'webhookOutcome', { ...service, outcome: 'enqueue-failed' })).toHaveLength(1);
    expect(findAlarm(NAMESPACE, 'webhookOutcome', { ...service, outcome: 'error' })).toHaveLength(1);
    expect(findAlarm('AWS/ApiGateway', '5xx', { ApiId: { Ref: 'HttpApi' }, Stage: '$default' })).toHaveLength(1);
    expect(template.Resources.KlarImportFailureAlarm?.Properties.TreatMissingData).toBe('breaching');
    const [[, notRun] = []] = findAlarm('AWS/Lambda', 'Invocations', { FunctionName: `orderbridge-${STAGE}-reconcile` });
    expect(notRun?.Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' });
    for (const upstream of ['Komfortkasse', 'Klar', 'VersaCommerce']) {
      const [[, auth] = []] = findAlarm(NAMESPACE, 'upstreamAuthFailed', { ...service, upstream });
      expect(auth?.Properties, `upstreamAuthFailed alarm for ${upstream}`).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Period: 300 });
    }
  });

  it('keeps metrics, alarms and the dashboard per stage: the packaged prod template names prod', () => {
    for (const [t, stage] of [[template, STAGE], [prodTemplate, 'prod']] as const) {
      // the functions write their metrics to the stage's namespace…
      for (const [fn, env] of environments(t)) expect(env.POWERTOOLS_METRICS_NAMESPACE, fn).toBe(namespaceOf(stage));
      // …every alarm on them reads it, and the AWS metrics' alarms name the stage's resources
      for (const [logicalId, alarm] of resourcesOf(t, 'AWS::CloudWatch::Alarm')) {
        const namespace = alarm.Properties.Namespace as string;
        if (!namespace.startsWith('AWS/')) expect(namespace, logicalId).toBe(namespaceOf(stage));
        for (const dimension of alarm.Properties.Dimensions as { Name: string; Value: unknown }[]) {
          if (dimension.Name === 'FunctionName') expect(dimension.Value, logicalId).toMatch(new RegExp(`^orderbridge-${stage}-`));
        }
      }
      // …and so does every dashboard graph of them
      const own = dashboardMetrics(t).filter((row) => typeof row[0] === 'string' && !row[0].startsWith('AWS/'));
      expect(own.length).toBeGreaterThan(10);
      for (const row of own) expect(row[0], JSON.stringify(row)).toBe(namespaceOf(stage));
    }
  });

  it('fires each "did not run" alarm within one schedule interval of a missed run, and never on schedule', () => {
    // prepare: the schedules, and which alarm watches each scheduled function's runs
    const schedules = new Map(readStackDefinition({ stage: STAGE }).functions.flatMap((fn) => fn.events.filter((e) => e.type === 'schedule').map((e) => [fn.name, e.everyMs / 1000] as const)));
    const watched = [
      { fn: 'reconcile', alarm: findAlarm('AWS/Lambda', 'Invocations', { FunctionName: `orderbridge-${STAGE}-reconcile` })[0]?.[1] },
      { fn: 'poll-klar-state', alarm: template.Resources.KlarImportFailureAlarm },
    ];
    for (const { fn, alarm } of watched) {
      const interval = schedules.get(fn)!;
      const { Period, EvaluationPeriods, DatapointsToAlarm, TreatMissingData } = alarm!.Properties as Record<string, number | string>;
      const window = Number(Period) * Number(EvaluationPeriods);
      // assess: missing data breaches, and every period of the window must breach
      expect(TreatMissingData, fn).toBe('breaching');
      expect(DatapointsToAlarm, fn).toBe(EvaluationPeriods);
      // a run on schedule always lies in the window (no false alarm), a missed one shows within an interval
      expect(window, fn).toBeGreaterThan(interval);
      expect(window - interval, fn).toBeLessThanOrEqual(interval);
      // runs in a window are always fewer than EvaluationPeriods, so CloudWatch fills the
      // missing periods instead of looking back past the window for older real points
      expect(Math.ceil(window / interval) + 1, fn).toBeLessThan(Number(EvaluationPeriods));
      // CloudWatch's limit: a day for periods under an hour, 7 days otherwise
      expect(window, fn).toBeLessThanOrEqual(Number(Period) < 3600 ? 86_400 : 604_800);
    }
  });

  it('retries scheduled functions deliberately (not Lambda\'s default of two)', () => {
    const configs = resourcesOf(template, 'AWS::Lambda::EventInvokeConfig');
    const scheduled = readStackDefinition({ stage: STAGE }).functions.filter((fn) => fn.events.some((e) => e.type === 'schedule'));
    expect(scheduled.length).toBeGreaterThan(0);
    for (const fn of scheduled) {
      const { logicalId } = lambdaOf(fn.name);
      const config = configs.find(([, c]) => canonical(c.Properties.FunctionName) === `\${${logicalId}}`);
      expect(config?.[1].Properties.MaximumRetryAttempts, fn.name).toBeLessThan(2);
    }
  });

  it('keeps the history table and the queues on prod (Retain, deletion protection); dev stages go with the stack', () => {
    const data = (t: Template) => [...resourcesOf(t, 'AWS::DynamoDB::Table'), ...resourcesOf(t, 'AWS::SQS::Queue')];
    expect(data(prodTemplate)).toHaveLength(5);
    for (const [logicalId, resource] of data(prodTemplate)) {
      expect({ DeletionPolicy: resource.DeletionPolicy, UpdateReplacePolicy: resource.UpdateReplacePolicy }, logicalId).toEqual({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
    for (const [logicalId, resource] of data(template)) expect(resource.DeletionPolicy, logicalId).toBe('Delete');
    expect(prodTemplate.Resources.HistoryTable?.Properties.DeletionProtectionEnabled).toBe(true);
    expect(template.Resources.HistoryTable?.Properties.DeletionProtectionEnabled).toBe(false);
  });

  it('keeps a message in a standard queue\'s DLQ longer than in its source queue (klar-costs 4 days, its DLQ 14)', () => {
    const queues = resources('AWS::SQS::Queue');
    expect(template.Resources.KlarCostsQueue?.Properties.MessageRetentionPeriod).toBe(4 * 86_400);
    expect(template.Resources.KlarCostsDLQ?.Properties.MessageRetentionPeriod).toBe(14 * 86_400);
    // a standard queue's message keeps its enqueue time in the DLQ (a FIFO one starts anew)
    for (const [logicalId, queue] of queues.filter(([, q]) => !q.Properties.FifoQueue && q.Properties.RedrivePolicy)) {
      const dlq = template.Resources[queue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]]!;
      expect(dlq.Properties.MessageRetentionPeriod, logicalId).toBeGreaterThan(queue.Properties.MessageRetentionPeriod);
    }
  });

  it('writes an HTTP API access log without bodies, query strings or paths', () => {
    const [[, stage] = []] = resources('AWS::ApiGatewayV2::Stage');
    const settings = stage?.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(canonical(settings.DestinationArn)).toMatch(/^\$\{(\w+)\.Arn\}$/);
    const logGroup = template.Resources[canonical(settings.DestinationArn).slice(2, -'.Arn}'.length)]!;
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties.RetentionInDays).toBeGreaterThan(0);
    const format = JSON.parse(settings.Format) as Record<string, string>;
    const variables = Object.values(format);
    expect(variables.every((v) => /^\$context\.[\w.]+$/.test(v)), settings.Format).toBe(true);
    expect(variables.filter((v) => /query|path|body|header|uri/i.test(v))).toEqual([]);
    expect(variables).toEqual(expect.arrayContaining(['$context.requestId', '$context.routeKey', '$context.status']));
  });

  it('switches the Klar poller, the Klar alarms and the dashboard note off at package time with KLAR_ENABLED=false', () => {
    // (the prod package runs with KLAR_ENABLED=false, the ci package with both sides on)
    const pollerRule = (t: Template) =>
      Object.values(t.Resources).find(
        (r) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.Targets ?? []).includes('PollDashklarDashstateLambdaFunction'),
      );
    const note = (t: Template) => {
      const body = Object.values(t.Resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!.Properties.DashboardBody['Fn::Sub'] as string;
      return /\*\*(Komfortkasse: \w+ · Klar: \w+)\*\*/.exec(body)?.[1];
    };
    for (const [t, klar, state] of [
      [template, 'on', 'ENABLED'],
      [prodTemplate, 'off', 'DISABLED'],
    ] as const) {
      expect(pollerRule(t)?.Properties.State).toBe(state);
      // CloudFormation evaluates the Condition at deploy time; its operands are fixed at package time
      expect(t.Conditions?.KlarEnabled).toEqual({ 'Fn::Equals': [klar, 'on'] });
      expect(t.Conditions?.KomfortkasseEnabled).toEqual({ 'Fn::Equals': ['on', 'on'] });
      expect(note(t)).toBe(`Komfortkasse: on · Klar: ${klar}`);
      for (const alarm of ['KlarImportFailureAlarm', 'KlarAuthFailedAlarm']) expect(t.Resources[alarm]?.Condition, alarm).toBe('KlarEnabled');
      expect(t.Resources.KomfortkasseAuthFailedAlarm?.Condition).toBe('KomfortkasseEnabled');
    }
  });

  it('alarms when the shop answers 404 for an order and its API does not confirm it (a configuration error)', () => {
    const [[, alarm] = []] = findAlarm(NAMESPACE, 'shopApiCheckFailed', { service: 'orderbridge' });
    expect(alarm?.Properties).toMatchObject({ Statistic: 'Sum', Period: 300, Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching' });
    expect(alarm?.Properties.AlarmDescription).toContain('VERSACOMMERCE_BASE_URL');
  });

  it('sends every alarm to the alarm topic', () => {
    expect(alarms().length).toBeGreaterThan(FUNCTIONS.length);
    for (const [logicalId, alarm] of alarms()) {
      expect(alarm.Properties.AlarmActions, logicalId).toContainEqual({ Ref: 'AlarmTopic' });
    }
  });

  it('has a dashboard whose body is valid JSON naming every queue and function, and its URL as an output', () => {
    const dashboards = resources('AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const [logicalId, dashboard] = dashboards[0]!;
    expect(dashboard.Properties.DashboardName).toBe(`orderbridge-${STAGE}`);
    const metrics = dashboardMetrics(template);
    const mentioned = new Set(metrics.flat().filter((v): v is string => typeof v === 'string'));
    for (const [, queue] of resources('AWS::SQS::Queue')) expect(mentioned, `queue ${queue.Properties.QueueName}`).toContain(queue.Properties.QueueName);
    for (const fn of FUNCTIONS) expect(mentioned, `function ${fn}`).toContain(`orderbridge-${STAGE}-${fn}`);
    for (const metric of ['webhookOutcome', 'komfortkasseOutcome', 'upstreamAuthFailed', 'klarUploaded', 'klarImportFailing', 'Errors', 'Duration', 'Throttles']) {
      expect(mentioned, `metric ${metric}`).toContain(metric);
    }
    expect(template.Outputs?.DashboardUrl?.Value).toEqual({
      'Fn::Sub': `https://\${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=\${AWS::Region}#dashboards:name=\${${logicalId}}`,
    });
  });

  it('throttles the HTTP API stage (defaults: burst 100, 50 requests/s)', () => {
    const [[, stage] = []] = resources('AWS::ApiGatewayV2::Stage');
    expect(stage?.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingBurstLimit: 100, ThrottlingRateLimit: 50 });
  });

  it('routes only POST /webhooks/versacommerce to Lambda: no catch-all route', () => {
    const routeKeys = resources('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey as string);
    expect(routeKeys).toEqual(['POST /webhooks/versacommerce']);
    expect(routeKeys.filter((key) => key === '$default' || key.startsWith('ANY ') || key.includes('{proxy+}'))).toEqual([]);
  });

  it('gives every function its own role without managed policies', () => {
    const roles = FUNCTIONS.map((fn) => canonical(lambdaOf(fn).resource.Properties.Role));
    expect(new Set(roles).size).toBe(FUNCTIONS.length);
    for (const [logicalId, role] of resources('AWS::IAM::Role')) expect(role.Properties.ManagedPolicyArns ?? [], logicalId).toEqual([]);
  });

  /** What a function's code and events need, as `action on resource`. */
  function expectedGrants(fn: string): Expectation {
    const usage = usages.get(fn);
    if (!usage) throw new Error(`no bundle for ${fn}`);
    const { logicalId, resource: lambda } = lambdaOf(fn);
    const env = (lambda.Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
    const required = new Set<string>();
    const allowed = new Set<string>();
    const why: string[] = [];
    const need = (action: string, resource: string) => (required.add(`${action} on ${resource}`), allowed.add(`${action} on ${resource}`));
    const may = (action: string, resource: string) => allowed.add(`${action} on ${resource}`);

    // its own log group
    const logGroup = `arn:aws:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${lambda.Properties.FunctionName}:*`;
    need('logs:CreateLogStream', logGroup);
    need('logs:PutLogEvents', logGroup);

    // its event sources
    const sourceQueues: string[] = [];
    for (const [, mapping] of resources('AWS::Lambda::EventSourceMapping')) {
      if (canonical(mapping.Properties.FunctionName) !== `\${${logicalId}.Arn}`) continue;
      const source = canonical(mapping.Properties.EventSourceArn);
      sourceQueues.push(source);
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) need(action, source);
      why.push(`event source ${source}`);
    }

    // the SDK calls of its code
    const actions = new Set<string>();
    for (const entry of usage.sdkExports) {
      const [pkg, exported] = entry.split('#') as [string, string];
      const mapped = actionsOf(pkg, exported);
      if (mapped === undefined) throw new Error(`${fn} uses ${entry}: teach template.test.ts which IAM action it needs`);
      mapped.forEach((a) => actions.add(a));
      if (exported.endsWith('Command')) why.push(`${exported} (${pkg})`);
    }
    const transactUsed = [...usage.sdkExports].some((e) => /#TransactWrite(Items)?Command$/.test(e));
    const transactKinds = Object.keys(TRANSACT_ITEM_ACTIONS).filter((kind) => usage.keys.has(kind));
    if (transactUsed) why.push(`TransactWrite items: ${transactKinds.join(', ') || 'unknown kinds'}`);

    // resources: the queues it sends to (env var names the code reads), the table and its
    // queried indexes, the SSM parameters of the secrets it asks for
    const queuesByEnv = Object.entries(env).filter(([, v]) => typeof v === 'object' && template.Resources[(v as { Ref?: string }).Ref ?? '']?.Type === 'AWS::SQS::Queue');
    const allQueues = resources('AWS::SQS::Queue').map(([id]) => `\${${id}.Arn}`);
    const targetQueues = queuesByEnv.filter(([name]) => usage.names.has(name)).map(([, v]) => `\${${(v as { Ref: string }).Ref}.Arn}`);
    const table = resources('AWS::DynamoDB::Table');
    expect(table, 'one DynamoDB table').toHaveLength(1);
    const [tableId, tableResource] = table[0]!;
    const tableArn = `\${${tableId}.Arn}`;
    const indexNames = ((tableResource.Properties.GlobalSecondaryIndexes ?? []) as { IndexName: string }[]).map((i) => i.IndexName);
    const indexArn = (name: string) => `\${${tableId}.Arn}/index/${name}`;

    for (const action of actions) {
      const [service] = action.split(':');
      if (service === 'dynamodb' && (action === 'dynamodb:Query' || action === 'dynamodb:Scan')) {
        const shapes = [...usage.queriedIndexes];
        why.push(`queries ${shapes.map((s) => s || '(table)').join(', ') || '(unknown)'}`);
        if (shapes.length === 0 || shapes.includes('?')) {
          may(action, tableArn);
          indexNames.forEach((name) => may(action, indexArn(name)));
        }
        for (const shape of shapes) if (shape !== '?') need(action, shape === '' ? tableArn : indexArn(shape));
      } else if (service === 'dynamodb') {
        need(action, tableArn);
      } else if (action === 'sqs:SendMessage') {
        // A function that changes visibility reads its own event-source queue's URL for that:
        // the URL alone does not prove it also sends there.
        const ownQueue = (q: string) => actions.has('sqs:ChangeMessageVisibility') && sourceQueues.includes(q);
        const sendTargets = targetQueues.filter((q) => !ownQueue(q));
        why.push(`sends to ${sendTargets.join(', ') || '(unknown queue)'}`);
        targetQueues.filter(ownQueue).forEach((q) => may(action, q));
        if (sendTargets.length) sendTargets.forEach((q) => need(action, q));
        else allQueues.forEach((q) => may(action, q));
      } else if (action === 'sqs:ChangeMessageVisibility') {
        // only messages it received can be changed: those of its event sources
        why.push(`changes visibility on ${sourceQueues.join(', ') || '(no event source)'}`);
        sourceQueues.forEach((q) => need(action, q));
      } else if (action === 'ssm:GetParameter') {
        // handled with the secrets below
      } else if (service === 'cloudwatch') {
        need(action, '*'); // CloudWatch metric APIs have no resource-level permissions
      } else {
        throw new Error(`${fn} calls ${action}: teach template.test.ts which resource it needs`);
      }
    }
    if (transactUsed) {
      const kinds = transactKinds.length ? transactKinds : Object.keys(TRANSACT_ITEM_ACTIONS);
      for (const kind of kinds) (transactKinds.length ? need : may)(TRANSACT_ITEM_ACTIONS[kind]!, tableArn);
    }
    if (actions.has('ssm:GetParameter')) {
      // a secret NAME is read from SSM when the code asks for it and <NAME>_PARAMETER names the parameter
      const secrets = Object.entries(env).filter(([name, value]) => name.endsWith('_PARAMETER') && typeof value === 'string' && usage.names.has(name.slice(0, -'_PARAMETER'.length)));
      why.push(`secrets ${secrets.map(([name]) => name.slice(0, -'_PARAMETER'.length)).join(', ') || '(none)'}`);
      for (const [, parameter] of secrets) need('ssm:GetParameter', `arn:aws:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${parameter as string}`);
    }
    return { required, allowed, why };
  }

  it.each(FUNCTIONS)('the role of %s grants exactly what its code and events call', (fn) => {
    const { resource: lambda } = lambdaOf(fn);
    const roleId = (lambda.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const role = template.Resources[roleId]!;
    const granted = grantsOf(role);
    const { required, allowed, why } = expectedGrants(fn);
    const context = `${fn} (${roleId}) — the code uses: ${why.join('; ')}`;
    expect(granted.filter((g) => !allowed.has(g)), `${context}\nunused grants (remove them from ${roleId})`).toEqual([]);
    expect([...required].filter((g) => !granted.includes(g)).sort(), `${context}\nmissing grants (add them to ${roleId})`).toEqual([]);
  });

  it('zips, byte for byte, the bundles that npm start -- --bundled runs (one builder, serverless.yml custom.esbuild)', () => {
    for (const fn of readStackDefinition({ stage: STAGE }).functions) {
      // prepare
      const local = readFileSync(bundleFiles.get(fn.name)!);
      // act: the handler's file in the function's zip, where Lambda loads it from
      const zipped = readZipEntry(join(workDir, 'ci', `${fn.name}.zip`), fn.module.replace(/\.ts$/, '.mjs'));
      // assess
      expect(zipped, `${fn.name}.zip has no ${fn.module.replace(/\.ts$/, '.mjs')}`).toBeDefined();
      expect(zipped!.equals(local), `${fn.name}: the zipped bundle differs from the local one`).toBe(true);
    }
  });
});

describe('reading the AWS SDK calls of a bundle', () => {
  it('counts only imports that are used, resolving scopes, including dynamic imports', () => {
    // prepare: minified-style code as esbuild emits it
    const usage = analyzeBundle(`
      import{GetCommand as a,PutCommand as b,QueryCommand as c,TransactWriteCommand as e}from"@aws-sdk/lib-dynamodb";
      import{SendMessageCommand as d}from"@aws-sdk/client-sqs";
      function f(b){return new b({})}
      async function g(){let{GetParameterCommand:s,SSMClient:o}=await import("@aws-sdk/client-ssm");return new o({}).send(new s({}))}
      async function h(){return(await import("@aws-sdk/client-sns")).PublishCommand}
      function q(t){return{KeyConditionExpression:"pk = :p",IndexName:"gsi2",TableName:t}}
      function r(){return new e({TransactItems:[{Update:{}},{Delete:{}}]})}
      export const x=()=>new a({TableName:k("HISTORY_TABLE_NAME")}),y=f,z=g,w=h,v=q,u=r,l=()=>env.ORDERS_QUEUE_URL;
    `);
    // assess: PutCommand is shadowed by a parameter, QueryCommand and SendMessageCommand are never used
    expect([...usage.sdkExports].sort()).toEqual([
      '@aws-sdk/client-sns#PublishCommand',
      '@aws-sdk/client-ssm#GetParameterCommand',
      '@aws-sdk/client-ssm#SSMClient',
      '@aws-sdk/lib-dynamodb#GetCommand',
      '@aws-sdk/lib-dynamodb#TransactWriteCommand',
    ]);
    expect(usage.names).toContain('HISTORY_TABLE_NAME');
    expect(usage.names).toContain('ORDERS_QUEUE_URL');
    expect([...usage.queriedIndexes]).toEqual(['gsi2']);
    expect(Object.keys(TRANSACT_ITEM_ACTIONS).filter((kind) => usage.keys.has(kind))).toEqual(['Update', 'Delete']);
  });

  it('maps SDK commands to IAM actions', () => {
    expect(actionsOf('@aws-sdk/lib-dynamodb', 'BatchGetCommand')).toEqual(['dynamodb:BatchGetItem']);
    expect(actionsOf('@aws-sdk/lib-dynamodb', 'TransactWriteCommand')).toEqual([]);
    expect(actionsOf('@aws-sdk/lib-dynamodb', 'paginateQuery')).toEqual(['dynamodb:Query']);
    expect(actionsOf('@aws-sdk/client-sqs', 'SendMessageBatchCommand')).toEqual(['sqs:SendMessage']);
    expect(actionsOf('@aws-sdk/client-ssm', 'GetParameterCommand')).toEqual(['ssm:GetParameter']);
    expect(actionsOf('@aws-sdk/client-dynamodb', 'DynamoDBClient')).toEqual([]);
    expect(actionsOf('@aws-sdk/lib-dynamodb', 'ExecuteStatementCommand')).toBeUndefined();
  });
});
