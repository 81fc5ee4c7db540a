/**
 * Native model registry API (API.md "Model registry"): one route file per resource, registered
 * together.
 */
import type { App } from '../platform/app-type.ts';
import { lifecycleRoutes } from './lifecycle.routes.ts';
import { modelRoutes, type LineageChecks } from './models.routes.ts';
import type { Registry } from './registry.service.ts';

export async function registryRoutes(app: App, registry: Registry, options: { maxModelBytes: number; lineage?: LineageChecks }): Promise<void> {
  await modelRoutes(app, registry.models, options);
  await lifecycleRoutes(app, registry.lifecycle);
}
