import { Logger, LogFormatter, LogItem } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
import { redact } from './redact.ts';

/** Powertools JSON lines, with every attribute passed through the PII redaction. */
class RedactingFormatter extends LogFormatter {
  public formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    const base = {
      level: attributes.logLevel,
      message: redact(attributes.message) as string,
      timestamp: this.formatTimestamp(attributes.timestamp),
      service: attributes.serviceName,
      function: attributes.lambdaContext?.functionName,
      requestId: attributes.lambdaContext?.awsRequestId,
      xray: attributes.xRayTraceId,
    };
    return new LogItem({ attributes: base }).addAttributes(redact(additional) as LogAttributes);
  }
}

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'orderbridge',
  logFormatter: new RedactingFormatter(),
});

/** A child logger that stamps every line with the order and the correlation id. */
export function orderLogger(fields: { orderId?: number; orderCode?: string; correlationId?: string }): Logger {
  return logger.createChild({ persistentKeys: stripUndefined(fields) });
}

function stripUndefined(fields: Record<string, unknown>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Record<string, string | number>;
}

/**
 * A batch worker's logger: one batch carries many orders, so every line names all of
 * their correlation ids (capped, to keep lines small).
 */
export function batchLogger(correlationIds: readonly string[], limit = 100): Logger {
  const unique = [...new Set(correlationIds)];
  return logger.createChild({
    persistentKeys: { correlationIds: unique.slice(0, limit), ...(unique.length > limit ? { correlationIdsOmitted: unique.length - limit } : {}) },
  });
}
