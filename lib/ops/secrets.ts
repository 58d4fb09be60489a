import { randomBytes } from 'node:crypto';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { webhookSecretsFrom } from '../config/env.ts';
import { EXIT, println, type CliIo, type SecretInput } from './io.ts';
import { sideOn, stageResourceNames } from './target.ts';

/**
 * `orderbridge secrets`: writes the SSM SecureString parameters serverless.yml points the
 * functions at (`/orderbridge/<stage>/<name>`). Values come from a prompt that does not echo
 * (on a terminal) or from stdin — never from argv, which other users of the machine, the
 * shell history and process listings can see — and are never printed or logged. The one
 * exception is a new webhook secret from `rotate-webhook`: printed once, for the shop.
 */

export interface SecretParameter {
  /** the last path segment, as serverless.yml names it */
  name: string;
  /** the variable npm start reads instead */
  variable: string;
  /** which side needs it: a switched-off side's secret is not asked for */
  side: 'webhook' | 'komfortkasse' | 'klar' | 'shop';
  what: string;
}

export const SECRET_PARAMETERS: readonly SecretParameter[] = [
  { name: 'webhook-secrets', variable: 'WEBHOOK_SECRETS', side: 'webhook', what: 'webhook secret (comma-separated during a rotation)' },
  { name: 'komfortkasse-api-key', variable: 'KOMFORTKASSE_API_KEY', side: 'komfortkasse', what: 'Komfortkasse API key' },
  { name: 'klar-api-token', variable: 'KLAR_API_TOKEN', side: 'klar', what: 'Klar API token' },
  { name: 'versacommerce-api-key', variable: 'VERSACOMMERCE_API_KEY', side: 'shop', what: 'VersaCommerce API key' },
  { name: 'versacommerce-api-password', variable: 'VERSACOMMERCE_API_PASSWORD', side: 'shop', what: 'VersaCommerce API password' },
];
export const SECRET_NAMES = SECRET_PARAMETERS.map((p) => p.name);

/** Functions cache secrets this long (SECRETS_TTL_SECONDS default): no deploy is needed after a change. */
const PICKUP = 'the functions pick a change up within 5 minutes (SECRETS_TTL_SECONDS), no deploy needed';

export interface SecretsOptions {
  /** the deployed stage; undefined (or local) = the local stack, which reads the environment */
  stage?: string;
  region?: string;
  /** only this parameter */
  only?: string;
  /** rotate-webhook: drop the old secret */
  finish?: boolean;
  /** the deploy shell's environment: KOMFORTKASSE_ENABLED / KLAR_ENABLED decide which secrets are asked */
  env?: NodeJS.ProcessEnv;
}

export async function runSecrets(action: 'set' | 'rotate-webhook', options: SecretsOptions, io: CliIo): Promise<number> {
  const stage = options.stage?.trim();
  if (!stage || stage === 'local') {
    println(io.stdout, explainLocal());
    return EXIT.ok;
  }
  const ssm = new SSMClient(options.region ? { region: options.region } : {});
  try {
    const prefix = stageResourceNames(stage).ssmPrefix;
    println(io.stderr, `orderbridge secrets: SSM parameters under ${prefix}/ (stage ${stage}${options.region ? `, ${options.region}` : ''})`);
    return action === 'set' ? await setSecrets(ssm, prefix, options, io) : await rotateWebhook(ssm, prefix, stage, options.finish === true, io);
  } finally {
    ssm.destroy();
  }
}

function explainLocal(): string {
  return [
    'No --stage given: nothing written.',
    '`npm start` takes its secrets from the environment, not from SSM:',
    ...SECRET_PARAMETERS.map((p) => `  ${p.variable.padEnd(28)} ${p.what}`),
    'Unset ones get local defaults (the webhook secret is local-dev-secret), and an upstream',
    'without its *_BASE_URL is simulated. For a deployed stage: orderbridge secrets set --stage <name>',
  ].join('\n');
}

/** The parameters `set` asks for: `--only`, else every one whose side is switched on in this shell. */
export function parametersToSet(only: string | undefined, env: NodeJS.ProcessEnv): SecretParameter[] {
  if (only) return SECRET_PARAMETERS.filter((p) => p.name === only);
  return SECRET_PARAMETERS.filter(
    (p) => (p.side !== 'komfortkasse' || sideOn(env.KOMFORTKASSE_ENABLED)) && (p.side !== 'klar' || sideOn(env.KLAR_ENABLED)),
  );
}

