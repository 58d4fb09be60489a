import { ConfigError } from '../domain/errors.ts';
import { DEFAULT_FEE_SCHEDULE, feeScheduleSchema, type FeeSchedule } from '../domain/fee-schedule.ts';

const ENV_VARIABLE = 'FEE_SCHEDULE';

/**
 * Reads `FEE_SCHEDULE`: undefined or blank → DEFAULT_FEE_SCHEDULE; otherwise JSON
 * `{"rules":[…]}` validated against feeScheduleSchema. Any problem → ConfigError naming
 * FEE_SCHEDULE and every failing path (e.g. `rules.0.percent`).
 */
export function parseFeeSchedule(json: string | undefined): FeeSchedule {
  if (json === undefined || json.trim() === '') return DEFAULT_FEE_SCHEDULE;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`Invalid configuration — ${ENV_VARIABLE}: not valid JSON (${reason})`, [ENV_VARIABLE], {
      cause: error,
    });
  }
  const result = feeScheduleSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  throw new ConfigError(`Invalid configuration — ${ENV_VARIABLE}: ${problems.join('; ')}`, [ENV_VARIABLE], {
    cause: result.error,
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}
