/**
 * Random forest (scikit-learn `RandomForestClassifier`/`Regressor` semantics): bagged CART trees
 * with per-split feature sampling, grown in parallel on worker threads.
 *
 * Every tree draws its bootstrap sample and feature order from its own seed, and the seeds come
 * from one stream seeded by `seed`, so the forest is identical for a given seed whatever the
 * number of workers or the order in which they finish. The features, targets and per-feature sort
 * orders are prepared once and handed to the workers in SharedArrayBuffers (no per-worker copies);
 * finished trees come back as transferred typed arrays.
 */

import { resolveJobs, spawnWorker } from '../util/threads.ts';
import type { Worker } from 'node:worker_threads';
import { Pacer, throwIfAborted } from './pace.ts';
import { createRng } from '../util/random.ts';
import {
  averagedTreeModel,
  growTree,
  prepareTreeData,
  resolveGrowParams,
  validateTrainingData,
  type Criterion,
  type MaxFeatures,
  type PreparedTreeData,
  type TreeGrowParams,
} from './tree.ts';
import type { ProgressFn, Tree, TrainingData, TreeEnsembleModel } from './types.ts';

/** Hyper-parameters of {@link fitRandomForest}; names and defaults follow scikit-learn 1.2. */
export interface RandomForestParams {
  /** Number of trees. Default 100. */
  readonly n_estimators?: number;
  /** Default `gini` (classification) / `squared_error` (regression). */
  readonly criterion?: Criterion;
  /** Default `null` (fully grown trees). */
  readonly max_depth?: number | null;
  /** Default 2. */
  readonly min_samples_split?: number;
  /** Default 1. */
  readonly min_samples_leaf?: number;
  /** Default `'sqrt'` for classification, `1` (all features) for regression. */
  readonly max_features?: MaxFeatures;
  /** Draw a bootstrap sample (n rows with replacement) per tree. Default true. */
  readonly bootstrap?: boolean;
  /** Default 0. */
  readonly seed?: number;
  /**
   * Worker threads; `null`/undefined = min(available parallelism, 4), `-1` = all cores, `1` = grow
   * on the calling thread. Small problems are grown on the calling thread anyway, because starting
   * workers would cost more than it saves.
   */
  readonly n_jobs?: number | null;
  /**
   * Estimated work (trees x rows x features per split x log2 rows) below which the trees are grown
   * on the calling thread even when `n_jobs` > 1. Default 4e7 (about a quarter of a second of
   * work, roughly what starting TypeScript workers costs); 0 always uses workers.
   */
  readonly parallel_threshold?: number;
}

/** What a worker needs to grow trees (all arrays shared, not copied). */
export interface ForestWorkerInit {
  readonly data: PreparedTreeData;
  readonly grow: TreeGrowParams;
  readonly bootstrap: boolean;
}

/** Task message to a worker: grow tree `index` from `seed`. */
export interface ForestWorkerTask {
  readonly index: number;
  readonly seed: number;
}

/**
 * Reply from a worker: a finished tree, the share of a tree's rows settled in leaves so far (sent
 * at most every {@link WORKER_PROGRESS_MS}, so progress stays truthful when one tree takes long),
 * or a failure.
 */
export type ForestWorkerReply =
  | { readonly kind: 'tree'; readonly index: number; readonly tree: Tree }
  | { readonly kind: 'progress'; readonly index: number; readonly fraction: number }
  | { readonly kind: 'error'; readonly index: number; readonly message: string };

/** Least gap between two progress messages of one worker (ms). */
export const WORKER_PROGRESS_MS = 200;

/**
 * Grows the forest tree with the given seed: bootstrap counts (as sample weights, like
 * scikit-learn) then CART with feature sampling, both from the same seeded stream.
 */
export function growForestTree(
  data: PreparedTreeData,
  grow: TreeGrowParams,
  bootstrap: boolean,
  seed: number,
  onSettled?: (settledRows: number, totalRows: number) => void,
): Tree {
  const rng = createRng(seed);
  let weights: Float64Array | null = null;
  if (bootstrap) {
    const n = data.n;
    weights = new Float64Array(n);
    for (let t = 0; t < n; t++) weights[rng.nextInt(n)]!++;
  }
  return growTree(data, weights, grow, rng, onSettled);
}

const DEFAULT_PARALLEL_THRESHOLD = 4e7;

/** Estimated work of growing `trees` trees (rows x features tried per split x depth). */
export function forestWork(trees: number, n: number, featuresPerSplit: number): number {
  return trees * n * featuresPerSplit * Math.log2(n + 1);
}

/**
 * Told of each finished tree, in the order trees finish, with how many have finished so far
 * (this one included). A throw stops the fit with that error, as from `onProgress`; the training
 * pipeline uses it to stop a forest whose model would be too large once the first trees show it.
 */
export type TreeFn = (tree: Tree, finished: number) => void;

/**
 * Fits a random forest. Classification leaves hold class probabilities, averaged over trees at
 * prediction (`aggregate: 'average'`); regression leaves hold means.
 *
 * Progress: the share of trees finished (in-flight trees count by the share of their rows already
 * in leaves), reported at least every 200 ms while trees grow on workers. An exception thrown by
 * `onProgress` (how the training pipeline cancels) or `onTree`, or an aborted `signal`, stops the
 * fit at once: workers are terminated mid-tree, the calling thread stops between trees.
 */
