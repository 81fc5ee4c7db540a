/**
 * `modelplane serve --demo`: a fresh install answers predictions at once. On the first start a
 * random forest is trained on the built-in iris dataset, registered as `iris-demo` and promoted
 * to Production through the ordinary pipeline (so the demo model has a run, metrics, lineage and
 * a drift reference like any other); later starts find it and do nothing.
 */
import { AppError } from '../platform/errors.ts';
import type { TrainRequest } from './job.types.ts';
import type { PipelineDeps } from './pipeline.ts';
import { validateTrainRequest } from './train-request.ts';

/** Name of the demo model (set as `MODEL_NAME` by `serve --demo`). */
export const DEMO_MODEL_NAME = 'iris-demo';

/** The training request behind the demo model. */
export const DEMO_REQUEST: TrainRequest = {
  experiment_name: DEMO_MODEL_NAME,
  run_name: 'demo',
  dataset: { name: 'iris' },
  target: 'target',
  algorithm: 'random_forest',
  params: { n_estimators: 50 },
  register_as: DEMO_MODEL_NAME,
  promote_to: 'Production',
  tags: { 'modelplane.demo': 'true' },
};

/**
 * Trains, registers and promotes the demo model unless a model named `iris-demo` exists.
 * Returns the version it created, or `null` when there was nothing to do.
 */
export async function ensureDemoModel(deps: PipelineDeps): Promise<{ name: string; version: number; stage: string } | null> {
  try {
    await deps.services.registry.models.getModelSummary(DEMO_MODEL_NAME);
    return null;
  } catch (err) {
    if (!(err instanceof AppError && err.status === 404)) throw err;
  }
  const log = deps.log.child({ component: 'demo' });
  log.info({ model: DEMO_MODEL_NAME }, 'training the demo model on the built-in iris dataset');
  const job = await validateTrainRequest(DEMO_REQUEST, deps.services.datasets, 'demo');
  // The trainers are loaded only when there is something to train: a restart never loads them.
  const { localJobContext, runTrainingJob } = await import('./pipeline.ts');
  const result = await runTrainingJob(
    job,
    localJobContext({ jobId: 'demo', onLog: (line) => log.info(line) }),
    deps,
  );
  log.info({ model: result.model, metrics: result.metrics }, 'demo model ready');
  return result.model;
}
