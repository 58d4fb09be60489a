/**
 * In-process stand-ins for the three upstreams, used by `npm start` and integration tests.
 * Each start function resolves once its server listens; see server.ts for the common API
 * (request log, fault injection, `/__sim/*` control endpoints).
 */
export {
  MAX_BODY_BYTES,
  type Fault,
  type RecordedRequest,
  type Simulator,
  type SimulatorOptions,
} from './server.ts';
export {
  startKomfortkasseSimulator,
  komfortkasseOrderRequestSchema,
  type KomfortkasseOrderRequest,
  type KomfortkasseSimulator,
  type KomfortkasseSimulatorOptions,
  type StoredKomfortkasseOrder,
} from './komfortkasse.ts';
export {
  startKlarSimulator,
  klarTransactionCostsSchema,
  toKlarTimestamp,
  KLAR_MAX_BATCH,
  type KlarSimulator,
  type KlarSimulatorOptions,
  type KlarState,
  type KlarStateInput,
  type KlarTransactionCosts,
  type KlarValidationError,
  type StoredKlarCost,
} from './klar.ts';
export {
  startVersaCommerceSimulator,
  parseVersaCommerceDate,
  type VersaCommerceOrderData,
  type VersaCommerceSimulator,
  type VersaCommerceSimulatorOptions,
} from './versacommerce.ts';
export { seedOrder, seedKomfortkasseOrder, seedKlarCost } from './fixtures.ts';
