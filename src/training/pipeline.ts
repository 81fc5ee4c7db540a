/**
 * The training pipeline: what a `train` job does, from a dataset version to a registered (and
 * possibly promoted) model version.
 *
 * load dataset version -> choose features and task -> class labels -> seeded (stratified) split
 * -> fit preprocessing on the training rows -> fit (progress 10..80 %, cancellable between steps)
 * -> evaluate on the hold-out rows -> log params, metrics, tags and artifacts to a tracking run ->
 * export ONNX and check it against the in-memory model in onnxruntime -> register with signature,
 * metrics, lineage and the drift reference -> gated promotion.
 *
 * `validateTrainRequest` runs every check that can be made without reading the data in the API
 * process, so a bad request is a 400/404 at submission instead of a failed job. The job system
 * runs `handler` in a worker thread (or a `modelplane worker` process); the CLI and the demo call
 * `runTrainingJob` directly.
 */
import { Value } from '@sinclair/typebox/value';
import type { Logger } from 'pino';
import { createArtifactStore } from '../artifacts/index.ts';
import type { Config } from '../config.ts';
import { checkDatasetName, getDatasets, type DatasetVersion } from '../datasets/dataset.service.ts';
import { DatasetError } from '../datasets/errors.ts';
import type { ColumnSchema } from '../datasets/schema.ts';
import type { Column } from '../datasets/table.ts';
import { fitRandomForest } from '../ml/forest.ts';
import { fitGradientBoosting } from '../ml/gbdt.ts';
import { fitLinearRegression, fitLogisticRegression } from '../ml/linear.ts';
import { classificationReport, confusionMatrix, regressionReport } from '../ml/metrics.ts';
import { argmaxRows, predictScores } from '../ml/predict.ts';
import { encodeRaw, fitPreprocessing, transform, type RawColumn } from '../ml/preprocess.ts';
import { takeRows, takeValues, trainTestSplit } from '../ml/split.ts';
import { fitDecisionTree, type Criterion, type MaxFeatures } from '../ml/tree.ts';
import type { FittedModel, Preprocessing, ProgressFn, Task, TrainingData } from '../ml/types.ts';
import { exportModel } from '../onnx/index.ts';
import type { Role } from '../platform/auth.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError, badRequest, invalidField, type FieldError } from '../platform/errors.ts';
import { getRegistry } from '../registry/registry.factory.ts';
import { checkModelName } from '../registry/registry.model.ts';
import { openStore } from '../store/database.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { getTracking } from '../tracking/tracking.service.ts';
import { VERSION } from '../version.ts';
import type { JobHandler, JobKind } from './handlers.ts';
import { DeterministicJobError, TrainRequest, type JobContext, type JobPayload, type JobResult } from './job.types.ts';
import { checkExport } from './pipeline-check.ts';
import { ALGORITHM_TASK, resolveParams, type Algorithm, type EffectiveParams, type ParamValue } from './pipeline-params.ts';
import { buildReference } from './pipeline-reference.ts';

/** What the pipeline needs from the process: the store, the artifact store, a logger, the configuration. */
export type PipelineDeps = Pick<AppContext, 'store' | 'artifacts' | 'log' | 'config'>;

/** Pipeline dependencies opened by {@link createPipelineDeps}, with their closer. */
export interface OwnedPipelineDeps extends PipelineDeps {
  close(): Promise<void>;
}

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

/** A request that passed {@link validateTrainRequest}, with what the checks resolved. */
export interface ValidatedTrainRequest {
  readonly request: TrainRequest;
  /** The dataset version the job will read (the newest when the request named none). */
  readonly datasetVersion: number;
  readonly task: Task;
  readonly features: readonly string[];
  /** Effective hyper-parameters (defaults filled in). */
  readonly params: EffectiveParams;
}

// ---------------------------------------------------------------------------------------------
// Dependencies

/**
 * Opens the store (applying pending migrations unless `migrate: false`) and the artifact store
 * the configuration names: what a worker thread or a `modelplane worker` process needs to run
 * training jobs.
 */
