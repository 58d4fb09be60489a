import { config, globalConfig } from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';

/**
 * The zod of every schema that is bundled into the Lambda functions:
 * `import * as z from '…/domain/schema.ts'` gives zod/mini, the functional build of zod
 * (~19 KB instead of ~95 KB of classic zod in each bundle, and a fraction of its import
 * time at cold start). Same core, so the same parsing, outputs and issues; only the API
 * differs (`z.optional(s)`, `s.check(z.minLength(1))`, `z.pipe(s, z.transform(fn))`,
 * `z._default(s, v)` instead of the chained methods).
 *
 * Classic zod registers its English messages itself; zod/mini loads no locale, so its
 * default messages would all read "Invalid input". English is registered here the way
 * classic zod does it (only when no locale has been configured), so every message —
 * logged, returned by the webhook, shown by the CLI — reads exactly as before.
 *
 * Import zod from here, never from 'zod/mini' directly, so the locale is always in place;
 * and as a namespace (`import * as z`), never as a value re-exported from here, which
 * would keep all of zod/mini (and its ~60 locales) in every bundle. Code outside the
 * bundles (CLI, simulators, tests) may keep classic 'zod'; both share one configuration.
 */
if (!globalConfig.localeError) config(en());

export * from 'zod/mini';
