// One Lambda execution environment for one function bundle (see local/sandbox.ts), run as a
// worker thread on plain Node: no TypeScript loader, no code of the local stack. Init loads
// the bundle (its cold start), then each message is one invocation, one at a time, as in a
// Lambda sandbox. The result travels as JSON, as Lambda returns it.
import { parentPort, workerData } from 'node:worker_threads';

const { bundleUrl, exportName } = workerData;

function describe(error) {
  return error instanceof Error
    ? { errorType: error.name, errorMessage: error.message, trace: String(error.stack ?? '').split('\n') }
    : { errorType: 'Error', errorMessage: String(error), trace: [] };
}

let handler;
try {
  const module = await import(bundleUrl);
  if (typeof module[exportName] !== 'function') throw new Error(`${bundleUrl} does not export ${exportName}`);
  handler = module[exportName];
} catch (error) {
  // The pool ends this sandbox when it hears of it.
  parentPort.postMessage({ type: 'init-error', error: describe(error) });
}

parentPort.on('message', async ({ id, event, context: fields, deadline }) => {
  const context = {
    ...fields,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  try {
    const result = await handler(event, context);
    parentPort.postMessage({ type: 'result', id, json: result === undefined ? undefined : JSON.stringify(result) });
  } catch (error) {
    parentPort.postMessage({ type: 'error', id, error: describe(error) });
  }
});

if (handler) parentPort.postMessage({ type: 'ready' });
