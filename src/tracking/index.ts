/** Experiment tracking: the service shared by routes, training and the MLflow layer. */
export { trackingRoutes } from './tracking.routes.ts';
export { createTracking, type Tracking } from './tracking.service.ts';
export { ExperimentsService } from './experiments.service.ts';
export { RunsService } from './runs.service.ts';
export { RunArtifactsService } from './run-artifacts.service.ts';
export {
  DEFAULT_ARTIFACT_LOCATION,
  PRIMARY_METRICS,
  runArtifactPrefix,
  type CreateExperimentInput,
  type CreateRunInput,
  type LogBatchInput,
  type MetricInput,
  type SearchExperimentsInput,
  type SearchRunsInput,
  type UpdateRunInput,
} from './tracking.shared.ts';
export { EXPERIMENT_SEARCH, RUN_SEARCH, parseFilter, parseOrderBy, type Comparison, type OrderByClause } from './search-filter.ts';
export { LIMITS } from './validation.ts';
export * from './tracking.types.ts';
