/**
 * What the API checks before it queues a training job, and the rules both the API and the
 * pipeline share (task inference, metric names, the role a request needs). Light on purpose: the
 * API process loads this, never the trainers.
 */
import { Value } from '@sinclair/typebox/value';
import { checkDatasetName, type DatasetService } from '../datasets/dataset.service.ts';
import type { ColumnSchema } from '../datasets/schema.ts';
import type { Task } from '../ml/types.ts';
import type { Role } from '../platform/auth.ts';
import { badRequest, invalidField, type FieldError } from '../platform/errors.ts';
import { checkModelName } from '../registry/registry.model.ts';
import { TrainRequest, type TrainJob } from './job.types.ts';
import { ALGORITHM_TASK, resolveParams } from './pipeline-params.ts';

/** Default share of rows held out for evaluation. */
export const DEFAULT_TEST_SIZE = 0.2;
/** Default seed of the split (and of the seeded trainers). */
export const DEFAULT_SEED = 42;
/** A numeric target with integer values and at most this many distinct values is taken as classes. */
export const MAX_INFERRED_CLASSES = 20;
/** Most classes a classification target may have. */
export const MAX_CLASSES = 1000;

/** Hold-out metrics each task reports (the keys a promotion gate may use). */
export const TASK_METRICS: Readonly<Record<Task, readonly string[]>> = {
  classification: ['accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'log_loss', 'roc_auc'],
  regression: ['rmse', 'mae', 'r2'],
};

function typeOf(schema: readonly ColumnSchema[], name: string): ColumnSchema | undefined {
  return schema.find((c) => c.name === name);
}

/** Number of distinct present values of a column, from its statistics. */
function distinctOf(column: ColumnSchema): number {
  return column.stats.distinct;
}

/**
 * The task a target implies when the request names none: a categorical or boolean target, or a
 * numeric one with only integer values and at most 20 distinct ones, is a classification target;
 * any other numeric target a regression one.
 */
export function inferTask(target: ColumnSchema): Task {
  if (target.type !== 'numeric') return 'classification';
  return target.stats.integer && target.stats.distinct <= MAX_INFERRED_CLASSES ? 'classification' : 'regression';
}

/**
 * The least role that may submit `request`: promoting to Production needs `admin` (as the
 * transition itself does), everything else `train`.
 */
export function requiredRole(request: Pick<TrainRequest, 'promote_to'>): Role {
  return request.promote_to === 'Production' ? 'admin' : 'train';
}

/**
 * Every check of a training request that can be made without reading the data (the body's shape
 * was checked by the route's schema): the dataset version (404), the target and feature columns
 * (400 naming them), the task and its fit with the algorithm and the target's type, the
 * algorithm's parameters (unknown names and ranges, 400 naming them), the model name, and the
 * promotion options. Returns the job to queue, with everything the checks resolved.
 * @throws AppError 400 or 404
 */
export async function validateTrainRequest(request: TrainRequest, datasets: DatasetService, actor: string): Promise<TrainJob> {
  const req = request;
  checkDatasetName(req.dataset.name, '/body/dataset/name');
  const dataset = await datasets.resolveVersion(req.dataset.name, req.dataset.version);
  const columns = dataset.schema?.columns ?? [];
  const names = columns.map((c) => c.name);
  const label = `dataset '${dataset.name}' version ${dataset.version}`;

  const target = typeOf(columns, req.target);
  if (target === undefined) {
    throw invalidField('/body/target', `no column '${req.target}' in ${label} (columns: ${names.join(', ')})`);
  }
  let features: string[];
  if (req.features === undefined) {
    features = names.filter((n) => n !== req.target);
  } else {
    const unknown = req.features.filter((f) => !names.includes(f));
    if (unknown.length > 0) {
      throw invalidField('/body/features', `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')} in ${label} (columns: ${names.join(', ')})`);
    }
    const dup = req.features.find((f, i) => req.features!.indexOf(f) !== i);
    if (dup !== undefined) throw invalidField('/body/features', `column '${dup}' is listed twice`);
    if (req.features.includes(req.target)) throw invalidField('/body/features', `the target '${req.target}' cannot also be a feature`);
    features = [...req.features];
  }
  if (features.length === 0) throw invalidField('/body/features', `${label} has no column besides the target '${req.target}'`);

  const task = req.task ?? inferTask(target);
  if (task === 'regression' && target.type !== 'numeric') {
    throw invalidField('/body/task', `regression needs a numeric target; '${req.target}' is ${target.type}`);
  }
  const algorithm = req.algorithm;
  const only = ALGORITHM_TASK[algorithm];
  if (only !== undefined && only !== task) {
    throw invalidField('/body/algorithm', `${algorithm} fits ${only} only, but the task is ${task}${req.task === undefined ? ` (inferred from target '${req.target}')` : ''}`);
  }
  if (task === 'classification') {
    const classes = distinctOf(target);
    if (classes < 2) throw invalidField('/body/target', `classification needs at least two classes; '${req.target}' has ${classes}`);
    if (classes > MAX_CLASSES) throw invalidField('/body/target', `'${req.target}' has ${classes} distinct values, more than the ${MAX_CLASSES} classes allowed; use task 'regression'?`);
  }
  const seed = req.validation?.seed ?? DEFAULT_SEED;
  const params = resolveParams(algorithm, task, req.params, Math.abs(seed) % 0x7fffffff);

  if (req.register_as !== undefined) checkModelName(req.register_as, '/body/register_as');
  if (req.promote_to !== undefined && req.register_as === undefined) {
    throw invalidField('/body/promote_to', 'needs register_as: only a registered version can be promoted');
  }
  const gate = req.promotion_gate;
  if (gate !== undefined) {
    if (req.promote_to === undefined) throw invalidField('/body/promotion_gate', 'needs promote_to');
    if (gate.min === undefined && gate.max === undefined) throw invalidField('/body/promotion_gate', 'give min, max or both');
    if (!TASK_METRICS[task].includes(gate.metric)) {
      throw invalidField('/body/promotion_gate/metric', `'${gate.metric}' is not a ${task} metric (use one of ${TASK_METRICS[task].join(', ')})`);
    }
  }
  return { kind: 'train', request: req, datasetVersion: dataset.version, task, features, params, actor };
}


/**
 * A training request from outside HTTP (the CLI): checked against the same schema the route
 * declares, with errors naming the field.
 * @throws AppError 400
 */
export function parseTrainRequest(value: unknown): TrainRequest {
  if (Value.Check(TrainRequest, value)) return value;
  const errors: FieldError[] = [...Value.Errors(TrainRequest, value)].slice(0, 20).map((e) => ({ path: `/body${e.path}`, message: e.message }));
  const first = errors[0];
  throw badRequest(first === undefined ? 'invalid training request' : `invalid training request: ${first.path} ${first.message}`, errors);
}
