import * as z from './schema.ts';

/**
 * A probe: the webhook body `orderbridge check` sends to prove the whole path — ingest
 * accepts it (202), orders.fifo carries it, the order worker records it in the history
 * table — without any order. It is never sent to an upstream and never forwarded to Klar.
 */

/** Probe ids are chosen by the check (a UUID); anything safe to use in a key and a log line. */
const probeId = z.string().check(z.regex(/^[A-Za-z0-9-]{8,64}$/, 'must be 8 to 64 letters, digits or dashes'));

/** `{"probe":{"id":"<uuid>"}}`, signed or tokened like every webhook. */
export const probeBodySchema = z.strictObject({ probe: z.strictObject({ id: probeId }) });

/** The queue message a probe becomes on orders.fifo (its own message group, so it never waits behind an order). */
export const probeMessageSchema = z.object({
  kind: z.literal('probe'),
  probeId,
  receivedAt: z.iso.datetime(),
  correlationId: z.string().check(z.minLength(1)),
});
export type ProbeMessage = z.infer<typeof probeMessageSchema>;
