'use strict';

/**
 * Orderbridge's own osls plugin (registered in serverless.yml `plugins:`).
 *
 * - Before anything is built (`package`, and `deploy` with a prebuilt `--package`), it checks
 *   the deploy-time settings and fails naming the environment variable at fault:
 *   ORDERBRIDGE_ALARM_EMAIL must be set for every stage but custom.devStages
 *   (alarms that reach nobody are no alarms), and WEBHOOK_THROTTLE_BURST /
 *   WEBHOOK_THROTTLE_RATE must be positive numbers, ORDER_WORKER_CONCURRENCY (the order worker's
 *   maximumConcurrency) a whole number from 2 to 1000, and KLAR_ENABLED / KOMFORTKASSE_ENABLED
 *   must not both be false. Then the functions' settings go through lib/config/deployment.ts
 *   (run with tsx, so the rules exist once): every value parses as a cold start parses it, a
 *   production stage names its shop, and the settings that must agree do.
 * - It resolves `${orderbridge:production}` (true on every stage but custom.devStages) and
 *   `${orderbridge:dataPolicy}` (Retain there, else Delete) at package time, so the packaged
 *   template of a production stage carries the literal policies and deletion protection.
 * - After a deploy (and on `info`), it prints the CloudWatch dashboard's URL.
 *
 * Plain CommonJS without dependencies: osls loads it from the service directory.
 */

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const DEFAULT_DEV_STAGES = ['local', 'dev', 'ci'];
// Deliberately loose: SNS (and the confirmation mail) is the real check.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

class OrderbridgePlugin {
  constructor(serverless, options = {}, utils = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = utils.log ?? {
      notice: (message) => serverless.cli.log(message),
      warning: (message) => serverless.cli.log(message),
    };
    this.configurationVariablesSources = {
      orderbridge: { resolve: (source) => this.resolveVariable(source) },
    };
    this.hooks = {
      'before:package:initialize': () => this.checkSettings(),
      'before:deploy:deploy': () => this.checkSettings(),
      'after:deploy:deploy': () => this.printDashboardUrl(),
      'after:info:info': () => this.printDashboardUrl(),
    };
  }

  /** `${orderbridge:production}` and `${orderbridge:dataPolicy}`, from the stage and custom.devStages. */
  async resolveVariable({ address, resolveVariable }) {
    const stage = String(await resolveVariable('sls:stage'));
    const devStages = await resolveVariable('self:custom.devStages, null');
    const production = !(Array.isArray(devStages) ? devStages.map(String) : DEFAULT_DEV_STAGES).includes(stage);
    if (address === 'production') return { value: production };
    if (address === 'dataPolicy') return { value: production ? 'Retain' : 'Delete' };
    throw new Error(`\${orderbridge:${address}} is not known: use \${orderbridge:production} or \${orderbridge:dataPolicy}`);
  }

  fail(message) {
    const ServerlessError = this.serverless.classes && this.serverless.classes.Error;
    throw ServerlessError ? new ServerlessError(message, 'ORDERBRIDGE_SETTINGS') : new Error(message);
  }

  stage() {
    return this.serverless.getProvider('aws').getStage();
  }

  custom() {
    return this.serverless.service.custom || {};
  }

  checkSettings() {
    if (this.checked) return; // `deploy` runs the package lifecycle first
    this.checked = true;
    const stage = this.stage();
    const custom = this.custom();
    const optional = Array.isArray(custom.devStages) ? custom.devStages.map(String) : DEFAULT_DEV_STAGES;
    const email = custom.alarmEmail === undefined || custom.alarmEmail === null ? '' : String(custom.alarmEmail).trim();
    if (email === '' && !optional.includes(stage)) {
      this.fail(
        `ORDERBRIDGE_ALARM_EMAIL is not set: stage "${stage}" needs an address that receives its alarms ` +
          `(e.g. ORDERBRIDGE_ALARM_EMAIL=ops@example.com npx osls deploy --stage ${stage}). ` +
          `Only the stages ${optional.join(', ')} may go without one.`,
      );
    }
    if (email !== '' && !EMAIL.test(email)) {
      this.fail(`ORDERBRIDGE_ALARM_EMAIL is not an e-mail address: "${email}"`);
    }
    if (email === '') this.log.warning(`ORDERBRIDGE_ALARM_EMAIL is not set: alarms of stage "${stage}" reach no one`);

    // custom.klarEnabled / komfortkasseEnabled: KLAR_ENABLED / KOMFORTKASSE_ENABLED through strToBool.
    if (custom.klarEnabled === false && custom.komfortkasseEnabled === false) {
      this.fail('KLAR_ENABLED and KOMFORTKASSE_ENABLED are both false: the stage would sync nothing. Switch at least one side on.');
    }

    const throttle = custom.webhookThrottle || {};
    const burst = Number(throttle.burst);
    if (!Number.isInteger(burst) || burst < 1) {
      this.fail(`WEBHOOK_THROTTLE_BURST must be a whole number of requests ≥ 1, not "${throttle.burst}"`);
    }
    const rate = Number(throttle.rate);
    if (!Number.isFinite(rate) || rate <= 0) {
      this.fail(`WEBHOOK_THROTTLE_RATE must be a number of requests per second > 0, not "${throttle.rate}"`);
    }
    // Environment variables are strings: hand CloudFormation numbers.
    throttle.burst = burst;
    throttle.rate = rate;
    const extensions = this.serverless.service.resources && this.serverless.service.resources.extensions;
    const settings = extensions && extensions.HttpApiStage && extensions.HttpApiStage.Properties && extensions.HttpApiStage.Properties.DefaultRouteSettings;
    if (settings && 'ThrottlingBurstLimit' in settings) settings.ThrottlingBurstLimit = burst;
    if (settings && 'ThrottlingRateLimit' in settings) settings.ThrottlingRateLimit = rate;
    this.checkEventSourceConcurrency();
    this.checkDeployment(optional);
  }

