import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A child process we own; `stop()` kills its whole process group so nothing is left running. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const live = new Set<ManagedProcess>();

/** Last resort: if the parent dies without cleaning up, kill what it spawned. */
process.once('exit', () => {
  for (const managed of live) killGroup(managed.child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export function startProcess(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ManagedProcess {
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // e.g. ENOENT when the command is not installed: say which, instead of crashing.
  child.on('error', (error: NodeJS.ErrnoException) => {
    output.push(error.code === 'ENOENT' ? `${command} is not installed or not on PATH` : error.message);
  });
  const managed: ManagedProcess = {
    name,
    child,
    async stop() {
      live.delete(managed);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
  (managed as ManagedProcess & { output: string[] }).output = output;
  live.add(managed);
  return managed;
}

export function recentOutput(managed: ManagedProcess): string {
  return ((managed as ManagedProcess & { output?: string[] }).output ?? []).join('').slice(-2000);
}

/** Polls `probe` until it resolves, the process dies, or the deadline passes. */
export async function waitUntilReady(managed: ManagedProcess, probe: () => Promise<unknown>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (managed.child.exitCode !== null || (managed.child.pid === undefined && recentOutput(managed))) {
      throw new Error(`${managed.name} did not start (exit code ${managed.child.exitCode ?? 'none'}): ${recentOutput(managed)}`);
    }
    try {
      await probe();
      return;
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await managed.stop();
  throw new Error(`${managed.name} not ready after ${timeoutMs} ms: ${String(lastError)} ${recentOutput(managed)}`);
}
