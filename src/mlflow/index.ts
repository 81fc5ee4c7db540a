/**
 * The MLflow-compatible surface: MLflow's tracking and registry REST API under
 * `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`, which MLflow's own UI and some clients use) and
 * its artifact proxy under `/api/2.0/mlflow-artifacts`, all over the same services as the native
 * API, so a run logged through MLflow shows under `/experiments` and a version registered through
 * MLflow serves on `/predict`. Errors on these prefixes are MLflow's `{error_code, message}`.
 */
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { App } from '../platform/app-type.ts';
import type { Registry } from '../registry/registry.service.ts';
import type { Tracking } from '../tracking/tracking.service.ts';
import { mlflowArtifactRoutes } from './artifacts.routes.ts';
import { mlflowRegistryRoutes } from './registry.routes.ts';
import { mlflowTrackingRoutes } from './tracking.routes.ts';
import { installMlflowErrors, renderMlflowError } from './wire.ts';

export interface MlflowDeps {
  readonly tracking: Tracking;
  readonly registry: Registry;
  /** The artifact store, for reading registered versions' bundles through the proxy. */
  readonly artifacts: ArtifactStore;
}

/** URL prefixes of the surface (the error format covers `/api/2.0/mlflow-artifacts` too). */
export const MLFLOW_PREFIXES = ['/api/2.0/mlflow', '/ajax-api/2.0/mlflow'] as const;

/** Registers the MLflow routes and their error format. */
export async function mlflowRoutes(app: App, deps: MlflowDeps): Promise<void> {
  for (const prefix of [...MLFLOW_PREFIXES, '/api/2.0/mlflow-artifacts', '/ajax-api/2.0/mlflow-artifacts']) {
    app.addErrorFormat({ prefix, render: renderMlflowError });
  }
  for (const prefix of MLFLOW_PREFIXES) {
    const opts = { hidden: prefix.startsWith('/ajax-api') };
    await app.register(
      async (scope: App) => {
        installMlflowErrors(scope);
        mlflowTrackingRoutes(scope, opts, deps.tracking);
        mlflowRegistryRoutes(scope, opts, deps.registry, deps.tracking);
      },
      { prefix },
    );
    await app.register(
      async (scope: App) => {
        installMlflowErrors(scope);
        mlflowArtifactRoutes(scope, opts, deps);
      },
      { prefix: `${prefix}-artifacts` },
    );
  }
}
