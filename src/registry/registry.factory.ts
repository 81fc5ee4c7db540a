import type { AppContext } from '../platform/context.ts';
import type { Store } from '../store/database.ts';
import { RegistryService } from './registry.service.ts';

/** Builds a registry over the context's store and artifact store (model size limit: the body limit). */
export function createRegistry(ctx: Pick<AppContext, 'store' | 'artifacts' | 'log' | 'config'>): RegistryService {
  return new RegistryService({
    store: ctx.store,
    artifacts: ctx.artifacts,
    log: ctx.log.child({ component: 'registry' }),
    maxModelBytes: ctx.config.bodyLimitBytes,
  });
}

// Keyed by the store: one registry (and one set of change listeners) per opened store, so the
// routes, serving and training of one app share it while separate test apps stay apart.
const instances = new WeakMap<Store, RegistryService>();

/**
 * The registry of this context, created on first use. Serving and training call this to get the
 * same instance the registry routes use, so in-process `onChange` notifications reach them.
 */
export function getRegistry(ctx: Pick<AppContext, 'store' | 'artifacts' | 'log' | 'config'>): RegistryService {
  let registry = instances.get(ctx.store);
  if (registry === undefined) {
    registry = createRegistry(ctx);
    instances.set(ctx.store, registry);
  }
  return registry;
}
