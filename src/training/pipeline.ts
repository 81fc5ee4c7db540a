/**
 * The training pipeline: what a `train` job does, from a dataset version to a registered (and
 * possibly promoted) model version, as explicit steps over one queued job (`TrainJob`, checked
 * and resolved by `validateTrainRequest` in the API process, so nothing is recomputed here):
 *
 * load the dataset version -> prepare (target, classes, seeded split, preprocessing fitted on the
 * training rows) -> fit (progress 10..80 %, cancellable) -> evaluate on the hold-out rows ->
 * export ONNX and check it against the in-memory model in onnxruntime (the one session this job
 * opens) -> record the run (params, metrics and tags in one batch; artifacts, the model written
 * once) -> register the version from the run's checked model (no copy, no second check) -> gated
 * promotion.
 *
 * The job system runs it in a worker process of the API or of `modelplane worker` (see
 * train-handler.ts); the CLI and the demo call `runTrainingJob` directly.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DatasetVersion } from '../datasets/dataset.service.ts';
import { DatasetError } from '../datasets/errors.ts';
import type { Column, Table } from '../datasets/table.ts';
import { fitRandomForest, type TreeFn } from '../ml/forest.ts';
import { fitGradientBoosting } from '../ml/gbdt.ts';
import { fitLinearRegression, fitLogisticRegression } from '../ml/linear.ts';
import { classificationReport, confusionMatrix, regressionReport } from '../ml/metrics.ts';
import { argmaxRows, predictScores } from '../ml/predict.ts';
import { encodeRaw, fitPreprocessing, transform, type RawColumn } from '../ml/preprocess.ts';
import { takeValues, trainTestSplit } from '../ml/split.ts';
import { fitDecisionTree } from '../ml/tree.ts';
import type { FittedModel, Matrix, Preprocessing, ProgressFn, Task, TrainingData } from '../ml/types.ts';
import { exportModel, INPUT_NAME, LABEL_OUTPUT, ModelTooLargeError, ONNX_MAX_BYTES, PROBABILITY_OUTPUT, treeOnnxBytes, VALUE_OUTPUT } from '../onnx/index.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import { AppError } from '../platform/errors.ts';
import { runArtifactKey } from '../registry/models.service.ts';
import type { DataServices } from '../services.ts';
import { VERSION } from '../version.ts';
import { DeterministicJobError, type JobContext, type JobResult, type TrainJob, type TrainRequest } from './job.types.ts';
import { jobThreads } from './job-threads.ts';
import { collectGarbage } from './heap.ts';
import { compareInRuntime, expectedScores, type ExpectedScores } from './pipeline-check.ts';
import { paramEntries, type Algorithm, type AlgorithmParams, type ParamValue } from './pipeline-params.ts';
import { buildReference } from './pipeline-reference.ts';
import { DEFAULT_SEED, DEFAULT_TEST_SIZE, MAX_CLASSES, requiredRole } from './train-request.ts';

/** What the pipeline runs on: the catalogue services, onnxruntime (the export check), a logger and the model size limit. */
export interface PipelineDeps {
  readonly services: DataServices;
  readonly onnx: OnnxRuntime;
  readonly log: Logger;
  /** Largest ONNX model a job may produce, bytes (`TRAINING_MAX_MODEL_BYTES`; at most `ONNX_MAX_BYTES`). */
  readonly maxModelBytes: number;
}

/** Where the run keeps the trained model; the registered version points at it. */
const MODEL_ARTIFACT = 'model/model.onnx';

// ---------------------------------------------------------------------------------------------
// Helpers

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

