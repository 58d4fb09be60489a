import { PassThrough, Readable } from 'node:stream';
import { GetParameterCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS, SECRET_PARAMETER_NAMES, runCli } from '../../bin/cli.ts';
import type { SecretInput } from '../../lib/ops/io.ts';
import { SECRET_NAMES } from '../../lib/ops/secrets.ts';
import { logger } from '../../lib/observability/logger.ts';

// `orderbridge secrets` with SSM mocked: values come from stdin or a prompt that does not
// echo, land in SecureString parameters at the paths serverless.yml reads, and never appear
// in argv, on stdout/stderr or in a log line.

const ssm = mockClient(SSMClient);
const VALUES = ['whsec-Zq81-never-shown', 'kk-key-9f3a-never-shown', 'klar-token-77b1-never-shown', 'vc-key-4c2d-never-shown', 'vc-pass-e5f6-never-shown'];

const savedEnv = { ...process.env };
beforeAll(() => {
  for (const name of ['STAGE', 'KLAR_ENABLED', 'KOMFORTKASSE_ENABLED', 'AWS_ENDPOINT_URL_SSM']) delete process.env[name];
  Object.assign(process.env, { AWS_REGION: 'eu-central-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
});
afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  ssm.restore();
});

/** Everything this process could print or log while the command runs. */
let leaked: string[];
beforeEach(() => {
  ssm.reset();
  ssm.on(PutParameterCommand).resolves({ Version: 2 });
  leaked = [];
  const capture = (...args: unknown[]) => void leaked.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) vi.spyOn(console, method).mockImplementation(capture);
  for (const method of ['debug', 'info', 'warn', 'error'] as const) vi.spyOn(logger, method).mockImplementation(capture as never);
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => (capture(String(chunk)), true)) as never);
  vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: unknown) => (capture(String(chunk)), true)) as never);
});
afterEach(() => vi.restoreAllMocks());

async function secrets(argv: string[], stdin?: SecretInput, env: NodeJS.ProcessEnv = process.env) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    ['secrets', ...argv],
    { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, ...(stdin ? { stdin } : {}) },
    { env, defaultStateFile: '/nonexistent/orderbridge-state.json' },
  );
  return { code, stdout, stderr };
}

const piped = (text: string) => Readable.from([text]) as unknown as SecretInput;
const puts = () => ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input);

