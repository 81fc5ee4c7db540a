/** Native tracking routes (API.md "Training, datasets, experiments"): one route file per resource. */
import type { App } from '../platform/app-type.ts';
import { experimentRoutes } from './experiments.routes.ts';
import { runRoutes } from './runs.routes.ts';
import type { Tracking } from './tracking.service.ts';

export async function trackingRoutes(app: App, tracking: Tracking): Promise<void> {
  await experimentRoutes(app, tracking);
  await runRoutes(app, tracking);
}