/** A table column as `fitPreprocessing` and `encodeRaw` take it (booleans as 0/1), without a copy. */
function rawColumn(column: Column): RawColumn {
  return column.type === 'categorical' ? { name: column.name, kind: 'categorical', values: column.values } : { name: column.name, kind: 'numeric', values: column.values };
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

/** The parameters that make each algorithm's model smaller. */
const SMALLER: Record<Algorithm, string> = {
  random_forest: 'limit max_depth, raise min_samples_leaf or lower n_estimators',
  decision_tree: 'limit max_depth or raise min_samples_leaf',
  gradient_boosting: 'lower max_iter or max_leaf_nodes',
  logistic_regression: 'train on fewer features',
  linear_regression: 'train on fewer features',
};

/** The limit a model is over (the variable sets it; onnxruntime bounds it), and what to change. */
function sizeAdvice(maxBytes: number, algorithm: Algorithm): string {
  return `over the limit of ${maxBytes} bytes (TRAINING_MAX_MODEL_BYTES${maxBytes >= ONNX_MAX_BYTES ? '; onnxruntime reads at most 2 GiB' : ''}): ${SMALLER[algorithm]}`;
}

const size = (bytes: number): string => (bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : `${Math.round(bytes)} bytes`);

/**
 * Stops a random forest as soon as its finished trees show that its model would be over
 * `maxBytes`: their ONNX size so far, with the trees still to grow at their mean size. Trees of a
 * forest are alike in size, so the first one or two (a share of the fit's time) decide it.
 */
function forestSizeGuard(nEstimators: number, data: TrainingData, maxBytes: number): TreeFn {
  const nOutputs = data.task === 'classification' ? data.nClasses : 1;
  let bytes = 0;
  let nodes = 0;
  return (tree, finished) => {
    bytes += treeOnnxBytes(tree, nOutputs, data.x.cols);
    nodes += tree.left.length;
    const projected = (bytes / finished) * nEstimators;
    if (projected <= maxBytes) return;
    throw new DeterministicJobError(
      `the forest's ONNX model would be about ${size(projected)} (${finished} of ${nEstimators} trees grown, ${Math.round(nodes / finished)} nodes each), ${sizeAdvice(maxBytes, 'random_forest')}`,
    );
  };
}

/** Fits the requested algorithm with the effective parameters; `threads` stands in for an unset `n_jobs`. */
async function fit(data: TrainingData, p: AlgorithmParams, threads: number, onProgress: ProgressFn, maxModelBytes: number): Promise<FittedModel> {
  switch (p.algorithm) {
    case 'logistic_regression':
      return fitLogisticRegression(data, { C: p.C, maxIter: p.max_iter, tol: p.tol, multiClass: p.multi_class, fitIntercept: p.fit_intercept, onProgress });
    case 'linear_regression':
      return fitLinearRegression(data, { alpha: p.alpha, fitIntercept: p.fit_intercept, onProgress });
    case 'decision_tree':
      return fitDecisionTree(
        data,
        {
          criterion: p.criterion,
          max_depth: p.max_depth,
          min_samples_split: p.min_samples_split,
          min_samples_leaf: p.min_samples_leaf,
          max_features: p.max_features,
          seed: p.seed,
        },
        onProgress,
      );
    case 'random_forest':
      return fitRandomForest(
        data,
        {
          n_estimators: p.n_estimators,
          criterion: p.criterion,
          max_depth: p.max_depth,
          min_samples_split: p.min_samples_split,
          min_samples_leaf: p.min_samples_leaf,
          max_features: p.max_features,
          bootstrap: p.bootstrap,
          seed: p.seed,
          n_jobs: p.n_jobs ?? threads,
        },
        onProgress,
        undefined,
        forestSizeGuard(p.n_estimators, data, maxModelBytes),
      );
    case 'gradient_boosting':
      return fitGradientBoosting(
        data,
        {
          learning_rate: p.learning_rate,
          max_iter: p.max_iter,
          max_leaf_nodes: p.max_leaf_nodes,
          max_depth: p.max_depth,
          min_samples_leaf: p.min_samples_leaf,
          l2_regularization: p.l2_regularization,
          max_bins: p.max_bins,
          early_stopping: p.early_stopping,
          validation_fraction: p.validation_fraction,
          n_iter_no_change: p.n_iter_no_change,
          tol: p.tol,
          seed: p.seed,
          n_jobs: p.n_jobs ?? threads,
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

/** `key=value` pairs for a log line. */
function describeMetrics(metrics: Readonly<Record<string, number>>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k}=${Number(v.toPrecision(5))}`)
    .join(' ');
}

function paramText(v: ParamValue): string {
  return v === null ? 'null' : String(v);
}

/**
 * Runs one training job (see the module comment). Reports progress and log lines to `ctx`, stops
 * between steps (and inside fit loops) when `ctx.signal` is aborted (the run then ends KILLED),
 * and fails with `DeterministicJobError` for problems a retry cannot fix (bad data, a failed
 * export check). The run never stays RUNNING: it ends FINISHED, FAILED or KILLED here.
 */
export async function runTrainingJob(job: TrainJob, ctx: JobContext, deps: PipelineDeps): Promise<JobResult> {
  const { tracking } = deps.services;
  const req = job.request;
  const experimentName = req.experiment_name ?? req.dataset.name;
  const started = Date.now();
  ctx.progress(0, 'loading', `dataset ${req.dataset.name} version ${job.datasetVersion}`);

  const run = await tracking.runs
    .createRun({
      experimentName,
      createExperiment: true,
      ...(req.run_name === undefined ? {} : { runName: req.run_name }),
      userId: job.actor,
      tags: {
        ...req.tags,
        'mlflow.source.type': 'JOB',
        'mlflow.source.name': 'modelplane-training',
        'mlflow.user': job.actor,
        'modelplane.job_id': ctx.jobId,
        'modelplane.attempt': String(ctx.attempt),
        'modelplane.algorithm': req.algorithm,
        'modelplane.dataset': `${req.dataset.name}:${job.datasetVersion}`,
      },
    })
    .catch((err: unknown) => {
      throw deterministic(err);
    });
  const runId = run.info.runId;
  ctx.runStarted?.(runId);
  ctx.log(`tracking run ${runId} in experiment '${experimentName}'`);

  try {
    const result = await trainInRun(job, ctx, deps, runId, experimentName);
    await tracking.runs.updateRun(runId, { status: 'FINISHED', endTime: Date.now() });
    ctx.log(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    ctx.progress(100, 'done');
    return result;
  } catch (err) {
    const aborted = ctx.signal.aborted;
    const failure = aborted ? err : deterministic(err);
    const message = failure instanceof Error ? failure.message : String(failure);
    try {
      await tracking.runs.endRun(runId, aborted ? 'KILLED' : 'FAILED', Date.now(), message);
    } catch (endErr) {
      deps.log.warn({ err: endErr, runId }, 'could not mark the training run as ended');
    }
    ctx.log(aborted ? 'cancelled' : `failed: ${message}`);
    throw failure;
  }
}

/** The steps inside the run. */
async function trainInRun(job: TrainJob, ctx: JobContext, deps: PipelineDeps, runId: string, experimentName: string): Promise<JobResult> {
  const { prepared, evaluation, fitSeconds, candidate } = await fitAndExport(job, ctx, deps, runId);
  const { dataset } = prepared;
  // The fitted model and the data's matrices are unreachable now; collected before onnxruntime
  // loads the file, they are not resident beside its session (for a default forest on California
  // housing, about 75 MB of trees beside a 220 MiB session).
  collectGarbage();
  const exported = await checkStep(ctx, deps, candidate);
  await checkpoint(ctx);
  await recordStep(job, ctx, deps, runId, dataset, prepared, evaluation, exported, fitSeconds);
  await checkpoint(ctx);
  let registered: JobResult['model'] = null;
  if (job.request.register_as !== undefined) {
    ctx.progress(92, 'registering', job.request.register_as);
    registered = await registerStep(job, ctx, deps, runId, dataset, evaluation.metrics, exported);
  }
  return { runId, experimentName, model: registered, metrics: evaluation.metrics };
}

/**
 * Load, prepare, fit, evaluate and export. The model and the training and hold-out matrices stay
 * inside this function: what it returns (the file, the check's rows and expected answers, the
 * reference, the metrics and the split's description) refers to none of them.
 */
async function fitAndExport(
  job: TrainJob,
  ctx: JobContext,
  deps: PipelineDeps,
  runId: string,
): Promise<{ prepared: PreparedSummary; evaluation: Evaluation; fitSeconds: number; candidate: Candidate }> {
  const prepared = await loadAndPrepare(job, ctx, deps, runId);
  await checkpoint(ctx);
  const { model, fitSeconds } = await fitStep(job, ctx, prepared, deps.maxModelBytes);
  await checkpoint(ctx);
  const evaluation = evaluateStep(job, ctx, prepared, model);
  const candidate = exportStep(job, runId, ctx, prepared, model, deps.maxModelBytes);
  const { rawTrain: _rawTrain, rawTest: _rawTest, train: _train, yTest: _yTest, ...summary } = prepared;
  return { prepared: summary, evaluation, fitSeconds, candidate };
}

/**
 * Load, then prepare. The table stays inside this function: once the split's matrices are built
 * nothing refers to it, so its memory is free for the fit (a million rows by 20 columns is 160 MB).
 */
async function loadAndPrepare(job: TrainJob, ctx: JobContext, deps: PipelineDeps, runId: string): Promise<Prepared> {
  const data = await loadStep(job, ctx, deps, runId);
  await checkpoint(ctx);
  return prepareStep(job, ctx, data);
}

// ---------------------------------------------------------------------------------------------
// Steps

interface Loaded {
  readonly table: Table;
  readonly dataset: DatasetVersion;
  readonly target: Column;
  readonly features: readonly Column[];
}

/** Reads the dataset version the job was accepted for and finds its columns. */
async function loadStep(job: TrainJob, ctx: JobContext, deps: PipelineDeps, runId: string): Promise<Loaded> {
  const { datasets, tracking } = deps.services;
  const req = job.request;
  const { table, version: dataset } = await datasets.loadTable(req.dataset.name, job.datasetVersion);
  ctx.log(`loaded dataset ${dataset.name} version ${dataset.version}: ${table.rowCount} rows, ${table.columns.length} columns`);
  await tracking.runs.setRunDataset(runId, dataset.name, dataset.version, dataset.sha256);
  const column = (name: string): Column => {
    const c = table.columns.find((col) => col.name === name);
    if (c === undefined) throw new DeterministicJobError(`no column '${name}' in dataset ${dataset.name} version ${dataset.version}`);
    return c;
  };
  return { table, dataset, target: column(req.target), features: job.features.map(column) };
}

interface Prepared {
  readonly dataset: DatasetVersion;
  readonly task: Task;
  readonly classLabels: (number | string)[] | null;
  readonly split: { readonly train: Int32Array; readonly test: Int32Array };
  readonly testSize: number;
  readonly seed: number;
  readonly stratify: boolean;
  readonly pre: Preprocessing;
  /** Raw (encoded, untransformed) training and hold-out rows: the exported model's input. */
  readonly rawTrain: Matrix;
  readonly rawTest: Matrix;
  readonly train: TrainingData;
  readonly yTest: Float64Array;
}

/** What the steps after the export need of `Prepared`: everything but the matrices. */
type PreparedSummary = Omit<Prepared, 'rawTrain' | 'rawTest' | 'train' | 'yTest'>;

/** Target and classes, the seeded split, and preprocessing fitted on the training rows only (no peeking at the hold-out). */
function prepareStep(job: TrainJob, ctx: JobContext, data: Loaded): Prepared {
  ctx.progress(5, 'preparing');
  const req = job.request;
  const task = job.task;
  const target = prepareTarget(data.target, task);
  const dropped = data.table.rowCount - target.rows.length;
  if (dropped > 0) ctx.log(`dropped ${dropped} rows without a target value`);
  const nClasses = target.classLabels?.length ?? 0;
  ctx.log(task === 'classification' ? `classification of '${req.target}' into ${nClasses} classes: ${target.classLabels!.join(', ')}` : `regression of '${req.target}'`);

  const testSize = req.validation?.test_size ?? DEFAULT_TEST_SIZE;
  const seed = req.validation?.seed ?? DEFAULT_SEED;
  const stratify = task === 'classification' && (req.validation?.stratify ?? true);
  let split: { train: Int32Array; test: Int32Array };
  try {
    split = trainTestSplit(target.rows.length, { testSize, seed, stratify: stratify ? target.y : undefined });
  } catch (err) {
    throw new DeterministicJobError(`cannot split ${target.rows.length} rows into training and hold-out sets: ${err instanceof Error ? err.message : String(err)}`);
  }
  ctx.log(`split: ${split.train.length} training rows, ${split.test.length} hold-out rows (${stratify ? 'stratified, ' : ''}seed ${seed})`);
  // The split indexes the rows that have a target; these are the table rows they stand for.
  const trainRows = takeIndices(target.rows, split.train);
  const testRows = takeIndices(target.rows, split.test);
  const columns = data.features.map(rawColumn);
  const forLinear = req.algorithm === 'logistic_regression' || req.algorithm === 'linear_regression';
  const pre = fitPreprocessing(columns, { forLinear, rows: trainRows });
  const rawTrain = encodeRaw(pre, columns, trainRows);
  const rawTest = encodeRaw(pre, columns, testRows);
  // Tree models' preprocessing is the identity: `x` is then `rawTrain` itself, not a copy.
  const train: TrainingData = { x: transform(pre, rawTrain), y: takeValues(target.y, split.train), task, nClasses };
  return {
    dataset: data.dataset,
    task,
    classLabels: target.classLabels,
    split,
    testSize,
    seed,
    stratify,
    pre,
    rawTrain,
    rawTest,
    train,
    yTest: takeValues(target.y, split.test),
  };
}

/** `from[idx[i]]` for each `i`. */
function takeIndices(from: Int32Array, idx: Int32Array): Int32Array {
  const out = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = from[idx[i]!]!;
  return out;
}

async function fitStep(job: TrainJob, ctx: JobContext, prepared: Prepared, maxModelBytes: number): Promise<{ model: FittedModel; fitSeconds: number }> {
  const { train } = prepared;
  const algorithm = job.params.algorithm;
  ctx.progress(10, 'fitting', `${algorithm} on ${train.x.rows} rows x ${train.x.cols} features`);
  if (job.params.algorithm === 'random_forest' || job.params.algorithm === 'gradient_boosting') {
    const nJobs = job.params.n_jobs;
    ctx.log(`tree building on ${nJobs === null || nJobs === undefined ? `up to ${ctx.threads} threads (the process's default)` : nJobs === -1 ? 'every core (n_jobs -1)' : `up to ${nJobs} threads (n_jobs)`}`);
  }
  const fitStart = Date.now();
  const model = await fit(train, job.params, ctx.threads, (fraction, message) => {
    if (ctx.signal.aborted) throw cancelled(ctx);
    ctx.progress(10 + 70 * Math.min(1, Math.max(0, fraction)), 'fitting', message);
  }, maxModelBytes);
  const fitSeconds = (Date.now() - fitStart) / 1000;
  ctx.log(`fitted ${algorithm} in ${fitSeconds.toFixed(2)} s`);
  return { model, fitSeconds };
}

interface Evaluation {
  readonly metrics: Record<string, number>;
  readonly confusion?: { readonly labels: (number | string)[]; readonly matrix: number[][] };
}

function evaluateStep(job: TrainJob, ctx: JobContext, prepared: Prepared, model: FittedModel): Evaluation {
  ctx.progress(80, 'evaluating');
  const { pre, rawTest, yTest, classLabels } = prepared;
  const scores = predictScores(model, transform(pre, rawTest));
  let evaluation: Evaluation;
  if (job.task === 'classification') {
    const nClasses = classLabels!.length;
    const proba = scores.probabilities!;
    evaluation = {
      metrics: classificationReport(yTest, proba, nClasses),
      confusion: { labels: classLabels!, matrix: confusionMatrix(yTest, argmaxRows(proba, nClasses), nClasses) },
    };
  } else {
    evaluation = { metrics: regressionReport(yTest, scores.values!) };
  }
  ctx.log(`hold-out metrics: ${describeMetrics(evaluation.metrics)}`);
  return evaluation;
}

/** The ONNX file, checked, with what registration needs to know about it. */
interface Exported {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly signature: ModelSignature;
  readonly reference: unknown;
  readonly check: { readonly rows: number; readonly maxAbsDiff: number };
}

/** An exported file before its check: what the check and the record need, without the model. */
interface Candidate {
  readonly bytes: Uint8Array;
  readonly expected: ExpectedScores;
  readonly signature: ModelSignature;
  readonly reference: unknown;
}

/**
 * Exports ONNX, and computes what the check compares it with (the in-memory model's answers on the
 * hold-out rows) and the training-data reference, so that the model and the data can go before
 * the file is loaded in onnxruntime.
 */
function exportStep(job: TrainJob, runId: string, ctx: JobContext, prepared: Prepared, model: FittedModel, maxModelBytes: number): Candidate {
  ctx.progress(86, 'exporting');
  const req = job.request;
  const { dataset, pre, classLabels, rawTest, rawTrain, train } = prepared;
  const expected = expectedScores(model, pre, rawTest);
  let bytes: Uint8Array;
  try {
    bytes = exportModel(
      model,
      pre,
      {
        featureNames: pre.columns.map((c) => c.name),
        classLabels,
        producerVersion: VERSION,
        metadata: { target: req.target, algorithm: req.algorithm, dataset: `${dataset.name}:${dataset.version}`, run_id: runId },
      },
      { maxBytes: maxModelBytes },
    );
  } catch (err) {
    if (err instanceof ModelTooLargeError) throw new DeterministicJobError(`the ONNX model would be ${err.bytes} bytes, ${sizeAdvice(err.limit, req.algorithm)}`);
    throw err;
  }
  const reference = buildReference(
    pre,
    rawTrain,
    { name: req.target, task: job.task, values: train.y, classLabels },
    { name: dataset.name, version: dataset.version, sha256: dataset.sha256 },
  );
  return { bytes, expected, signature: trainedSignature(pre, job.task, classLabels), reference };
}

/** Runs the exported file in onnxruntime on the hold-out rows against the in-memory model's answers. */
async function checkStep(ctx: JobContext, deps: PipelineDeps, candidate: Candidate): Promise<Exported> {
  const { bytes } = candidate;
  const check = await compareInRuntime(deps.onnx, bytes, candidate.expected);
  if (!check.ok) {
    const m = check.firstMismatch!;
    throw new DeterministicJobError(
      `the exported ONNX model disagrees with the trained model on hold-out row ${m.row}, output ${m.output}: onnxruntime ${m.onnx}, expected ${m.expected}`,
    );
  }
  ctx.log(`ONNX export (${bytes.length} bytes) checked on ${check.rows} hold-out rows (largest difference ${check.maxAbsDiff.toExponential(2)})`);
  return {
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    signature: candidate.signature,
    reference: candidate.reference,
    check: { rows: check.rows, maxAbsDiff: check.maxAbsDiff },
  };
}

/** The run's record: params, metrics and tags in one batch, then its artifacts (the model written once). */
async function recordStep(
  job: TrainJob,
  ctx: JobContext,
  deps: PipelineDeps,
  runId: string,
  dataset: DatasetVersion,
  prepared: PreparedSummary,
  evaluation: Evaluation,
  exported: Exported,
  fitSeconds: number,
): Promise<void> {
  ctx.progress(88, 'logging');
  const { tracking } = deps.services;
  const req = job.request;
  const { split, pre, classLabels } = prepared;
  const runParams: [string, ParamValue][] = [
    ['algorithm', req.algorithm],
    ['task', job.task],
    ['target', req.target],
    ['dataset', dataset.name],
    ['dataset_version', dataset.version],
    ['n_features', job.features.length],
    ['n_train_rows', split.train.length],
    ['n_test_rows', split.test.length],
    ['test_size', prepared.testSize],
    ['split_seed', prepared.seed],
    ['stratify', prepared.stratify],
    ...paramEntries(job.params),
  ];
  const now = Date.now();
  await tracking.runs.logBatch(runId, {
    params: runParams.map(([key, value]) => ({ key, value: paramText(value) })),
    metrics: [...Object.entries(evaluation.metrics).map(([key, value]) => ({ key, value, timestamp: now, step: 0 })), { key: 'fit_seconds', value: fitSeconds, timestamp: now, step: 0 }],
    tags: [
      { key: 'modelplane.task', value: job.task },
      { key: 'modelplane.target', value: req.target },
      { key: 'modelplane.onnx_check', value: JSON.stringify({ rows: exported.check.rows, max_abs_diff: exported.check.maxAbsDiff, ok: true }) },
    ],
  });
  const featureList = pre.columns.map((c) => ({ name: c.name, type: c.kind, ...(c.kind === 'categorical' ? { categories: c.categories } : {}) }));
  await tracking.artifacts.logArtifact(runId, 'metrics.json', Buffer.from(JSON.stringify(evaluation.metrics, null, 2)));
  await tracking.artifacts.logArtifact(runId, 'features.json', Buffer.from(JSON.stringify({ target: req.target, task: job.task, class_labels: classLabels, features: featureList }, null, 2)));
  if (evaluation.confusion !== undefined) await tracking.artifacts.logArtifact(runId, 'confusion_matrix.json', Buffer.from(JSON.stringify(evaluation.confusion, null, 2)));
  await tracking.artifacts.logArtifact(runId, MODEL_ARTIFACT, exported.bytes);
  await tracking.artifacts.logArtifact(runId, 'model/reference.json', Buffer.from(JSON.stringify(exported.reference)));
}

/** Registers the run's checked model as a new version (no copy of the bytes), then the gated promotion. */
async function registerStep(
  job: TrainJob,
  ctx: JobContext,
  deps: PipelineDeps,
  runId: string,
  dataset: DatasetVersion,
  metrics: Readonly<Record<string, number>>,
  exported: Exported,
): Promise<NonNullable<JobResult['model']>> {
  const { registry, tracking } = deps.services;
  const req = job.request;
  const name = req.register_as!;
  // The registry stores finite metrics only; a NaN (e.g. no roc_auc) stays in the run alone.
  const finite = Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
  const version = await registry.models.registerChecked(
    name,
    { artifactKey: runArtifactKey(runId, MODEL_ARTIFACT), size: exported.bytes.length, sha256: exported.sha256, signature: exported.signature },
    {
      actor: job.actor,
      description: `${req.algorithm} trained on ${dataset.name} version ${dataset.version} (job ${ctx.jobId})`,
      tags: { algorithm: req.algorithm, job_id: ctx.jobId },
      metrics: finite,
      runId,
      dataset: { name: dataset.name, version: dataset.version },
      reference: exported.reference,
      source: `runs:/${runId}/model`,
    },
  );
  await tracking.runs.recordModelOutput(runId, name, version.version);
  ctx.log(`registered ${name} version ${version.version}`);
  let stage: string = version.stage;

  if (req.promote_to !== undefined) {
    ctx.progress(96, 'promoting', req.promote_to);
    const decision = evaluateGate(req.promotion_gate, metrics);
    if (decision.pass) {
      const moved = await registry.lifecycle.transitionStage(name, version.version, req.promote_to, {
        archiveExistingVersions: true,
        // The submission was checked against requiredRole(); the job acts with that authority.
        actor: { keyId: job.actor, role: requiredRole(req) },
      });
      stage = moved.version.stage;
      const archived = moved.archived.length === 0 ? '' : ` (archived version${moved.archived.length > 1 ? 's' : ''} ${moved.archived.join(', ')})`;
      ctx.log(`promoted ${name} version ${version.version} to ${req.promote_to}: ${decision.reason}${archived}`);
    } else {
      ctx.log(`not promoted to ${req.promote_to}: ${decision.reason}`);
    }
    await tracking.runs.logBatch(runId, {
      tags: [
        { key: 'promotion.decision', value: decision.pass ? 'promoted' : 'rejected' },
        { key: 'promotion.reason', value: decision.reason },
        { key: 'promotion.stage', value: req.promote_to },
      ],
    });
  }
  return { name, version: version.version, stage };
}

/**
 * The serving signature of a model this pipeline exported: what `prepareForServing` would infer
 * from the file, known here without parsing it again (a test checks the two agree).
 */
export function trainedSignature(pre: Preprocessing, task: Task, classLabels: readonly (number | string)[] | null): ModelSignature {
  const categories: Record<string, string[]> = {};
  for (const c of pre.columns) if (c.kind === 'categorical') categories[c.name] = [...c.categories];
  const classification = task === 'classification';
  return {
    input: { name: INPUT_NAME, elementType: 'float32', nFeatures: pre.columns.length, fixedBatch: null, rank: 2 },
    featureNames: pre.columns.map((c) => c.name),
    featureTypes: pre.columns.map((c) => c.kind),
    ...(Object.keys(categories).length > 0 ? { categories } : {}),
    task,
    classLabels: classification ? [...classLabels!] : null,
    labelType: classification ? (classLabels!.every((l) => typeof l === 'number') ? 'int64' : 'string') : null,
    outputs: classification ? { label: LABEL_OUTPUT, probabilities: PROBABILITY_OUTPUT } : { value: VALUE_OUTPUT },
  };
}

/**
 * A job context for running the pipeline outside the job system (CLI, demo): progress and log
 * lines go to the given callbacks.
 */
export function localJobContext(options: {
  jobId?: string;
  signal?: AbortSignal;
  /** `JobContext.threads`; default every core (nothing else runs in a local job's process). */
  threads?: number;
  onProgress?: (percent: number, stage: string, message?: string) => void;
  onLog?: (line: string) => void;
}): JobContext {
  return {
    jobId: options.jobId ?? `local-${Date.now().toString(36)}`,
    attempt: 1,
    signal: options.signal ?? new AbortController().signal,
    threads: options.threads ?? jobThreads({ serving: false, concurrentJobs: 1 }),
    progress: (percent, stage, message) => options.onProgress?.(percent, stage, message),
    log: (line) => options.onLog?.(line),
  };
}
