import * as z from 'zod';
import { config, sideSwitchOn } from '../config/index.ts';
import { describeError } from '../domain/errors.ts';
import { SERVICE, type Target } from './target.ts';

/**
 * Which sides the target's workers have switched on (`KOMFORTKASSE_ENABLED`, `KLAR_ENABLED`),
 * for `status` and `history`: a side that is off shows `off`. The local stack's environment
 * is in its state file; a deployed stage's is the order worker's, read from Lambda.
 */

export const SIDES = ['komfortkasse', 'klar'] as const;
export type Side = (typeof SIDES)[number];

export const sidesSchema = z.object({
  /** true = on, false = off, null = unknown (could not be read) */
  komfortkasse: z.boolean().nullable(),
  klar: z.boolean().nullable(),
  /** where the switches were read */
  source: z.string(),
  error: z.string().optional(),
});
export type Sides = z.infer<typeof sidesSchema>;

export const SIDE_VARIABLE: Record<Side, 'KOMFORTKASSE_ENABLED' | 'KLAR_ENABLED'> = { komfortkasse: 'KOMFORTKASSE_ENABLED', klar: 'KLAR_ENABLED' };
export const SIDE_LABEL: Record<Side, string> = { komfortkasse: 'Komfortkasse', klar: 'Klar' };

/** The switches as given in an environment; a value the config would refuse is unknown. */
export function sidesFromEnvironment(env: Record<string, string | undefined>, source: string): Sides {
  const read = (side: Side) => sideSwitchOn(env[SIDE_VARIABLE[side]]) ?? null;
  return { komfortkasse: read('komfortkasse'), klar: read('klar'), source };
}

export async function sidesFor(target: Target): Promise<Sides> {
  if (target.kind === 'local') return sidesFromEnvironment(target.env, "the local stack's environment");
  if (target.kind === 'env') {
    const env = config();
    return { komfortkasse: env.KOMFORTKASSE_ENABLED, klar: env.KLAR_ENABLED, source: 'this environment' };
  }
  const stage = target.env.STAGE ?? '';
  const functionName = `${SERVICE}-${stage}-sync-order`;
  try {
    // Loaded only for a stage: local commands never pay for the Lambda client.
    const { LambdaClient, GetFunctionConfigurationCommand } = await import('@aws-sdk/client-lambda');
    const client = new LambdaClient(target.env.AWS_REGION ? { region: target.env.AWS_REGION } : {});
    try {
      const { Environment } = await client.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
      return sidesFromEnvironment(Environment?.Variables ?? {}, `the deployed ${functionName}`);
    } finally {
      client.destroy();
    }
  } catch (error) {
    return { komfortkasse: null, klar: null, source: `unknown: ${functionName} could not be read`, error: describeError(error) };
  }
}

/** `on`, `off` or `unknown`, as status and history print a side. */
export function sideState(sides: Sides, side: Side): 'on' | 'off' | 'unknown' {
  const value = sides[side];
  return value === null ? 'unknown' : value ? 'on' : 'off';
}
