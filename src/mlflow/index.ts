/**
 * The MLflow-compatible surface: MLflow's tracking and registry REST API under
 * `/api/2.0/mlflow` (and `/ajax-api/2.0/mlflow`, which MLflow's own UI and some clients use, by
 * rewriting its URLs: {@link mlflowRoutingUrl}) and
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

/** URL prefix of the surface (the error format covers `/api/2.0/mlflow-artifacts` too). */
export const MLFLOW_PREFIX = '/api/2.0/mlflow';
/** The prefix MLflow's own UI calls, the same endpoints: rewritten to {@link MLFLOW_PREFIX}. */
const AJAX_PREFIX = '/ajax-api/2.0/mlflow';

/**
 * The URL a request is routed by (Fastify's `rewriteUrl`): `/ajax-api/2.0/mlflow...` is answered
 * by the `/api/2.0/mlflow...` routes. One set of routes instead of two halves the router's and
 * the route hooks' work at start-up (the MLflow endpoints are most of the server's routes).
 * `request.originalUrl` keeps the URL as sent; metrics label such requests with the `/api` route.
 */
export function mlflowRoutingUrl(url: string): string {
  return url.startsWith(AJAX_PREFIX) ? `/api${url.slice('/ajax-api'.length)}` : url;
}

/** Registers the MLflow routes and their error format. */
export async function mlflowRoutes(app: App, deps: MlflowDeps): Promise<void> {
  for (const prefix of [MLFLOW_PREFIX, `${MLFLOW_PREFIX}-artifacts`]) app.addErrorFormat({ prefix, render: renderMlflowError });
  await app.register(
    async (scope: App) => {
      installMlflowErrors(scope);
      mlflowTrackingRoutes(scope, deps.tracking);
      mlflowRegistryRoutes(scope, deps.registry, deps.tracking);
    },
    { prefix: MLFLOW_PREFIX },
  );
  await app.register(
    async (scope: App) => {
      installMlflowErrors(scope);
      mlflowArtifactRoutes(scope, deps);
    },
    { prefix: `${MLFLOW_PREFIX}-artifacts` },
  );
}
