// Runs the SQS emulator as its own process (the local stack spawns this file).
// The fauxqs CLI logs every request; this starts it quietly on the port we choose.
import { startFauxqs } from 'fauxqs';

const port = Number(process.env.FAUXQS_PORT ?? 0);
const server = await startFauxqs({ port, logger: false });
process.stdout.write(`fauxqs ready on ${server.port}\n`);
const stop = () => {
  void Promise.resolve(server.stop?.()).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
