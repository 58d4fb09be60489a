import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, commandHelp, mainHelp, parseCommandLine, runCli, UsageError } from '../../bin/cli.ts';
import { parseSinceDate } from '../../lib/ops/since.ts';
import { DEFAULT_LOCAL_STATE_FILE, applyTarget, resolveTarget, stageResourceNames, TargetError, type LocalState } from '../../lib/ops/target.ts';
import { LOCAL_STATE_FILE } from '../../local/stack.ts';

const dir = mkdtempSync(join(tmpdir(), 'orderbridge-cli-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const NO_STATE_FILE = join(dir, 'absent.json');

/** Runs the CLI in-process against an empty environment: nothing to connect to. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}, defaultStateFile = NO_STATE_FILE) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
    { env, defaultStateFile },
  );
  return { code, stdout, stderr };
}

function stateFile(name: string, state: Partial<LocalState> & { pid: number }): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    JSON.stringify({
      url: 'http://127.0.0.1:3000',
      env: { HISTORY_TABLE_NAME: `table-${name}`, ORDERS_QUEUE_URL: `http://sqs/${name}/orders.fifo` },
      queues: { orders: `http://sqs/${name}/orders.fifo`, ordersDlq: 'd', klarCosts: 'k', klarCostsDlq: 'kd' },
      ...state,
    }),
  );
  return file;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('parseCommandLine', () => {
  it('splits command, arguments and options, with global options anywhere', () => {
    expect(parseCommandLine(['--stage', 'prod', 'history', '196-083-565', '--json'])).toEqual({
      kind: 'run',
      command: 'history',
      positionals: ['196-083-565'],
      values: { stage: 'prod', json: true },
      stage: 'prod',
      region: undefined,
      localState: undefined,
    });
    expect(parseCommandLine(['redrive', 'orders', '--max', '5', '--dry-run', '--local-state', 'x.json'])).toMatchObject({
      command: 'redrive',
      positionals: ['orders'],
      values: { max: '5', 'dry-run': true },
      localState: 'x.json',
    });
  });

  it.each([
    [[], { kind: 'help' }],
    [['--help'], { kind: 'help' }],
    [['-h'], { kind: 'help' }],
    [['help'], { kind: 'help' }],
    [['help', 'redrive'], { kind: 'help', command: 'redrive' }],
    [['reconcile', '--help'], { kind: 'help', command: 'reconcile' }],
    [['history', '-h'], { kind: 'help', command: 'history' }],
  ])('%j asks for help', (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected);
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--stage', 'prod'], /no command given/],
    [['replay', '196-083-565', '--json'], /Unknown option '--json'/],
    [['history', '--since', '2025-01-01', 'x'], /Unknown option '--since'/],
    [['reconcile', '--since'], /argument missing/],
    [['help', 'nope'], /unknown command "nope"/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseCommandLine(argv)).toThrow(UsageError);
    expect(() => parseCommandLine(argv)).toThrow(message);
  });
});

describe('runCli argument checks (exit 2 before connecting anywhere)', () => {
  it.each([
    [['history'], /history needs <orderCode>/],
    [['history', 'a', 'b'], /takes one <orderCode>/],
    [['replay'], /replay needs <orderCode>/],
    [['forget'], /forget needs <orderCode>/],
    [['redrive'], /redrive needs <orders\|klar-costs>/],
    [['redrive', 'klar'], /unknown queue "klar": use orders or klar-costs/],
    [['redrive', 'orders', '--max', '0'], /--max must be a whole number from 1/],
    [['redrive', 'orders', '--max', 'ten'], /--max must be a whole number/],
    [['klar-state', '--limit', '-3'], /--limit|argument missing/],
    [['klar-state', 'now'], /takes no arguments/],
    [['reconcile'], /reconcile needs --since <date>/],
    [['reconcile', '--since', 'last week'], /invalid --since date "last week": use YYYY-MM-DD or ISO 8601/],
    [['reconcile', '--since', '2025-02-30'], /invalid --since date/],
    [['reconcile', '--since', '2025-01-31T08:00:00'], /invalid --since date/],
    [['needs-attention', 'all'], /takes no arguments/],
    [['nope'], /unknown command/],
  ])('%j', async (args, message) => {
    // act
    const result = await cli(args);
    // assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage: orderbridge|See: orderbridge --help/);
    expect(result.stderr).not.toMatch(/npm start/); // failed before looking for a target
    expect(result.stdout).toBe('');
  });
});

describe('help', () => {
  it('lists every command with its usage, the options, where it connects and examples', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    for (const spec of Object.values(COMMANDS)) expect(result.stdout).toContain(spec.usage);
    expect(result.stdout).toMatch(/--stage <name>/);
    expect(result.stdout).toMatch(/--local-state <file>/);
    expect(result.stdout).toMatch(/Where it connects/);
    expect(result.stdout).toContain('orderbridge-<name>-history');
    expect(result.stdout).toContain('.orderbridge/local-stack.json');
    expect(result.stdout).toMatch(/Examples:\n {2}npm run orderbridge -- history/);
    expect(result.stdout).toBe(`${mainHelp()}\n`);
  });

  it.each(Object.keys(COMMANDS))('%s --help has a usage line, options and examples', async (name) => {
    const result = await cli([name, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${commandHelp(name)}\n`);
    expect(result.stdout).toMatch(new RegExp(`^Usage: orderbridge ${name}`));
    expect(result.stdout).toMatch(/\nOptions:\n/);
    expect(result.stdout).toMatch(/\nExamples:\n {2}orderbridge /);
    expect(result.stdout).toContain('--stage <name>');
  });
});

describe('parseSinceDate', () => {
  it.each([
    ['2025-01-31', '2025-01-31T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2025-01-31T08:00:00Z', '2025-01-31T08:00:00.000Z'],
    ['2025-01-31T08:00:00+01:00', '2025-01-31T07:00:00.000Z'],
    ['2025-01-31T08:00+0100', '2025-01-31T07:00:00.000Z'],
    ['2025-01-31T08:00:00.250-05:00', '2025-01-31T13:00:00.250Z'],
    [' 2025-01-31 ', '2025-01-31T00:00:00.000Z'],
  ])('%j → %s', (input, iso) => {
    expect(parseSinceDate(input)?.toISOString()).toBe(iso);
  });

  it.each(['', 'yesterday', '31.01.2025', '2025-1-31', '2025-02-29', '2025-13-01', '2025-01-31T25:00:00Z', '2025-01-31T08:00:00', '2025-01-31 08:00:00Z', '1738310400'])(
    '%j is rejected',
    (input) => {
      expect(parseSinceDate(input)).toBeUndefined();
    },
  );
});

describe('target resolution', () => {
  const ambient = { HISTORY_TABLE_NAME: 'ambient-table', ORDERS_QUEUE_URL: 'http://sqs/ambient/orders.fifo' };

  it('the CLI finds the state file `npm start` writes (same path as local/stack.ts)', () => {
    expect(DEFAULT_LOCAL_STATE_FILE).toBe(LOCAL_STATE_FILE);
  });

  it('names a stage resources as serverless.yml does', () => {
    expect(stageResourceNames('prod')).toMatchObject({
      table: 'orderbridge-prod-history',
      orders: 'orderbridge-prod-orders.fifo',
      ordersDlq: 'orderbridge-prod-orders-dlq.fifo',
      klarCosts: 'orderbridge-prod-klar-costs',
      klarCostsDlq: 'orderbridge-prod-klar-costs-dlq',
    });
  });

  it('nothing to connect to → exit 2 telling to run npm start or pass --stage', async () => {
    const result = await cli(['history', '196-083-565']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/npm start/);
    expect(result.stderr).toMatch(/--stage <name>/);
  });

  it('a state file whose npm start has stopped is ignored, and the message says so', async () => {
    const stale = stateFile('stale.json', { pid: deadPid() });
    const result = await cli(['history', '196-083-565'], {}, stale);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/which is not running/);
  });

  it('an explicit --local-state must exist and name a running stack', async () => {
    const missing = await cli(['history', 'x', '--local-state', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot use local state file/);
    const stopped = await cli(['history', 'x', '--local-state', stateFile('stopped.json', { pid: deadPid() })]);
    expect(stopped.code).toBe(2);
    expect(stopped.stderr).toMatch(/is not running: start it with `npm start`/);
  });

  it('precedence: --local-state > live state file > ambient env', async () => {
    const live = stateFile('live.json', { pid: process.pid });
    const explicit = stateFile('explicit.json', { pid: process.pid });
    expect((await resolveTarget({ env: ambient, defaultStateFile: NO_STATE_FILE })).env).toEqual({});
    expect(await resolveTarget({ env: ambient, defaultStateFile: NO_STATE_FILE })).toMatchObject({ kind: 'env', queues: { orders: ambient.ORDERS_QUEUE_URL } });
    expect(await resolveTarget({ env: ambient, defaultStateFile: live })).toMatchObject({ kind: 'local', env: { HISTORY_TABLE_NAME: 'table-live.json' } });
    expect(await resolveTarget({ env: ambient, defaultStateFile: live, localState: explicit })).toMatchObject({
      kind: 'local',
      env: { HISTORY_TABLE_NAME: 'table-explicit.json' },
    });
    // STAGE=local (what the local stack itself sets) and --stage local mean the local stack.
    expect(await resolveTarget({ env: { ...ambient, STAGE: 'local' }, defaultStateFile: live, stage: 'local' })).toMatchObject({ kind: 'local' });
  });

  it('rejects a stage name that cannot be part of a resource name', async () => {
    await expect(resolveTarget({ stage: 'prod/../x', env: {} })).rejects.toThrow(TargetError);
  });

  it('applies a target by changing only what differs', async () => {
    const env: NodeJS.ProcessEnv = { HISTORY_TABLE_NAME: 'a', KEEP: 'me' };
    const target = { kind: 'local' as const, description: '', env: { HISTORY_TABLE_NAME: 'a' }, queues: {} };
    expect(await applyTarget(target, env)).toBe(false);
    expect(await applyTarget({ ...target, env: { HISTORY_TABLE_NAME: 'b', ORDERS_QUEUE_URL: 'q' } }, env)).toBe(true);
    expect(env).toEqual({ HISTORY_TABLE_NAME: 'b', ORDERS_QUEUE_URL: 'q', KEEP: 'me' });
  });
});