describe('orderbridge secrets set', () => {
  it('writes every parameter serverless.yml reads as a SecureString, from stdin, and prints or logs no value', async () => {
    // act
    const result = await secrets(['set', '--stage', 'prod'], piped(`${VALUES.join('\n')}\n`));
    // assess
    expect(result.code).toBe(0);
    expect(puts()).toEqual(
      SECRET_NAMES.map((name, i) => ({ Name: `/orderbridge/prod/${name}`, Value: VALUES[i], Type: 'SecureString', Overwrite: true })),
    );
    expect(result.stdout).toContain('wrote /orderbridge/prod/komfortkasse-api-key (SecureString, version 2)');
    expect(result.stdout).toContain('5 parameter(s) written, 0 left as they were');
    for (const value of VALUES) {
      expect(result.stdout).not.toContain(value);
      expect(result.stderr).not.toContain(value);
      expect(leaked.join('\n')).not.toContain(value);
    }
  });

  it('asks only for the secrets of enabled sides; an empty line leaves a parameter as it is', async () => {
    // act: Klar switched off in the deploy shell; the shop password line is empty
    const result = await secrets(['set', '--stage', 'prod'], piped('whsec-1\nkk-key-1\nvc-key-1\n\n'), { ...process.env, KLAR_ENABLED: 'false' });
    // assess
    expect(result.code).toBe(0);
    expect(puts().map((input) => input.Name)).toEqual(['/orderbridge/prod/webhook-secrets', '/orderbridge/prod/komfortkasse-api-key', '/orderbridge/prod/versacommerce-api-key']);
    expect(result.stderr).toContain('klar-api-token: skipped (KLAR_ENABLED=false in this shell)');
    expect(result.stderr).toContain('/orderbridge/prod/versacommerce-api-password: left as it is (no value given)');
  });

  it('--only sets one parameter from all of stdin', async () => {
    const result = await secrets(['set', '--stage', 'prod', '--only', 'komfortkasse-api-key'], piped(`${VALUES[1]}\n`));
    expect(result.code).toBe(0);
    expect(puts()).toEqual([{ Name: '/orderbridge/prod/komfortkasse-api-key', Value: VALUES[1], Type: 'SecureString', Overwrite: true }]);
    expect(result.stdout + result.stderr + leaked.join('')).not.toContain(VALUES[1]);
  });

  it('prompts on a terminal without echoing what is typed', async () => {
    // prepare: a terminal that types the value once the prompt is up
    const tty = Object.assign(new PassThrough(), { isTTY: true, setRawMode: vi.fn() });
    // act
    const running = secrets(['set', '--stage', 'prod', '--only', 'klar-api-token'], tty as unknown as SecretInput);
    await vi.waitFor(() => expect(tty.setRawMode).toHaveBeenCalledWith(true));
    tty.write(`${VALUES[2]}x\u007f\r`); // a typo, backspace, Enter
    const result = await running;
    // assess
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Klar API token (/orderbridge/prod/klar-api-token): \n');
    expect(tty.setRawMode).toHaveBeenLastCalledWith(false);
    expect(puts()).toEqual([expect.objectContaining({ Name: '/orderbridge/prod/klar-api-token', Value: VALUES[2] })]);
    expect(result.stdout + result.stderr + leaked.join('')).not.toContain(VALUES[2]);
  });

  it('takes no value from argv: a value given there is a usage error and nothing is written', async () => {
    // act
    const asOption = await secrets(['set', '--stage', 'prod', '--value', VALUES[0]!], piped(''));
    const asArgument = await secrets(['set', VALUES[0]!, '--stage', 'prod'], piped(''));
    const asOnly = await secrets(['set', '--stage', 'prod', '--only', VALUES[0]!], piped(''));
    // assess
    for (const result of [asOption, asArgument, asOnly]) expect(result.code).toBe(2);
    expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
    // the only option with a value names a parameter, never carries one
    const valued = Object.entries(COMMANDS.secrets!.options).filter(([, spec]) => spec.type === 'string');
    expect(valued.map(([name]) => name)).toEqual(['only']);
    expect(SECRET_PARAMETER_NAMES).toEqual(SECRET_NAMES);
  });

  it('without --stage explains that npm start reads the environment, and writes nothing', async () => {
    const result = await secrets(['set'], piped(VALUES.join('\n')));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/No --stage given: nothing written\.\n`npm start` takes its secrets from the environment/);
    expect(result.stdout).toContain('KOMFORTKASSE_API_KEY');
    expect(ssm).not.toHaveReceivedAnyCommand();
  });
});

describe('orderbridge secrets rotate-webhook', () => {
  it('adds a new random secret beside the old one, prints it once; --finish drops the old one', async () => {
    // prepare
    let stored = 'the-old-webhook-secret';
    ssm.on(GetParameterCommand, { Name: '/orderbridge/prod/webhook-secrets', WithDecryption: true }).callsFake(() => ({ Parameter: { Value: stored } }));
    ssm.on(PutParameterCommand).callsFake((input) => {
      stored = input.Value;
      return { Version: 3 };
    });
    // act
    const rotated = await secrets(['rotate-webhook', '--stage', 'prod']);
    const fresh = stored.split(',')[1]!;
    const again = await secrets(['rotate-webhook', '--stage', 'prod']);
    const finished = await secrets(['rotate-webhook', '--stage', 'prod', '--finish']);
    // assess
    expect(rotated.code).toBe(0);
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.stdout.split(fresh)).toHaveLength(2); // printed exactly once
    expect(rotated.stdout).not.toContain('the-old-webhook-secret');
    expect(rotated.stdout).toContain('orderbridge secrets rotate-webhook --stage prod --finish');
    expect(again.code).toBe(1); // a rotation is under way
    expect(again.stderr).toMatch(/holds 2 secrets: a rotation is under way/);
    expect(finished.code).toBe(0);
    expect(stored).toBe(fresh);
    expect(puts().every((input) => input.Type === 'SecureString' && input.Name === '/orderbridge/prod/webhook-secrets')).toBe(true);
    expect(leaked.join('')).not.toContain(fresh);
  });

  it('refuses to rotate a secret that was never set', async () => {
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'not found', $metadata: {} }));
    const result = await secrets(['rotate-webhook', '--stage', 'prod']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('set it first with `orderbridge secrets set --stage prod --only webhook-secrets`');
    expect(ssm).not.toHaveReceivedCommand(PutParameterCommand);
  });
});