export async function fitRandomForest(
  data: TrainingData,
  params: RandomForestParams = {},
  onProgress?: ProgressFn,
  signal?: AbortSignal,
  onTree?: TreeFn,
): Promise<TreeEnsembleModel> {
  validateTrainingData(data);
  const nEst = params.n_estimators ?? 100;
  if (!(Number.isInteger(nEst) && nEst >= 1)) throw new RangeError(`invalid n_estimators: ${nEst}`);
  const bootstrap = params.bootstrap ?? true;
  const n = data.x.rows;
  const p = data.x.cols;
  const defaultMaxFeatures: MaxFeatures = data.task === 'classification' ? 'sqrt' : 1;
  const grow = resolveGrowParams(params, data.task, n, p, defaultMaxFeatures);
  const master = createRng(params.seed ?? 0);
  const seeds = new Float64Array(nEst);
  for (let t = 0; t < nEst; t++) seeds[t] = master.nextInt(0x7fffffff);

  const jobs = Math.min(resolveJobs(params.n_jobs), nEst);
  const useWorkers = jobs > 1 && forestWork(nEst, n, grow.maxFeatures) >= (params.parallel_threshold ?? DEFAULT_PARALLEL_THRESHOLD);
  const prepared = prepareTreeData(data, useWorkers);
  const trees: Tree[] = new Array<Tree>(nEst);
  const nClasses = data.task === 'classification' ? data.nClasses : 0;
  throwIfAborted(signal);
  onProgress?.(0, `growing ${nEst} trees`);

  if (!useWorkers) {
    const pacer = new Pacer();
    for (let t = 0; t < nEst; t++) {
      trees[t] = growForestTree(prepared, grow, bootstrap, seeds[t]!);
      onTree?.(trees[t]!, t + 1);
      onProgress?.((t + 1) / nEst, `${t + 1}/${nEst} trees`);
      await pacer.pause();
      throwIfAborted(signal);
    }
    return averagedTreeModel(data.task, p, nClasses, trees);
  }

  await growOnWorkers({ data: prepared, grow, bootstrap }, seeds, jobs, trees, (fraction, done) => onProgress?.(fraction, `${done}/${nEst} trees`), signal, onTree);
  return averagedTreeModel(data.task, p, nClasses, trees);
}

/** How often progress is reported (and cancellation noticed) while workers grow trees (ms). */
const PROGRESS_TICK_MS = 200;

/**
 * Grows one tree per seed on `jobs` worker threads into `trees` (by index). `onTree` hears of
 * each finished tree, then `report(fraction, done)` runs, and `report` also on a timer; if either
 * throws, or `signal` aborts, the workers are terminated and the promise rejects with that error.
 */
export async function growOnWorkers(
  init: ForestWorkerInit,
  seeds: Float64Array,
  jobs: number,
  trees: Tree[],
  report: (fraction: number, done: number) => void,
  signal?: AbortSignal,
  onTree?: TreeFn,
): Promise<void> {
  throwIfAborted(signal);
  const nEst = seeds.length;
  const workers: Worker[] = [];
  const partial = new Float64Array(nEst);
  let next = 0;
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown): void => {
        if (!failed) {
          failed = true;
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      const progress = (): void => {
        if (failed) return;
        let inFlight = 0;
        for (let t = 0; t < nEst; t++) inFlight += partial[t]!;
        try {
          throwIfAborted(signal);
          report(Math.min(1, (done + inFlight) / nEst), done);
        } catch (err) {
          fail(err);
        }
      };
      const dispatch = (worker: Worker): void => {
        if (next < nEst) {
          const task: ForestWorkerTask = { index: next, seed: seeds[next]! };
          next++;
          worker.postMessage(task);
        }
      };
      if (signal !== undefined) {
        onAbort = progress;
        signal.addEventListener('abort', onAbort);
      }
      timer = setInterval(progress, PROGRESS_TICK_MS);
      for (let k = 0; k < jobs; k++) {
        const worker = spawnWorker(import.meta.url, './forest-worker', init);
        workers.push(worker);
        worker.on('message', (msg: ForestWorkerReply) => {
          // After a failure the workers are being terminated; what they still send is dropped.
          if (failed) return;
          if (msg.kind === 'progress') {
            partial[msg.index] = msg.fraction;
            return;
          }
          if (msg.kind === 'error') {
            fail(new Error(`forest worker failed on tree ${msg.index}: ${msg.message}`));
            return;
          }
          trees[msg.index] = msg.tree;
          partial[msg.index] = 0;
          done++;
          try {
            onTree?.(msg.tree, done);
          } catch (err) {
            fail(err);
            return;
          }
          progress();
          if (done === nEst) resolve();
          else dispatch(worker);
        });
        worker.on('error', fail);
        worker.on('exit', (code) => {
          if (done < nEst) fail(new Error(`forest worker exited with code ${code}`));
        });
        // Two tasks in flight per worker, so a worker never idles waiting for the next message.
        dispatch(worker);
        dispatch(worker);
      }
    });
  } finally {
    if (timer !== undefined) clearInterval(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
