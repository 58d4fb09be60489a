/**
 * The TypeScript half of the package-time check: infra/orderbridge-plugin.cjs (CommonJS,
 * loaded by osls) runs this with `node --import tsx`, hands it the resolved deployment as
 * JSON on stdin, and fails packaging on any problem it prints. The rules are the config's
 * own (lib/config/deployment.ts), so they exist once.
 */
import { checkDeployment, type Deployment } from '../lib/config/deployment.ts';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
const problems = checkDeployment(JSON.parse(input) as Deployment);
process.stdout.write(`${JSON.stringify({ problems })}\n`);
