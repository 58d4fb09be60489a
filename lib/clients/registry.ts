/**
 * HTTP clients are built once per container and reused. They are keyed by the settings
 * they were built from, so a changed environment (the local stack, tests) gets new ones.
 */
const clients = new Map<string, unknown>();

export function memoized<T>(key: string, build: () => T): T {
  let client = clients.get(key) as T | undefined;
  if (client === undefined) {
    client = build();
    clients.set(key, client);
  }
  return client;
}

export function resetClients(): void {
  clients.clear();
}
