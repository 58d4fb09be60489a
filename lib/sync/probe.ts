import { probeMessageSchema, type ProbeMessage } from '../domain/probe.ts';
import { logger } from '../observability/logger.ts';
import { recordProbe } from '../store/probes.ts';

/**
 * The order worker's whole handling of a probe (lib/domain/probe.ts): one history item,
 * one log line. No order is resolved, no upstream called, nothing forwarded to Klar.
 */

/** The probe in a decoded orders.fifo body, or undefined for anything else (an order message). */
export function asProbe(body: unknown): ProbeMessage | undefined {
  const parsed = probeMessageSchema.safeParse(body);
  return parsed.success ? parsed.data : undefined;
}

export async function syncProbe(message: ProbeMessage): Promise<{ probe: string }> {
  await recordProbe(message);
  logger.info('probe recorded', { probeId: message.probeId, correlationId: message.correlationId, outcome: 'probe' });
  return { probe: message.probeId };
}
