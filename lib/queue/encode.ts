/** Characters SQS refuses in a message body (and the emulator refuses astral ones too). */
const SQS_UNSAFE_CHAR = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/g;

/**
 * JSON for an SQS message body. Characters SQS would refuse (U+FFFE, U+FFFF, and every
 * UTF-16 surrogate, which the emulator rejects even in valid pairs) are written as \u
 * escapes: the same JSON value, so an emoji in a customer note cannot turn into a 503.
 * Throws on values JSON.stringify cannot handle (e.g. absurd nesting).
 */
export function encodeQueueMessage(message: unknown): string {
  return JSON.stringify(message).replace(SQS_UNSAFE_CHAR, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A queue message body as JSON, or `undefined` when it is not JSON (the caller's schema then refuses it). */
export function decodeQueueMessage(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}