async function setSecrets(ssm: SSMClient, prefix: string, options: SecretsOptions, io: CliIo): Promise<number> {
  const env = options.env ?? process.env;
  const parameters = parametersToSet(options.only, env);
  const skipped = SECRET_PARAMETERS.filter((p) => !parameters.includes(p) && !options.only);
  for (const p of skipped) println(io.stderr, `  ${p.name}: skipped (${p.side === 'klar' ? 'KLAR_ENABLED' : 'KOMFORTKASSE_ENABLED'}=false in this shell)`);
  const input = io.stdin;
  if (!input) {
    println(io.stderr, 'orderbridge secrets: no input to read the values from (a terminal or stdin)');
    return EXIT.failed;
  }
  const terminal = input.isTTY === true && typeof input.setRawMode === 'function';
  // From a pipe: one line per parameter in the order listed (with --only: all of stdin).
  let lines: string[] | undefined;
  if (!terminal) {
    const text = await readAll(input);
    lines = options.only ? [text.replace(/\r?\n$/, '')] : text.split(/\r?\n/);
    println(io.stderr, `  reading ${parameters.length} value(s) from stdin, one line each: ${parameters.map((p) => p.name).join(', ')}`);
  } else {
    println(io.stderr, '  type each value and press Enter (nothing is shown; an empty value leaves the parameter as it is)');
  }

  let written = 0;
  let unchanged = 0;
  for (const [index, parameter] of parameters.entries()) {
    const path = `${prefix}/${parameter.name}`;
    const raw = terminal ? await promptHidden(input, io.stderr, `  ${parameter.what} (${path}): `) : lines![index];
    const value = raw?.trim() ?? '';
    if (value === '') {
      println(io.stderr, `  ${path}: left as it is (no value given)`);
      unchanged++;
      continue;
    }
    if (/[\r\n]/.test(value)) {
      println(io.stderr, `  ${path}: not written — a value must be one line`);
      return EXIT.failed;
    }
    const result = await ssm.send(new PutParameterCommand({ Name: path, Value: value, Type: 'SecureString', Overwrite: true }));
    println(io.stdout, `wrote ${path} (SecureString, version ${result.Version ?? '?'})`);
    written++;
  }
  println(io.stdout, `${written} parameter(s) written, ${unchanged} left as they were; ${PICKUP}.`);
  return EXIT.ok;
}

async function rotateWebhook(ssm: SSMClient, prefix: string, stage: string, finish: boolean, io: CliIo): Promise<number> {
  const path = `${prefix}/webhook-secrets`;
  let current: string[];
  try {
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: path, WithDecryption: true }));
    current = webhookSecretsFrom(Parameter?.Value);
  } catch (error) {
    if ((error as { name?: string }).name !== 'ParameterNotFound') throw error;
    current = [];
  }
  if (current.length === 0) {
    println(io.stderr, `orderbridge secrets: ${path} is not set yet: set it first with \`orderbridge secrets set --stage ${stage} --only webhook-secrets\``);
    return EXIT.failed;
  }
  if (finish) {
    if (current.length === 1) {
      println(io.stdout, `${path} holds one secret: no rotation to finish.`);
      return EXIT.ok;
    }
    // The newest is the last: rotate-webhook appends.
    await ssm.send(new PutParameterCommand({ Name: path, Value: current.at(-1)!, Type: 'SecureString', Overwrite: true }));
    println(io.stdout, `dropped the old webhook secret(s) from ${path}: only the newest is accepted now (${PICKUP}).`);
    return EXIT.ok;
  }
  if (current.length > 1) {
    println(io.stderr, `orderbridge secrets: ${path} holds ${current.length} secrets: a rotation is under way. Finish it first: orderbridge secrets rotate-webhook --stage ${stage} --finish`);
    return EXIT.failed;
  }
  const fresh = newWebhookSecret();
  await ssm.send(new PutParameterCommand({ Name: path, Value: [...current, fresh].join(','), Type: 'SecureString', Overwrite: true }));
  println(io.stdout, 'New webhook secret (shown only now; put it into VersaCommerce\'s webhook settings, e.g. as ?token=…):');
  println(io.stdout, `  ${fresh}`);
  println(io.stdout, `The old and the new secret are both accepted (${PICKUP}). Once the shop uses the new one:`);
  println(io.stdout, `  orderbridge secrets rotate-webhook --stage ${stage} --finish`);
  return EXIT.ok;
}

/** 32 random bytes, URL-safe (it may sit in a ?token= query). */
export function newWebhookSecret(): string {
  return randomBytes(32).toString('base64url');
}

async function readAll(input: SecretInput): Promise<string> {
  let text = '';
  for await (const chunk of input) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
  return text;
}

/** Reads one line from a terminal in raw mode, showing nothing; Ctrl-C aborts. */
function promptHidden(input: SecretInput, out: CliIo['stderr'], question: string): Promise<string> {
  out.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (error?: Error) => {
      input.removeListener('data', onData);
      input.setRawMode!(false);
      input.pause();
      out.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.setRawMode!(true);
    input.on('data', onData);
    input.resume();
  });
}
