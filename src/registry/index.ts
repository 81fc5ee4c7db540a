/**
 * Model registry: registered models, versions, stages, aliases, traffic splits and history.
 * Serving reads it through `RegistryReader`; training registers versions with `registerChecked`,
 * uploads with `registerVersion`.
 */
export { registryRoutes } from './registry.routes.ts';
export { createRegistry, type Registry, type RegistryServiceOptions } from './registry.service.ts';
export {
  BUNDLE_FILES,
  ModelsService,
  bundlePrefix,
  runArtifactKey,
  type CheckedModel,
  type MetadataPatch,
  type RegisterExtras,
} from './models.service.ts';
export { LifecycleService, type TransitionResult } from './lifecycle.service.ts';
export { RegistryServingReader } from './serving-reader.ts';
export { toServable } from './registry.shared.ts';
export {
  MODEL_NAME,
  STAGES,
  checkAliasName,
  checkModelName,
  isServingStage,
  reservedAlias,
  roleForTransition,
  type Actor,
  type DatasetRef,
  type HistoryEntry,
  type ModelVersion,
  type Page,
  type RegisteredModel,
  type RegisteredModelDetail,
  type StageLatest,
  type StoredTraffic,
} from './registry.model.ts';
export { ModelRuntimeError, onnxSmokeTest, type ModelSmokeTest } from './model-check.ts';
export type { RegistryReader, ServableVersion, TrafficSplit, VersionSelector } from './registry.types.ts';
