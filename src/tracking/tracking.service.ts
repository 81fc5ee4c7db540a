/**
 * Experiment tracking with MLflow's semantics, as three services over one store: experiments,
 * runs (and their logging) and run artifacts. The native routes, the training pipeline and the
 * MLflow-compatible API all go through them.
 */
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Store } from '../store/database.ts';
import { ExperimentsService } from './experiments.service.ts';
import { RunArtifactsService } from './run-artifacts.service.ts';
import { RunsService } from './runs.service.ts';

/** The tracking feature's services. */
export interface Tracking {
  readonly experiments: ExperimentsService;
  readonly runs: RunsService;
  readonly artifacts: RunArtifactsService;
}

/** Builds the tracking services over a store and an artifact store; `now` is the clock (tests). */
export function createTracking(store: Store, artifacts: ArtifactStore, now: () => number = Date.now): Tracking {
  const experiments = new ExperimentsService(store, now);
  return { experiments, runs: new RunsService(store, experiments, now), artifacts: new RunArtifactsService(store, artifacts) };
}