export async function createPipelineDeps(config: Config, log: Logger, options: { migrate?: boolean } = {}): Promise<OwnedPipelineDeps> {
  const store = await openStore({ dataDir: config.dataDir, ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }) });
  try {
    if (options.migrate !== false) await migrateToLatest(store);
    const artifacts = await createArtifactStore(config.artifactRoot, config.dataDir, {
      ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
      ...(config.s3.region === undefined ? {} : { region: config.s3.region }),
      forcePathStyle: config.s3.forcePathStyle,
    });
    return {
      store,
      artifacts,
      log,
      config,
      async close() {
        await artifacts.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Up-front validation

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
 * Every check of a training request that can be made without reading the data: the body shape,
 * the dataset version (404), the target and feature columns (400 naming them), the task and its
 * fit with the algorithm and the target's type, the algorithm's parameters (unknown names and
 * ranges, 400 naming them), the model name, and the promotion options.
 * @throws AppError 400 or 404
 */
export async function validateTrainRequest(request: unknown, deps: PipelineDeps): Promise<ValidatedTrainRequest> {
  if (!Value.Check(TrainRequest, request)) {
    const errors: FieldError[] = [...Value.Errors(TrainRequest, request)].slice(0, 20).map((e) => ({ path: `/body${e.path}`, message: e.message }));
    const first = errors[0];
    throw badRequest(first === undefined ? 'invalid training request' : `invalid training request: ${first.path} ${first.message}`, errors);
  }
  const req = request;
  checkDatasetName(req.dataset.name, '/body/dataset/name');
  const dataset = await getDatasets(deps).resolveVersion(req.dataset.name, req.dataset.version);
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
  return { request: req, datasetVersion: dataset.version, task, features, params };
}

// ---------------------------------------------------------------------------------------------
// Running a job

function cancelled(job: JobContext): Error {
  const reason: unknown = job.signal.reason;
  return reason instanceof Error ? reason : new Error('job cancelled');
}

/**
 * Between steps: lets pending messages (a cancellation) be handled, then stops if cancelled.
 */
async function checkpoint(job: JobContext): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (job.signal.aborted) throw cancelled(job);
}

/** A failure caused by the request or the data: the job fails at once, without retries. */
function deterministic(err: unknown): unknown {
  if (err instanceof DeterministicJobError) return err;
  if (err instanceof AppError && err.status >= 400 && err.status < 500) return new DeterministicJobError(err.message);
  if (err instanceof DatasetError) return new DeterministicJobError(`the stored dataset cannot be read: ${err.message}`);
  // The trainers raise RangeError for data they cannot fit (too few rows, a single class, ...).
  if (err instanceof RangeError) return new DeterministicJobError(err.message);
  return err;
}

/** Raw column of the rows `rows` in the shape `fitPreprocessing` takes (booleans as 0/1). */
function rawColumn(column: Column, rows: Int32Array): RawColumn {
  if (column.type === 'categorical') {
    const values = new Array<string | null>(rows.length);
    for (let i = 0; i < rows.length; i++) values[i] = column.values[rows[i]!] ?? null;
    return { name: column.name, kind: 'categorical', values };
  }
  const values = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) values[i] = column.values[rows[i]!]!;
  return { name: column.name, kind: 'numeric', values };
}

/** The target as class indices (with their labels) or regression values, for rows with a target. */
interface PreparedTarget {
  /** Rows of the table that have a target value. */
  readonly rows: Int32Array;
  /** Class index (classification) or value (regression), per kept row. */
  readonly y: Float64Array;
  readonly classLabels: (number | string)[] | null;
}

function prepareTarget(column: Column, task: Task): PreparedTarget {
  const n = column.values.length;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = column.values[i];
    if (column.type === 'categorical' ? v != null : !Number.isNaN(v)) keep.push(i);
  }
  const rows = Int32Array.from(keep);
  if (rows.length === 0) throw new DeterministicJobError(`the target '${column.name}' has no values (every row is missing it)`);
  const y = new Float64Array(rows.length);
  if (task === 'regression') {
    if (column.type !== 'numeric') throw new DeterministicJobError(`regression needs a numeric target; '${column.name}' is ${column.type}`);
    for (let i = 0; i < rows.length; i++) y[i] = column.values[rows[i]!]!;
    return { rows, y, classLabels: null };
  }
  let labels: (number | string)[];
  let index: (i: number) => number;
  if (column.type === 'categorical') {
    const distinct = [...new Set(Array.from(rows, (r) => column.values[r]!))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const code = new Map(distinct.map((l, k) => [l, k]));
    labels = distinct;
    index = (r) => code.get(column.values[r]!)!;
  } else {
    const values = column.values;
    const distinct = [...new Set(Array.from(rows, (r) => values[r]!))].sort((a, b) => a - b);
    const code = new Map(distinct.map((v, k) => [v, k]));
    if (column.type === 'boolean') labels = distinct.map((v) => (v === 1 ? 'true' : 'false'));
    // Integer labels stay numbers (exported as int64); others become their decimal text.
    else labels = distinct.every((v) => Number.isSafeInteger(v)) ? distinct : distinct.map(String);
    index = (r) => code.get(values[r]!)!;
  }
  if (labels.length < 2) {
    throw new DeterministicJobError(`classification needs at least two classes; the target '${column.name}' has only ${labels.length === 1 ? `'${String(labels[0])}'` : 'none'}`);
  }
  if (labels.length > MAX_CLASSES) throw new DeterministicJobError(`the target '${column.name}' has ${labels.length} classes, more than ${MAX_CLASSES}`);
  for (let i = 0; i < rows.length; i++) y[i] = index(rows[i]!);
  return { rows, y, classLabels: labels };
}

function num(p: EffectiveParams, key: string): number {
  return p[key] as number;
}

/** Fits the requested algorithm with the effective parameters. */
async function fit(algorithm: Algorithm, data: TrainingData, p: EffectiveParams, onProgress: ProgressFn): Promise<FittedModel> {
  const nullableInt = (key: string): number | null => (p[key] === null ? null : num(p, key));
  switch (algorithm) {
    case 'logistic_regression':
      return fitLogisticRegression(data, {
        C: num(p, 'C'),
        maxIter: num(p, 'max_iter'),
        tol: num(p, 'tol'),
        multiClass: p['multi_class'] as 'auto' | 'multinomial',
        fitIntercept: p['fit_intercept'] as boolean,
        onProgress,
      });
    case 'linear_regression':
      return fitLinearRegression(data, { alpha: num(p, 'alpha'), fitIntercept: p['fit_intercept'] as boolean, onProgress });
    case 'decision_tree':
      return fitDecisionTree(
        data,
        {
          criterion: p['criterion'] as Criterion,
          max_depth: nullableInt('max_depth'),
          min_samples_split: num(p, 'min_samples_split'),
          min_samples_leaf: num(p, 'min_samples_leaf'),
          max_features: p['max_features'] as MaxFeatures,
          seed: num(p, 'seed'),
        },
        onProgress,
      );
    case 'random_forest':
      return fitRandomForest(
        data,
        {
          n_estimators: num(p, 'n_estimators'),
          criterion: p['criterion'] as Criterion,
          max_depth: nullableInt('max_depth'),
          min_samples_split: num(p, 'min_samples_split'),
          min_samples_leaf: num(p, 'min_samples_leaf'),
          max_features: p['max_features'] as MaxFeatures,
          bootstrap: p['bootstrap'] as boolean,
          seed: num(p, 'seed'),
          n_jobs: nullableInt('n_jobs'),
        },
        onProgress,
      );
    case 'gradient_boosting':
      return fitGradientBoosting(
        data,
        {
          learning_rate: num(p, 'learning_rate'),
          max_iter: num(p, 'max_iter'),
          max_leaf_nodes: nullableInt('max_leaf_nodes'),
          max_depth: nullableInt('max_depth'),
          min_samples_leaf: num(p, 'min_samples_leaf'),
          l2_regularization: num(p, 'l2_regularization'),
          max_bins: num(p, 'max_bins'),
          early_stopping: p['early_stopping'] as 'auto' | boolean,
          validation_fraction: num(p, 'validation_fraction'),
          n_iter_no_change: num(p, 'n_iter_no_change'),
          tol: num(p, 'tol'),
          seed: num(p, 'seed'),
        },
        onProgress,
      );
  }
}

/** Outcome of a promotion gate. */
export interface GateDecision {
  readonly pass: boolean;
  readonly reason: string;
}

/** Checks `metrics` against a gate `{metric, min?, max?}` (bounds inclusive); no gate passes. */
export function evaluateGate(gate: TrainRequest['promotion_gate'], metrics: Readonly<Record<string, number>>): GateDecision {
  if (gate === undefined) return { pass: true, reason: 'no promotion gate' };
  const value = metrics[gate.metric];
  if (value === undefined || !Number.isFinite(value)) return { pass: false, reason: `metric ${gate.metric} was not computed on the hold-out set` };
  const shown = Number(value.toPrecision(6));
  if (gate.min !== undefined && !(value >= gate.min)) return { pass: false, reason: `${gate.metric} = ${shown} is below the minimum ${gate.min}` };
  if (gate.max !== undefined && !(value <= gate.max)) return { pass: false, reason: `${gate.metric} = ${shown} is above the maximum ${gate.max}` };
  const bounds = [gate.min === undefined ? undefined : `>= ${gate.min}`, gate.max === undefined ? undefined : `<= ${gate.max}`].filter((b) => b !== undefined);
  return { pass: true, reason: `${gate.metric} = ${shown} ${bounds.join(' and ')}` };
}

function paramText(v: ParamValue): string {
  return v === null ? 'null' : String(v);
}

/** MLflow limits a batch to 100 params; split longer lists. */
function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `key=value` pairs for a log line. */
function describeMetrics(metrics: Readonly<Record<string, number>>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k}=${Number(v.toPrecision(5))}`)
    .join(' ');
}

/**
 * Runs one training job (see the module comment). Reports progress and log lines to `job`, stops
 * between steps when `job.signal` is aborted (the tracking run is then marked KILLED), and fails
 * with `DeterministicJobError` for problems a retry cannot fix (bad data, failed export check).
 */
export async function runTrainingJob(payload: JobPayload, job: JobContext, deps: PipelineDeps): Promise<JobResult> {
  const req = payload.request;
  const tracking = getTracking(deps);
  const experimentName = req.experiment_name ?? req.dataset.name;
  const algorithm = req.algorithm;
  const started = Date.now();
  job.progress(0, 'loading', `dataset ${req.dataset.name} version ${payload.datasetVersion}`);

  const run = await tracking
    .createRun({
      experimentName,
      createExperiment: true,
      ...(req.run_name === undefined ? {} : { runName: req.run_name }),
      userId: payload.actor,
      tags: {
        ...req.tags,
        'mlflow.source.type': 'JOB',
        'mlflow.source.name': 'modelplane-training',
        'mlflow.user': payload.actor,
        'modelplane.job_id': job.jobId,
        'modelplane.algorithm': algorithm,
        'modelplane.dataset': `${req.dataset.name}:${payload.datasetVersion}`,
      },
    })
    .catch((err: unknown) => {
      throw deterministic(err);
    });
  const runId = run.info.runId;
  job.log(`tracking run ${runId} in experiment '${experimentName}'`);

  try {
    const result = await trainInRun(payload, job, deps, runId, experimentName);
    await tracking.updateRun(runId, { status: 'FINISHED', endTime: Date.now() });
    job.log(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    job.progress(100, 'done');
    return result;
  } catch (err) {
    const aborted = job.signal.aborted;
    const failure = aborted ? err : deterministic(err);
    const message = failure instanceof Error ? failure.message : String(failure);
    try {
      await tracking.setTag(runId, 'modelplane.error', message.slice(0, 5000));
      await tracking.updateRun(runId, { status: aborted ? 'KILLED' : 'FAILED', endTime: Date.now() });
    } catch (tagErr) {
      deps.log.warn({ err: tagErr, runId }, 'could not mark the training run as ended');
    }
    job.log(aborted ? 'cancelled' : `failed: ${message}`);
    throw failure;
  }
}

async function trainInRun(payload: JobPayload, job: JobContext, deps: PipelineDeps, runId: string, experimentName: string): Promise<JobResult> {
  const req = payload.request;
  const tracking = getTracking(deps);
  const algorithm = req.algorithm;

  // --- load
  const { table, version: dataset } = await getDatasets(deps).loadTable(req.dataset.name, payload.datasetVersion);
  job.log(`loaded dataset ${dataset.name} version ${dataset.version}: ${table.rowCount} rows, ${table.columns.length} columns`);
  await tracking.setRunDataset(runId, dataset.name, dataset.version, dataset.sha256);
  await checkpoint(job);
  job.progress(5, 'preparing');

  // --- columns, task, classes
  const schema = dataset.schema?.columns ?? [];
  const targetColumn = table.columns.find((c) => c.name === req.target);
  if (targetColumn === undefined) throw new DeterministicJobError(`no column '${req.target}' in dataset ${dataset.name} version ${dataset.version}`);
  const featureNames = req.features ?? table.columns.map((c) => c.name).filter((n) => n !== req.target);
  const featureColumns = featureNames.map((name) => {
    const c = table.columns.find((col) => col.name === name);
    if (c === undefined) throw new DeterministicJobError(`no column '${name}' in dataset ${dataset.name} version ${dataset.version}`);
    return c;
  });
  const targetSchema = schema.find((c) => c.name === req.target);
  const task: Task = req.task ?? (targetSchema === undefined ? 'regression' : inferTask(targetSchema));
  const target = prepareTarget(targetColumn, task);
  const dropped = table.rowCount - target.rows.length;
  if (dropped > 0) job.log(`dropped ${dropped} rows without a target value`);
  const nClasses = target.classLabels?.length ?? 0;
  job.log(task === 'classification' ? `classification of '${req.target}' into ${nClasses} classes: ${target.classLabels!.join(', ')}` : `regression of '${req.target}'`);

  // --- split, then preprocessing fitted on the training rows only (no peeking at the hold-out)
  const testSize = req.validation?.test_size ?? DEFAULT_TEST_SIZE;
  const seed = req.validation?.seed ?? DEFAULT_SEED;
  const stratify = task === 'classification' && (req.validation?.stratify ?? true);
  let split: { train: Int32Array; test: Int32Array };
  try {
    split = trainTestSplit(target.rows.length, { testSize, seed, stratify: stratify ? target.y : undefined });
  } catch (err) {
    throw new DeterministicJobError(`cannot split ${target.rows.length} rows into training and hold-out sets: ${err instanceof Error ? err.message : String(err)}`);
  }
  job.log(`split: ${split.train.length} training rows, ${split.test.length} hold-out rows (${stratify ? 'stratified, ' : ''}seed ${seed})`);
  const kept = featureColumns.map((c) => rawColumn(c, target.rows));
  const trainRows = kept.map((c) => subsetRaw(c, split.train));
  const forLinear = algorithm === 'logistic_regression' || algorithm === 'linear_regression';
  const pre = fitPreprocessing(trainRows, { forLinear });
  const rawAll = encodeRaw(pre, kept);
  const rawTrain = takeRows(rawAll, split.train);
  const rawTest = takeRows(rawAll, split.test);
  const yTrain = takeValues(target.y, split.train);
  const yTest = takeValues(target.y, split.test);
  const trainData: TrainingData = { x: transform(pre, rawTrain), y: yTrain, task, nClasses };
  const params = resolveParams(algorithm, task, req.params, Math.abs(seed) % 0x7fffffff);
  await checkpoint(job);

  // --- fit
  job.progress(10, 'fitting', `${algorithm} on ${trainData.x.rows} rows x ${trainData.x.cols} features`);
  const fitStart = Date.now();
  const model = await fit(algorithm, trainData, params, (fraction, message) => {
    if (job.signal.aborted) throw cancelled(job);
    job.progress(10 + 70 * Math.min(1, Math.max(0, fraction)), 'fitting', message);
  });
  const fitSeconds = (Date.now() - fitStart) / 1000;
  job.log(`fitted ${algorithm} in ${fitSeconds.toFixed(2)} s`);
  await checkpoint(job);

  // --- evaluate on the hold-out rows
  job.progress(80, 'evaluating');
  const scores = predictScores(model, transform(pre, rawTest));
  let metrics: Record<string, number>;
  let confusion: { labels: (number | string)[]; matrix: number[][] } | undefined;
  if (task === 'classification') {
    const proba = scores.probabilities!;
    metrics = classificationReport(yTest, proba, nClasses);
    confusion = { labels: target.classLabels!, matrix: confusionMatrix(yTest, argmaxRows(proba, nClasses), nClasses) };
  } else {
    metrics = regressionReport(yTest, scores.values!);
  }
  job.log(`hold-out metrics: ${describeMetrics(metrics)}`);

  // --- log to the run
  job.progress(84, 'logging');
  const runParams: [string, ParamValue][] = [
    ['algorithm', algorithm],
    ['task', task],
    ['target', req.target],
    ['dataset', dataset.name],
    ['dataset_version', dataset.version],
    ['n_features', featureNames.length],
    ['n_train_rows', split.train.length],
    ['n_test_rows', split.test.length],
    ['test_size', testSize],
    ['split_seed', seed],
    ['stratify', stratify],
    ...Object.entries(params),
  ];
  for (const batch of chunks(runParams, 100)) {
    await tracking.logBatch(runId, { params: batch.map(([key, value]) => ({ key, value: paramText(value) })) });
  }
  const now = Date.now();
  await tracking.logBatch(runId, {
    metrics: [...Object.entries(metrics).map(([key, value]) => ({ key, value, timestamp: now, step: 0 })), { key: 'fit_seconds', value: fitSeconds, timestamp: now, step: 0 }],
    tags: [
      { key: 'modelplane.task', value: task },
      { key: 'modelplane.target', value: req.target },
    ],
  });
  const featureList = pre.columns.map((c) => ({ name: c.name, type: c.kind, ...(c.kind === 'categorical' ? { categories: c.categories } : {}) }));
  await tracking.logArtifact(runId, 'metrics.json', Buffer.from(JSON.stringify(metrics, null, 2)));
  await tracking.logArtifact(runId, 'features.json', Buffer.from(JSON.stringify({ target: req.target, task, class_labels: target.classLabels, features: featureList }, null, 2)));
  if (confusion !== undefined) await tracking.logArtifact(runId, 'confusion_matrix.json', Buffer.from(JSON.stringify(confusion, null, 2)));
  await checkpoint(job);

  // --- export and check
  job.progress(88, 'exporting');
  const bytes = exportModel(model, pre, {
    featureNames: pre.columns.map((c) => c.name),
    classLabels: target.classLabels,
    producerVersion: VERSION,
    metadata: {
      target: req.target,
      algorithm,
      dataset: `${dataset.name}:${dataset.version}`,
      run_id: runId,
    },
  });
  const check = await checkExport(bytes, model, pre, rawTest);
  await tracking.setTag(runId, 'modelplane.onnx_check', JSON.stringify({ rows: check.rows, max_abs_diff: check.maxAbsDiff, ok: check.ok }));
  if (!check.ok) {
    const m = check.firstMismatch!;
    throw new DeterministicJobError(
      `the exported ONNX model disagrees with the trained model on hold-out row ${m.row}, output ${m.output}: onnxruntime ${m.onnx}, expected ${m.expected}`,
    );
  }
  job.log(`ONNX export checked on ${check.rows} hold-out rows (largest difference ${check.maxAbsDiff.toExponential(2)})`);
  await tracking.logArtifact(runId, 'model/model.onnx', bytes);
  const reference = buildReference(
    pre,
    rawTrain,
    { name: req.target, task, values: yTrain, classLabels: target.classLabels },
    { name: dataset.name, version: dataset.version, sha256: dataset.sha256 },
  );
  await tracking.logArtifact(runId, 'model/reference.json', Buffer.from(JSON.stringify(reference)));
  await checkpoint(job);

  // --- register and promote
  let registered: JobResult['model'] = null;
  if (req.register_as !== undefined) {
    job.progress(92, 'registering', req.register_as);
    registered = await registerAndPromote(req, payload, job, deps, { runId, bytes, pre, task, classLabels: target.classLabels, metrics, dataset, reference });
  }
  return { runId, experimentName, model: registered, metrics };
}

/** The rows `rows` of a raw column. */
function subsetRaw(c: RawColumn, rows: Int32Array): RawColumn {
  if (c.values instanceof Float64Array) {
    const src = c.values;
    const values = new Float64Array(rows.length);
    for (let i = 0; i < rows.length; i++) values[i] = src[rows[i]!]!;
    return { name: c.name, kind: c.kind, values };
  }
  const src = c.values;
  const values = new Array<string | null>(rows.length);
  for (let i = 0; i < rows.length; i++) values[i] = src[rows[i]!] ?? null;
  return { name: c.name, kind: c.kind, values };
}

interface Trained {
  readonly runId: string;
  readonly bytes: Uint8Array;
  readonly pre: Preprocessing;
  readonly task: Task;
  readonly classLabels: (number | string)[] | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly dataset: DatasetVersion;
  readonly reference: unknown;
}

async function registerAndPromote(req: TrainRequest, payload: JobPayload, job: JobContext, deps: PipelineDeps, t: Trained): Promise<NonNullable<JobResult['model']>> {
  const registry = getRegistry(deps);
  const tracking = getTracking(deps);
  const name = req.register_as!;
  const categories: Record<string, string[]> = {};
  for (const c of t.pre.columns) if (c.kind === 'categorical') categories[c.name] = [...c.categories];
  // The registry stores finite metrics only; a NaN (e.g. no roc_auc) stays in the run alone.
  const finite = Object.fromEntries(Object.entries(t.metrics).filter(([, v]) => Number.isFinite(v)));
  const version = await registry.registerVersion(
    name,
    t.bytes,
    {
      featureNames: t.pre.columns.map((c) => c.name),
      featureTypes: t.pre.columns.map((c) => c.kind),
      ...(Object.keys(categories).length > 0 ? { categories } : {}),
      ...(t.classLabels === null ? {} : { classLabels: t.classLabels }),
      task: t.task,
    },
    {
      actor: payload.actor,
      description: `${req.algorithm} trained on ${t.dataset.name} version ${t.dataset.version} (job ${job.jobId})`,
      tags: { algorithm: req.algorithm, job_id: job.jobId },
      metrics: finite,
      runId: t.runId,
      dataset: { name: t.dataset.name, version: t.dataset.version },
      reference: t.reference,
      source: 'training',
    },
  );
  await tracking.recordModelOutput(t.runId, name, version.version);
  job.log(`registered ${name} version ${version.version}`);
  let stage: string = version.stage;

  if (req.promote_to !== undefined) {
    job.progress(96, 'promoting', req.promote_to);
    const decision = evaluateGate(req.promotion_gate, t.metrics);
    if (decision.pass) {
      const moved = await registry.transitionStage(name, version.version, req.promote_to, {
        archiveExistingVersions: true,
        // The submission was checked against requiredRole(); the job acts with that authority.
        actor: { keyId: payload.actor, role: requiredRole(req) },
      });
      stage = moved.version.stage;
      const archived = moved.archived.length === 0 ? '' : ` (archived version${moved.archived.length > 1 ? 's' : ''} ${moved.archived.join(', ')})`;
      job.log(`promoted ${name} version ${version.version} to ${req.promote_to}: ${decision.reason}${archived}`);
    } else {
      job.log(`not promoted to ${req.promote_to}: ${decision.reason}`);
    }
    await tracking.logBatch(t.runId, {
      tags: [
        { key: 'promotion.decision', value: decision.pass ? 'promoted' : 'rejected' },
        { key: 'promotion.reason', value: decision.reason },
        { key: 'promotion.stage', value: req.promote_to },
      ],
    });
  }
  return { name, version: version.version, stage };
}

// ---------------------------------------------------------------------------------------------
// Job system wiring

/** The `train` job handler a worker thread (or `modelplane worker` process) loads from this module. */
export const handler: JobHandler<JobPayload, OwnedPipelineDeps> = {
  createDeps: (config, log) => createPipelineDeps(config, log),
  closeDeps: (deps) => deps.close(),
  run: runTrainingJob,
};

/** The `train` kind of job: validated in the API process, run by {@link handler}. */
export const trainJobKind: JobKind<JobPayload> = {
  kind: 'train',
  module: import.meta.url,
  validate: async (request, ctx, actor) => {
    const v = await validateTrainRequest(request, ctx);
    return { kind: 'train', request: v.request, datasetVersion: v.datasetVersion, actor };
  },
};

/**
 * A job context for running the pipeline outside the job system (CLI, demo): progress and log
 * lines go to the given callbacks.
 */
export function localJobContext(options: {
  jobId?: string;
  signal?: AbortSignal;
  onProgress?: (percent: number, stage: string, message?: string) => void;
  onLog?: (line: string) => void;
}): JobContext {
  return {
    jobId: options.jobId ?? `local-${Date.now().toString(36)}`,
    attempt: 1,
    signal: options.signal ?? new AbortController().signal,
    progress: (percent, stage, message) => options.onProgress?.(percent, stage, message),
    log: (line) => options.onLog?.(line),
  };
}
