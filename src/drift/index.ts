/**
 * Drift monitoring (ARCHITECTURE.md "Drift"): the prediction log, references, drift reports and
 * the periodic check. `createDrift` builds it over the store and the catalogue; serving hands every
 * answered prediction to `drift.log`.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { DatasetService } from '../datasets/dataset.service.ts';
import type { Metrics } from '../platform/metrics.ts';
import type { Registry } from '../registry/registry.service.ts';
import type { Store } from '../store/database.ts';
import { DriftService } from './drift.service.ts';
import { PredictionLog } from './prediction-log.ts';

export { DriftService, type DriftReport } from './drift.service.ts';
export { PredictionLog } from './prediction-log.ts';
export { driftRoutes } from './drift.routes.ts';

/** Builds the prediction log and the drift service from the configuration; starts nothing. */
export function createDrift(deps: { store: Store; registry: Registry; datasets: DatasetService; metrics: Metrics; log: Logger; config: Config }): DriftService {
  const log = deps.log.child({ component: 'drift' });
  const c = deps.config;
  const predictionLog = new PredictionLog(
    { store: deps.store, metrics: deps.metrics, log },
    { sampleRate: c.predictionLogSampleRate, bufferRows: c.predictionLog.bufferRows, retentionDays: c.predictionLog.retentionDays, maxRows: c.predictionLog.maxRows },
  );
  return new DriftService({ store: deps.store, registry: deps.registry, datasets: deps.datasets, metrics: deps.metrics, log, predictionLog, settings: c.drift });
}