  /**
   * The functions' settings, checked by the same code that validates them at a cold start
   * (lib/config/deployment.ts, run through infra/check-deployment.ts with tsx): every value
   * parses (JSON and enumerated settings included), a production stage names its shop, and the
   * settings that must agree do (deadlines within timeouts, visibility timeouts, the lease).
   */
  checkDeployment(devStages) {
    const service = this.serverless.service;
    const provider = service.provider || {};
    const resources = (service.resources && service.resources.Resources) || {};
    // Values CloudFormation fills in (!Ref of a queue URL) are some string to the check.
    const asString = (value) => (typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : 'resolved-by-cloudformation');
    const environmentOf = (fn) =>
      Object.fromEntries(Object.entries({ ...(provider.environment || {}), ...((fn && fn.environment) || {}) }).map(([key, value]) => [key, asString(value)]));
    const logicalIdOf = (arn) => (arn && Array.isArray(arn['Fn::GetAtt']) ? String(arn['Fn::GetAtt'][0]) : undefined);
    const deployment = {
      stage: this.stage(),
      devStages,
      functions: Object.entries(service.functions || {}).map(([name, fn]) => {
        const sqs = ((fn && fn.events) || []).map((event) => event && event.sqs).find(Boolean);
        return {
          name,
          timeoutSeconds: Number(fn.timeout || provider.timeout || 6),
          environment: environmentOf(fn),
          ...(sqs && logicalIdOf(sqs.arn) ? { sqs: { queueLogicalId: logicalIdOf(sqs.arn), maximumBatchingWindowSeconds: Number(sqs.maximumBatchingWindow || 0) } } : {}),
        };
      }),
      queues: Object.entries(resources)
        .filter(([, resource]) => resource && resource.Type === 'AWS::SQS::Queue')
        .map(([logicalId, resource]) => ({ logicalId, visibilityTimeoutSeconds: Number((resource.Properties && resource.Properties.VisibilityTimeout) || 30) })),
    };
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'check-deployment.ts')], {
      cwd: this.serverless.serviceDir || process.cwd(),
      input: JSON.stringify(deployment),
      encoding: 'utf8',
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let problems;
    try {
      ({ problems } = JSON.parse(result.stdout));
    } catch {
      this.fail(`The settings check (infra/check-deployment.ts) did not run: ${(result.error && result.error.message) || result.stderr || `exit ${result.status}`}`);
    }
    if (problems.length > 0) {
      this.fail(`Stage "${deployment.stage}" cannot be packaged with these settings:\n  - ${problems.join('\n  - ')}`);
    }
  }

  /** ORDER_WORKER_CONCURRENCY (and any other maximumConcurrency): a whole number SQS accepts, 2 to 1000. */
  checkEventSourceConcurrency() {
    for (const [name, fn] of Object.entries(this.serverless.service.functions || {})) {
      for (const event of (fn && fn.events) || []) {
        if (!event || !event.sqs || event.sqs.maximumConcurrency === undefined) continue;
        const value = Number(event.sqs.maximumConcurrency);
        if (!Number.isInteger(value) || value < 2 || value > 1000) {
          const variable = name === 'sync-order' ? 'ORDER_WORKER_CONCURRENCY' : `maximumConcurrency of ${name}`;
          this.fail(`${variable} must be a whole number from 2 to 1000 (SQS's limits for maximumConcurrency), not "${event.sqs.maximumConcurrency}"`);
        }
        // Environment variables are strings: hand CloudFormation a number.
        event.sqs.maximumConcurrency = value;
      }
    }
  }

  dashboardName() {
    const resources = (this.serverless.service.resources && this.serverless.service.resources.Resources) || {};
    const dashboard = Object.values(resources).find((resource) => resource && resource.Type === 'AWS::CloudWatch::Dashboard');
    const name = dashboard && dashboard.Properties && dashboard.Properties.DashboardName;
    return typeof name === 'string' ? name : `${this.serverless.service.service}-${this.stage()}`;
  }

  dashboardUrl() {
    const region = this.serverless.getProvider('aws').getRegion();
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${encodeURIComponent(this.dashboardName())}`;
  }

  printDashboardUrl() {
    this.log.notice(`dashboard: ${this.dashboardUrl()}`);
  }
}

module.exports = OrderbridgePlugin;
