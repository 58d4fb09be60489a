import { ensureBundles } from '../local/bundles.ts';
import { readStackDefinition } from '../local/infra.ts';

/** `vitest --mode bundled`: the bundles are built (when stale) once, before any file starts a stack. */
export default async function buildBundlesOnce(): Promise<void> {
  await ensureBundles(readStackDefinition({ stage: 'local' }).functions, {
    onBuild: (names) => console.info(`bundling ${names.join(', ')} with esbuild (serverless.yml custom.esbuild)`),
  });
}
