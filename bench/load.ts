import { Agent, request } from 'node:http';

export interface LoadResult {
  /** per-request latency in ms, in completion order */
  latencies: number[];
  /** per-request send time (performance.now()) by index */
  sentAt: number[];
  statuses: number[];
  durationMs: number;
  rps: number;
}

export interface PreparedRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Closed-loop load: `concurrency` clients, each sending its next request when the last one
 * answered, over keep-alive connections (as API Gateway keeps its own to Lambda's front).
 */
export async function runLoad(baseUrl: string, requests: readonly PreparedRequest[], concurrency: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(baseUrl);
  const latencies: number[] = new Array(requests.length);
  const sentAt: number[] = new Array(requests.length);
  const statuses: number[] = new Array(requests.length);
  let next = 0;
  const send = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const prepared = requests[index]!;
      const started = performance.now();
      sentAt[index] = started;
      const req = request(
        { host: url.hostname, port: url.port, path: prepared.path, method: 'POST', agent, headers: { ...prepared.headers, 'content-length': String(prepared.body.length) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies[index] = performance.now() - started;
            statuses[index] = res.statusCode ?? 0;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(prepared.body);
    });
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, requests.length) }, async () => {
        while (next < requests.length) await send(next++);
      }),
    );
  } finally {
    agent.destroy();
  }
  const durationMs = performance.now() - started;
  return { latencies, sentAt, statuses, durationMs, rps: (requests.length / durationMs) * 1000 };
}
