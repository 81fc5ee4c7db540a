/** Experiment tracking: the service shared by routes, training and the MLflow layer. */
export { trackingRoutes } from './tracking.routes.ts';
export {
  DEFAULT_ARTIFACT_LOCATION,
  PRIMARY_METRICS,
  TrackingService,
  runArtifactPrefix,
  type CreateExperimentInput,
  type CreateRunInput,
  type LogBatchInput,
  type MetricInput,
  type SearchExperimentsInput,
  type SearchRunsInput,
  type UpdateRunInput,
} from './tracking.service.ts';
export { EXPERIMENT_SEARCH, RUN_SEARCH, parseFilter, parseOrderBy, type Comparison, type OrderByClause } from './search-filter.ts';
export { LIMITS } from './validation.ts';
export * from './tracking.types.ts';
