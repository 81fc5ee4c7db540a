/**
 * The model registry: registered models and versions (`models`), where they serve (`lifecycle`:
 * stages, aliases, traffic, history) and the reader serving resolves through (`reader`). Every
 * change runs in one transaction that also bumps the registry generation, then tells in-process
 * listeners which model changed.
 */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { Store } from '../store/database.ts';
import { LifecycleService } from './lifecycle.service.ts';
import { onnxSmokeTest, type ModelSmokeTest } from './model-check.ts';
import { ModelsService } from './models.service.ts';
import { RegistryEvents } from './registry.shared.ts';
import { RegistryServingReader } from './serving-reader.ts';

export interface RegistryServiceOptions {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly log: Logger;
  /** Largest model file accepted, in bytes (the server's body limit). */
  readonly maxModelBytes: number;
  /** onnxruntime, for the check of uploaded models. */
  readonly onnx: OnnxRuntime;
  /** Loads and runs a model once before it is accepted; default: a dummy run in `onnx`. */
  readonly smokeTest?: ModelSmokeTest;
  /** Clock (tests). */
  readonly now?: () => number;
}

/** The registry's three services over one store. */
export interface Registry {
  readonly models: ModelsService;
  readonly lifecycle: LifecycleService;
  readonly reader: RegistryServingReader;
}

export function createRegistry(options: RegistryServiceOptions): Registry {
  const ctx = { store: options.store, artifacts: options.artifacts, log: options.log, now: options.now ?? Date.now, events: new RegistryEvents(options.log) };
  const lifecycle = new LifecycleService(ctx);
  const models = new ModelsService(ctx, {
    maxModelBytes: options.maxModelBytes,
    smokeTest: options.smokeTest ?? onnxSmokeTest(options.onnx),
  });
  return { models, lifecycle, reader: new RegistryServingReader(ctx, models) };
}
