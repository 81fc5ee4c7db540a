/**
 * What one process runs on, and the two calls every entry point (server, worker, tests) uses to
 * get it and let it go: `openContext` opens the backends (backends.ts) and builds the services
 * over them (services.ts); `closeContext` stops the services and closes the backends.
 */
import type { Logger } from 'pino';
import { openBackends, type BackendOptions, type Backends } from './backends.ts';
import type { Config } from './config.ts';
import { createServices, type ServiceOptions, type Services } from './services.ts';

/**
 * A process's configuration, logger, backends and services, built once by its entry point and
 * handed down as arguments; nothing looks it up.
 */
export interface AppContext {
  readonly config: Config;
  readonly log: Logger;
  readonly backends: Backends;
  readonly services: Services;
}

/** Opens the backends and builds the services; starts nothing (see `Services.start`). */
export async function openContext(config: Config, log: Logger, options: { backends?: BackendOptions; services?: ServiceOptions } = {}): Promise<AppContext> {
  const backends = await openBackends(config, log, options.backends);
  try {
    return { config, log, backends, services: createServices(backends, config, log, options.services) };
  } catch (err) {
    await backends.close();
    throw err;
  }
}

/** Stops the services' background work, then closes the backends; failures are logged, not thrown. */
export async function closeContext(ctx: AppContext): Promise<void> {
  try {
    await ctx.services.close();
  } catch (err) {
    ctx.log.warn({ err }, 'error while stopping services');
  }
  await ctx.backends.close();
}
