/**
 * Histogram gradient boosting (in the spirit of LightGBM and scikit-learn's
 * `HistGradientBoostingClassifier`/`Regressor`, whose defaults it follows).
 *
 * - Features are binned once into at most `max_bins` quantile bins (`binning.ts`), missing values in
 *   a bin of their own; each split learns which side missing values take.
 * - Each tree is grown leaf-wise (best gain first) up to `max_leaf_nodes`, from gradient/hessian
 *   histograms. Only the smaller child of a split is histogrammed; the larger one is the parent's
 *   histogram minus the smaller child's (the subtraction trick), computed in the parent's buffer.
 *   Histograms read a row-major copy of the bins, in row chunks summed in a fixed order.
 * - Losses: half squared error (regression), binary log-loss (one logit output, `logistic`),
 *   multinomial log-loss (one tree per class per iteration, `softmax`). `baseValues` are
 *   scikit-learn's baseline predictions; the learning rate is folded into the leaf values.
 * - Early stopping on the loss of a held-out validation split, with scikit-learn's rule.
 *
 * Thresholds of the returned trees are the bins' upper edges: float32 values between consecutive
 * distinct float32 feature values, so `x <= threshold` on the float32 input (as onnxruntime
 * evaluates it) routes every row exactly as the binned training did. A split that separates present
 * from missing values has threshold = the largest float32 (all finite values go left).
 */

import { FLOAT32_MAX, applyBinMapper, fitBinMapper, toColumnMajorF32, type BinMapper } from './binning.ts';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { Pacer, throwIfAborted } from './pace.ts';
import { resolveJobs, spawnWorker } from '../util/threads.ts';
import { createRng } from '../util/random.ts';
import { KernelMemory, wasmKernels, type SharedMemory } from './wasm-kernels.ts';
import { trainTestSplit } from './split.ts';
import { validateTrainingData } from './tree.ts';
import type { ProgressFn, Tree, TrainingData, TreeEnsembleModel } from './types.ts';

/** Hyper-parameters of {@link fitGradientBoosting}; names and defaults follow scikit-learn 1.2. */
export interface GradientBoostingParams {
  /** Shrinkage folded into every leaf value. Default 0.1. */
  readonly learning_rate?: number;
  /** Boosting iterations (trees per output). Default 100. */
  readonly max_iter?: number;
  /** Leaves per tree; `null` = unlimited. Default 31. */
  readonly max_leaf_nodes?: number | null;
  /** Maximum depth (root = 0); `null` (default) = unlimited. */
  readonly max_depth?: number | null;
  /** Minimum training rows per leaf. Default 20. */
  readonly min_samples_leaf?: number;
  /** L2 penalty on leaf values. Default 0. */
  readonly l2_regularization?: number;
  /** Bins for non-missing values, 2..255. Default 255. */
  readonly max_bins?: number;
  /** `'auto'` (default): on when there are more than 10000 rows. */
  readonly early_stopping?: 'auto' | boolean;
  /** Share (or count) of the rows held out for early stopping. Default 0.1. */
  readonly validation_fraction?: number;
  /** Stop when the validation loss has not improved by `tol` in this many iterations. Default 10. */
  readonly n_iter_no_change?: number;
  /** Default 1e-7. */
  readonly tol?: number;
  /** Seed of the validation split. Default 0. */
  readonly seed?: number;
  /**
   * Threads building histograms; `null`/undefined = min(available parallelism, 4), `-1` = all
   * cores, `1` = the calling thread only. The model is the same whatever the number. Small problems
   * stay on the calling thread (see `parallel_threshold`).
   */
  readonly n_jobs?: number | null;
  /**
   * Training rows x features below which the fit stays on the calling thread even when `n_jobs` >
   * 1. Default 2e6 (e.g. 100,000 rows of 20 features; a smaller fit gains less than starting a
   * worker costs); 0 always uses workers.
   */
  readonly parallel_threshold?: number;
}

type LossKind = 'squared_error' | 'binary' | 'multinomial';

const HIST_STRIDE = 3; // gradient, hessian, count per bin (the histogram loops assume it: 24 bytes a bin)
const MIN_HESSIAN_TO_SPLIT = 1e-3;

/**
 * What the histogram builders read. When the fit uses worker threads, every array here lives in a
 * SharedArrayBuffer and the workers see the same memory.
 */
export interface HistogramInputs {
  /**
   * The WebAssembly memory of the histogram and partition loops (`wasm-kernels.ts`): `bins`,
   * `rowBins`, `g`, `h`, `order`, `tmp`, `goLeft`, `chunkHists` and every histogram buffer are
   * views of it.
   */
  readonly memory: SharedMemory;
  /** Column-major bins of the training rows (`bins[f * n + i]`), read by partitions. In `memory`. */
  readonly bins: Uint8Array;
  /** The same bins row-major (`rowBins[i * p + f]`), read by histograms. */
  readonly rowBins: Uint8Array;
  readonly n: number;
  readonly p: number;
  /**
   * Start of each feature's bins in a histogram (`nBins[f] + 1` bins, the last for missing):
   * `f * featureSlots`, every feature taking the slots of the one with the most bins, so that the
   * histogram loops compute a bin's place rather than look it up.
   */
  readonly histOffset: Int32Array;
  readonly featureSlots: number;
  readonly histSize: number;
  /**
   * Hessians are all 1 (squared error): histograms skip them and read the count instead, which
   * saves a third of the accumulation work.
   */
  readonly constHess: boolean;
  /** Gradients and hessians of every output, class-major (`g[k * n + i]`). */
  readonly g: Float64Array;
  readonly h: Float64Array;
  /** Rows of the tree being grown, each node's a segment. */
  readonly order: Int32Array;
  /** Histograms of a node's row chunks after the first (see {@link histogramChunks}), one after another. */
  readonly chunkHists: Float64Array;
  /** Partition scratch: the right rows; 1 for the bins that go left in the split being applied. In `memory`. */
  readonly tmp: Int32Array;
  readonly goLeft: Uint8Array;
  /** Left rows of each chunk of a parallel partition, and the left rows of the chunks before it. */
  readonly chunkLeft: Int32Array;
  readonly chunkStart: Int32Array;
  /** A parallel partition's left rows, at their chunk's place (its right rows go to `tmp`). In `memory`. */
  readonly tmpLeft: Int32Array;
  /** The root's histogram layout with the count of every bin and zero sums. */
  readonly rootCounts: Float64Array;
  /** Raw scores of the training rows (`raw[i * outputs + k]`). In `memory`. */
  readonly raw: Float64Array;
  readonly outputs: number;
  /** The leaves of the tree just grown: their rows `order[leafStart..leafEnd)` and values. */
  readonly leafStart: Int32Array;
  readonly leafEnd: Int32Array;
  readonly leafValue: Float64Array;
}

interface GrowContext extends HistogramInputs {
  readonly nBins: Int32Array;
  readonly mapper: BinMapper;
  readonly maxLeaves: number;
  readonly maxDepth: number;
  readonly minLeaf: number;
  readonly l2: number;
  readonly lr: number;
  /** Where new histogram buffers are made. */
  readonly arena: KernelMemory;
  /** Histogram buffers reused across nodes and trees. */
  readonly pool: Float64Array[];
  /** Threads that build a share of large nodes' histograms; null = all on the calling thread. */
  readonly workers: GrowWorkers | null;
}

/** A grown tree with what the booster needs beyond the exported shape. */
interface GrownTree {
  readonly nodeCount: number;
  readonly feature: Int32Array;
  readonly thrBin: Int32Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly missLeft: Uint8Array;
  readonly value: Float64Array;
  readonly cover: Float64Array;
  /** Segment of `ctx.order` holding each node's rows. */
  readonly start: Int32Array;
  readonly end: Int32Array;
}

function acquire(ctx: GrowContext): Float64Array {
  return ctx.pool.pop() ?? ctx.arena.float64(ctx.histSize);
}

function sharedFloat64(length: number, shared: boolean): Float64Array {
  return shared ? new Float64Array(new SharedArrayBuffer(length * Float64Array.BYTES_PER_ELEMENT)) : new Float64Array(length);
}

/**
 * Node size (rows x features) from which the worker threads take a share of a histogram: below it,
 * waking them (microseconds, more when a core is busy) costs about what it saves.
 */
const MIN_PARALLEL_NODE_WORK = 50_000;

/** Default `parallel_threshold` (training rows x features). */
const DEFAULT_PARALLEL_THRESHOLD = 2e6;

/** Rows per chunk of a histogram (at least; see {@link histogramChunks}). 16,384 gave the same 1M-row times. */
const HIST_CHUNK_ROWS = 8192;

/** Most row chunks of one histogram: each chunk after the first takes a histogram-sized buffer. */
const MAX_HIST_CHUNKS = 16;

/**
 * Histogram units per thread a node is cut into when its row chunks are fewer: enough that a
 * thread which starts late still finds a share left.
 */
const UNITS_PER_THREAD = 2;

/**
 * Row chunks of the histogram of a node of `cnt` rows. Each chunk is summed on its own, in row
 * order, and the chunks are then added in chunk order, so the count depends on the node alone,
 * never on the number of threads: the sums are the same to the last bit however many there are.
 */
export function histogramChunks(cnt: number): number {
  return Math.min(MAX_HIST_CHUNKS, Math.max(1, Math.floor(cnt / HIST_CHUNK_ROWS)));
}

/**
 * The histogram of rows `order[s..e)` for output `gOff / n`. Its rows are cut into
 * {@link histogramChunks} chunks (the first summed into `hist`, the others into `chunkHists`,
 * then added to it in chunk order) and its features into blocks; with workers, the (chunk, block)
 * units of large nodes are shared among the threads (see {@link GrowWorkers}). Which thread sums a
 * unit, and how the features are blocked, changes no sum.
 */
function buildHistogram(ctx: GrowContext, hist: Float64Array, gOff: number, s: number, e: number): Promise<void> | undefined {
  const workers = ctx.workers;
  const chunks = histogramChunks(e - s);
  // Without workers nothing waits: no promise, so growTree does not yield a microtask per node.
  if (workers === null || (e - s) * ctx.p < MIN_PARALLEL_NODE_WORK) {
    for (let c = 0; c < chunks; c++) accumulateUnit(ctx, hist, gOff, s, e, 1, c);
    addChunkHistograms(ctx, hist, chunks);
    return undefined;
  }
  return buildHistogramOnThreads(ctx, workers, hist, gOff, s, e, chunks);
}

async function buildHistogramOnThreads(ctx: GrowContext, workers: GrowWorkers, hist: Float64Array, gOff: number, s: number, e: number, chunks: number): Promise<void> {
  const blocks = Math.min(ctx.p, Math.ceil((UNITS_PER_THREAD * workers.threads) / chunks));
  await workers.build(ctx, hist, gOff, s, e, blocks);
  addChunkHistograms(ctx, hist, chunks);
}

/**
 * Adds the histograms of chunks 1.. (in `chunkHists`, one after another) to chunk 0's, in chunk
 * order (a kernel loop: V8's kept being deoptimised).
 */
function addChunkHistograms(inp: HistogramInputs, hist: Float64Array, chunks: number): void {
  const { addF64 } = wasmKernels(inp.memory);
  const m = hist.length;
  for (let c = 1; c < chunks; c++) addF64(hist.byteOffset, inp.chunkHists.byteOffset + (c - 1) * m * Float64Array.BYTES_PER_ELEMENT, m);
}

/**
 * Unit `u` of the histogram of rows `order[s..e)` with its features cut into `blocks` blocks:
 * fills (overwrites) the slots of one block of features from the rows of one chunk, in chunk `c`'s
 * buffer (`hist` for the first chunk, else its place in `chunkHists`). The root (all `n` rows) is
 * read in index order and its counts are copied, not summed again: they are the same for every
 * tree. The loops (`wasm-kernels.ts`) read each row's bins from the row-major copy: a node's
 * rows are scattered, and one row's bins then share a cache line, where the column-major bins cost
 * a line per row and feature. Runs on the calling thread and on the workers (`gbdt-worker.ts`).
 */
export function accumulateUnit(inp: HistogramInputs, hist: Float64Array, gOff: number, s: number, e: number, blocks: number, u: number): void {
  const { rowBins, n, p, featureSlots, histSize, constHess, g, h, order, rootCounts } = inp;
  const cnt = e - s;
  const chunks = histogramChunks(cnt);
  const c = Math.floor(u / blocks);
  const b = u - c * blocks;
  const t0 = s + Math.floor((c * cnt) / chunks);
  const t1 = s + Math.floor(((c + 1) * cnt) / chunks);
  const f0 = Math.floor((b * p) / blocks);
  const f1 = Math.floor(((b + 1) * p) / blocks);
  const out = c === 0 ? hist : inp.chunkHists;
  const base = c === 0 ? 0 : (c - 1) * histSize;
  const lo = f0 * featureSlots;
  const hi = f1 * featureSlots;
  const root = cnt === n;
  if (root && c === 0) out.set(rootCounts.subarray(lo, hi), base + lo);
  else out.fill(0, base + lo, base + hi);
  const kernels = wasmKernels(inp.memory);
  const loop = root ? (constHess ? kernels.rootRows : kernels.rootRowsWithHessians) : constHess ? kernels.nodeRows : kernels.nodeRowsWithHessians;
  const F64 = Float64Array.BYTES_PER_ELEMENT;
  loop(out.byteOffset + base * F64, featureSlots * F64, rowBins.byteOffset, p, f0, f1, order.byteOffset, t0, t1, g.byteOffset + gOff * F64, h.byteOffset + gOff * F64);
}

/** Slots of the shared control array of {@link GrowWorkers}. */
export const Ctl = {
  /** Task number, bumped (and notified) for every parallel task; 0 before the first. */
  Seq: 0,
  /** Claim word of the current task: `(seq & 0x7fff) << 16 | next unit to take`. */
  Claim: 1,
  /** Units of the current task finished so far (notified when all are). */
  Finished: 2,
  /** The task: its kind (`TASK_HISTOGRAM`, `TASK_PARTITION`) and units ((chunk, block) pairs or row chunks). */
  Kind: 3,
  Units: 4,
  /** Histogram: buffer id, gradient offset and feature blocks. Partition: the split feature's column offset. */
  Hist: 5,
  GOff: 6,
  Blocks: 7,
  Col: 8,
  /** The node's rows: `order[Start..End)`. */
  Start: 9,
  End: 10,
  /** Set by a worker whose share threw (its message follows on the channel). */
  Failed: 11,
  /** Set to end the workers' loops. */
  Stop: 12,
  /** Histogram units done by the workers so far, all tasks together. */
  WorkerUnits: 13,
  /** Histogram units done by any thread so far. */
  AllUnits: 14,
  /** Join of a parallel partition: the node's left rows. */
  Left: 15,
  Length: 16,
} as const;

export const TASK_HISTOGRAM = 0;
export const TASK_PARTITION = 1;
/** A tree's leaf values added to its training rows' scores, a leaf a unit (output in `GOff`). */
export const TASK_SCORES = 2;
/** Second step of a parallel partition: each chunk's rows copied to their places. */
export const TASK_JOIN = 3;

/** Rows per unit of a parallel partition. */
export const PARTITION_CHUNK = 8192;

/** Node rows from which a partition is shared among the threads. */
const MIN_PARALLEL_PARTITION = 2 * PARTITION_CHUNK;

/** What a histogram worker starts with (workerData). */
export interface GbdtWorkerInit {
  readonly control: Int32Array;
  /** Main to worker: the shared inputs, then every new histogram buffer; worker to main: errors. */
  readonly port: MessagePort;
}

/** Message on a histogram worker's channel. */
export type GbdtWorkerMessage =
  | { readonly kind: 'inputs'; readonly inputs: HistogramInputs }
  | { readonly kind: 'hist'; readonly id: number; readonly hist: Float64Array }
  | { readonly kind: 'error'; readonly message: string };

/** Claim word of task `seq` with `f` features claimed. */
export function claimWord(seq: number, f: number): number {
  return ((seq & 0x7fff) << 16) | f;
}

/**
 * Claims the next unit (feature or chunk) of task `seq` from the control array, or returns -1
 * once all `units` are claimed or the task is no longer the current one. Threads claim one unit at
 * a time, so the faster thread takes more of them and none waits on a slow one for long.
 */
export function claimUnit(control: Int32Array, seq: number, units: number): number {
  for (;;) {
    const w = Atomics.load(control, Ctl.Claim);
    if (w >>> 16 !== (seq & 0x7fff)) return -1;
    const u = w & 0xffff;
    if (u >= units) return -1;
    if (Atomics.compareExchange(control, Ctl.Claim, w, w + 1) === w) return u;
  }
}

/**
 * Checks of a shared word a thread makes before it sleeps on it (about 130 microseconds): tasks
 * follow each other closely and their last units end soon, while a sleeping thread takes tens to
 * hundreds of microseconds to wake on a busy or virtual machine. 1M x 20 on 2 threads, alternating
 * runs: 4.8-5.3 s without the spin, 4.6-5.0 s with it (a little more CPU time).
 */
export const SPIN_CHECKS = 20_000;

/** Most units the claim word can count (a word at this count is closed). */
const MAX_UNITS = 0xffff;

/**
 * Stable partition of rows `order[cs..ce)` by `inp.goLeft` of their bin in the column at `col`:
 * the left rows go to `left[cs..cs+L)` in order (`order` itself by default), the right ones to
 * `inp.tmp[cs..ce-L)`. Returns L. In WebAssembly (`partitionRows` of `wasm-kernels.ts`),
 * branch-free: the side of a row is unpredictable, so a branch on it would be mispredicted about
 * half the time.
 */
export function partitionRows(inp: HistogramInputs, col: number, cs: number, ce: number, left: Int32Array = inp.order): number {
  const { order, tmp, bins, goLeft } = inp;
  return wasmKernels(inp.memory).partitionRows(order.byteOffset, tmp.byteOffset, bins.byteOffset + col, goLeft.byteOffset, cs, ce, left.byteOffset);
}

/**
 * Adds leaf `u`'s value to its rows' raw scores of output `k` (a kernel loop: the scores live in
 * the kernel memory; V8's version of the loop deoptimised again and again).
 */
function addLeafToScores(inp: HistogramInputs, k: number, u: number): void {
  const F64 = Float64Array.BYTES_PER_ELEMENT;
  wasmKernels(inp.memory).addToScores(inp.order.byteOffset, inp.raw.byteOffset + k * F64, inp.outputs * F64, inp.leafStart[u]!, inp.leafEnd[u]!, inp.leafValue[u]!);
}

/**
 * Adds a grown tree's leaf values (output `k`) to the raw scores of its training rows: each leaf's
 * rows are a segment of `order`, and the leaves are shared among the threads when there are any.
 */
async function addTreeToScores(ctx: GrowContext, grown: GrownTree, k: number): Promise<void> {
  let leaves = 0;
  for (let node = 0; node < grown.nodeCount; node++) {
    if (grown.left[node]! !== -1) continue;
    ctx.leafStart[leaves] = grown.start[node]!;
    ctx.leafEnd[leaves] = grown.end[node]!;
    ctx.leafValue[leaves++] = grown.value[node]!;
  }
  if (ctx.workers !== null && leaves > 1 && leaves < MAX_UNITS) await ctx.workers.scores(ctx, k, leaves);
  else for (let u = 0; u < leaves; u++) addLeafToScores(ctx, k, u);
}

/**
 * Does unit `u` of the task described by the control array: one (row chunk, feature block) of a
 * histogram or one chunk of a partition. Runs on the calling thread and on the workers
 * (`gbdt-worker.ts`).
 */
export function runUnit(inp: HistogramInputs, control: Int32Array, hist: Float64Array | undefined, u: number): void {
  const s = control[Ctl.Start]!;
  const e = control[Ctl.End]!;
  const kind = control[Ctl.Kind];
  if (kind === TASK_PARTITION) {
    const cs = s + u * PARTITION_CHUNK;
    inp.chunkLeft[u] = partitionRows(inp, control[Ctl.Col]!, cs, Math.min(e, cs + PARTITION_CHUNK), inp.tmpLeft);
  } else if (kind === TASK_JOIN) {
    // Chunk u's left rows (in tmpLeft) and right rows (in tmp) to their places in the node: after
    // the left rows of the chunks before it, and after all left rows and the chunks' right rows
    // before it.
    const { order, tmp, tmpLeft, chunkLeft, chunkStart } = inp;
    const cs = s + u * PARTITION_CHUNK;
    const left = chunkLeft[u]!;
    const right = Math.min(e, cs + PARTITION_CHUNK) - cs - left;
    order.set(tmpLeft.subarray(cs, cs + left), s + chunkStart[u]!);
    order.set(tmp.subarray(cs, cs + right), s + control[Ctl.Left]! + (cs - s - chunkStart[u]!));
  } else if (kind === TASK_SCORES) addLeafToScores(inp, control[Ctl.GOff]!, u);
  else if (hist !== undefined) accumulateUnit(inp, hist, control[Ctl.GOff]!, s, e, control[Ctl.Blocks]!, u);
  else throw new Error('histogram task without its buffer');
}

/**
 * Worker threads that build units of large nodes' histograms and partition chunks of large nodes'
 * rows beside the calling thread. Every thread claims one unit at a time (an atomic counter in
 * shared memory). A histogram unit (the slots of a block of features in one row chunk's buffer)
 * is zeroed and summed in row order by the thread that claims it, the chunks' histograms are added
 * in chunk order, and a partition's chunks are joined in chunk order, so the results are the same
 * to the last bit whatever the number of threads. Workers sleep in `Atomics.wait` between tasks, so a
 * task costs a notify, not a message; the calling thread never waits for a worker to wake, only for
 * units a worker has claimed. Started before the data is binned (a TypeScript worker's start-up
 * overlaps it); must be closed.
 */
class GrowWorkers {
  private readonly control = new Int32Array(new SharedArrayBuffer(Ctl.Length * Int32Array.BYTES_PER_ELEMENT));
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly histIds = new Map<Float64Array, number>();
  private failure: Error | null = null;
  private closing = false;
  private readonly started: Promise<unknown>;

  constructor(workers: number) {
    for (let w = 0; w < workers; w++) {
      const { port1, port2 } = new MessageChannel();
      const init: GbdtWorkerInit = { control: this.control, port: port2 };
      const worker = spawnWorker(import.meta.url, './gbdt-worker', init, [port2]);
      worker.on('error', (err) => (this.failure ??= err));
      worker.on('exit', (code) => {
        if (!this.closing) this.failure ??= new Error(`gradient boosting worker exited with code ${code}`);
      });
      this.workers.push(worker);
      this.ports.push(port1);
    }
    // A worker posts one message once its module is loaded; a failed start rejects.
    this.started = Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.once('message', () => resolve());
            worker.once('error', reject);
            worker.once('exit', (code) => reject(new Error(`gradient boosting worker exited with code ${code}`)));
          }),
      ),
    );
    // Seen by ready() if it happens; not an unhandled rejection before that.
    this.started.catch(() => undefined);
  }

  /** Resolves once every worker has loaded (so the first trees get their help). */
  async ready(): Promise<void> {
    await this.started;
  }

  /** Threads that take units: the workers and the calling thread. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Share of the histogram units done so far that the workers did (0..1). */
  workerShare(): number {
    const all = Atomics.load(this.control, Ctl.AllUnits);
    return all === 0 ? 0 : Atomics.load(this.control, Ctl.WorkerUnits) / all;
  }

  /** Hands the workers the shared inputs (the arrays' memory is shared, not copied). */
  init(inputs: HistogramInputs): void {
    for (const port of this.ports) port.postMessage({ kind: 'inputs', inputs } satisfies GbdtWorkerMessage);
  }

  /**
   * Sums the chunk histograms of rows `order[s..e)` (`hist` and `inp.chunkHists`, see
   * {@link accumulateUnit}) with the workers' help, its features cut into `blocks` blocks.
   */
  async build(inp: HistogramInputs, hist: Float64Array, gOff: number, s: number, e: number, blocks: number): Promise<void> {
    let id = this.histIds.get(hist);
    if (id === undefined) {
      id = this.histIds.size;
      this.histIds.set(hist, id);
      for (const port of this.ports) port.postMessage({ kind: 'hist', id, hist } satisfies GbdtWorkerMessage);
    }
    const c = this.control;
    Atomics.store(c, Ctl.Hist, id);
    c[Ctl.GOff] = gOff;
    c[Ctl.Blocks] = blocks;
    const units = histogramChunks(e - s) * blocks;
    await this.run(inp, TASK_HISTOGRAM, units, s, e, hist);
    Atomics.add(c, Ctl.AllUnits, units);
  }

  /**
   * Stable partition of rows `order[s..e)` by `inp.goLeft` of their bins in the column at `col`,
   * chunk by chunk on every thread (left rows to `tmpLeft`, right rows to `tmp`), then joined in
   * chunk order, chunk by chunk on every thread too. Returns the number of left rows.
   */
  async partition(inp: HistogramInputs, col: number, s: number, e: number): Promise<number> {
    const units = Math.ceil((e - s) / PARTITION_CHUNK);
    this.control[Ctl.Col] = col;
    await this.run(inp, TASK_PARTITION, units, s, e, undefined);
    const { chunkLeft, chunkStart } = inp;
    let l = 0;
    for (let u = 0; u < units; u++) {
      chunkStart[u] = l;
      l += chunkLeft[u]!;
    }
    this.control[Ctl.Left] = l;
    await this.run(inp, TASK_JOIN, units, s, e, undefined);
    return l;
  }

  /** Posts a task of `units` units, takes units until none is left, and waits for the workers' ones. */
  private async run(inp: HistogramInputs, kind: number, units: number, s: number, e: number, hist: Float64Array | undefined): Promise<void> {
    this.throwIfFailed();
    const c = this.control;
    const seq = c[Ctl.Seq]! + 1;
    // Close the previous task's claims first: a worker still on it may read this task's fields
    // (kind, units) and must not claim under the old number with them.
    Atomics.store(c, Ctl.Claim, claimWord(seq - 1, MAX_UNITS));
    Atomics.store(c, Ctl.Kind, kind);
    Atomics.store(c, Ctl.Units, units);
    c[Ctl.Start] = s;
    c[Ctl.End] = e;
    Atomics.store(c, Ctl.Finished, 0);
    Atomics.store(c, Ctl.Claim, claimWord(seq, 0));
    Atomics.store(c, Ctl.Seq, seq);
    Atomics.notify(c, Ctl.Seq);
    for (let u = claimUnit(c, seq, units); u >= 0; u = claimUnit(c, seq, units)) {
      runUnit(inp, c, hist, u);
      Atomics.add(c, Ctl.Finished, 1);
    }
    // Only units a worker claimed are left: wait for them, now and then letting the event loop
    // run so that a worker's exit or error is seen rather than waited on forever. A short spin
    // first: the last unit usually ends within microseconds, sooner than a sleeping thread wakes.
    for (let spin = 0; spin < SPIN_CHECKS && Atomics.load(c, Ctl.Finished) !== units; spin++);
    for (;;) {
      const done = Atomics.load(c, Ctl.Finished);
      if (done === units) break;
      if (Atomics.wait(c, Ctl.Finished, done, 50) === 'timed-out') {
        await new Promise((resolve) => setImmediate(resolve));
        this.throwIfFailed();
      }
    }
    if (Atomics.load(c, Ctl.Failed) !== 0) {
      const msg = this.ports.map((port) => receiveMessageOnPort(port)?.message as GbdtWorkerMessage | undefined).find((m) => m?.kind === 'error');
      this.failure = new Error(`gradient boosting worker failed: ${msg?.kind === 'error' ? msg.message : 'unknown error'}`);
      throw this.failure;
    }
  }

  /** Throws what made a worker fail, if one did (its 'error' or 'exit' event, seen between tasks). */
  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  /** Adds the `leaves` leaves in `inp.leafStart`... to the scores of output `k`, a leaf a unit on every thread. */
  async scores(inp: HistogramInputs, k: number, leaves: number): Promise<void> {
    this.control[Ctl.GOff] = k;
    await this.run(inp, TASK_SCORES, leaves, 0, inp.n, undefined);
  }

  /** Ends every worker thread. */
  async close(): Promise<void> {
    this.closing = true;
    Atomics.store(this.control, Ctl.Stop, 1);
    Atomics.add(this.control, Ctl.Seq, 1);
    Atomics.notify(this.control, Ctl.Seq);
    for (const port of this.ports) port.close();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** `parent -= child`, elementwise (a kernel loop). */
function subtractHistogram(inp: HistogramInputs, parent: Float64Array, child: Float64Array): void {
  wasmKernels(inp.memory).subF64(parent.byteOffset, child.byteOffset, parent.length);
}

interface SplitChoice {
  gain: number;
  feature: number;
  bin: number;
  missLeft: number;
  gL: number;
  hL: number;
  cL: number;
}

/** Best split of a node from its histogram; `gain <= 0` when none is allowed. */
function findBestSplit(ctx: GrowContext, hist: Float64Array, G: number, H: number, N: number, out: SplitChoice): void {
  const { p, nBins, minLeaf, l2, histOffset } = ctx;
  // Offset of the hessian sum in a bin: the count stands in for it when hessians are constant.
  const hOff = ctx.constHess ? 2 : 1;
  out.gain = 0;
  out.feature = -1;
  const parent = (G * G) / (H + l2);
  for (let f = 0; f < p; f++) {
    const nb = nBins[f]!;
    const hb = histOffset[f]!;
    const mo = hb + nb * HIST_STRIDE;
    const gM = hist[mo]!;
    const hM = hist[mo + hOff]!;
    const cM = hist[mo + 2]!;
    let gl = 0;
    let hl = 0;
    let cl = 0;
    for (let b = 0; b < nb - 1; b++) {
      const o = hb + b * HIST_STRIDE;
      const c = hist[o + 2]!;
      // An empty bin changes nothing: the candidate equals the previous one.
      if (c === 0) continue;
      gl += hist[o]!;
      hl += hist[o + hOff]!;
      cl += c;
      // Too few rows on the right for either side of the missing values: no later bin can do better.
      if (N - cl < minLeaf) break;
      // Missing values right.
      if (cl >= minLeaf && N - cl >= minLeaf && hl >= MIN_HESSIAN_TO_SPLIT && H - hl >= MIN_HESSIAN_TO_SPLIT) {
        const gr = G - gl;
        const gain = (gl * gl) / (hl + l2) + (gr * gr) / (H - hl + l2) - parent;
        if (gain > out.gain) {
          out.gain = gain;
          out.feature = f;
          out.bin = b;
          // With no missing value in the node, unseen missing values follow the larger child.
          out.missLeft = cM === 0 && cl >= N - cl ? 1 : 0;
          out.gL = gl;
          out.hL = hl;
          out.cL = cl;
        }
      }
      // Missing values left.
      if (cM > 0) {
        const glm = gl + gM;
        const hlm = hl + hM;
        const clm = cl + cM;
        if (clm >= minLeaf && N - clm >= minLeaf && hlm >= MIN_HESSIAN_TO_SPLIT && H - hlm >= MIN_HESSIAN_TO_SPLIT) {
          const gr = G - glm;
          const gain = (glm * glm) / (hlm + l2) + (gr * gr) / (H - hlm + l2) - parent;
          if (gain > out.gain) {
            out.gain = gain;
            out.feature = f;
            out.bin = b;
            out.missLeft = 1;
            out.gL = glm;
            out.hL = hlm;
            out.cL = clm;
          }
        }
      }
    }
    // Present values left, missing right.
    if (cM > 0) {
      const glp = G - gM;
      const hlp = H - hM;
      const clp = N - cM;
      if (clp >= minLeaf && cM >= minLeaf && hlp >= MIN_HESSIAN_TO_SPLIT && hM >= MIN_HESSIAN_TO_SPLIT) {
        const gain = (glp * glp) / (hlp + l2) + (gM * gM) / (hM + l2) - parent;
        if (gain > out.gain) {
          out.gain = gain;
          out.feature = f;
          out.bin = nb - 1;
          out.missLeft = 0;
          out.gL = glp;
          out.hL = hlp;
          out.cL = clp;
        }
      }
    }
  }
}

/**
 * Grows one tree leaf-wise on the gradients and hessians of output `k` (`ctx.g[k * n + i]`), whose
 * sums over all rows are `G` and `H`.
 */
async function growTree(ctx: GrowContext, k: number, G: number, H: number): Promise<GrownTree> {
  const { n, order, tmp, maxLeaves, maxDepth, minLeaf, l2, lr, nBins } = ctx;
  const gOff = k * n;
  const cap = 2 * Math.min(maxLeaves, n) + 1;
  const feature = new Int32Array(cap);
  const thrBin = new Int32Array(cap);
  const left = new Int32Array(cap).fill(-1);
  const right = new Int32Array(cap).fill(-1);
  const missLeft = new Uint8Array(cap);
  const value = new Float64Array(cap);
  const cover = new Float64Array(cap);
  const start = new Int32Array(cap);
  const end = new Int32Array(cap);
  const depth = new Int32Array(cap);
  const sumG = new Float64Array(cap);
  const sumH = new Float64Array(cap);
  const hists: (Float64Array | null)[] = new Array<Float64Array | null>(cap).fill(null);
  const splits: (SplitChoice | null)[] = new Array<SplitChoice | null>(cap).fill(null);
  const candidates: number[] = [];

  // A function of its own: inline here, this loop got growTree OSR-compiled before its later code
  // had run, and deoptimised when it did (eight times in a 100-tree fit).
  fillIdentity(order, n);
  let nodeCount = 1;
  start[0] = 0;
  end[0] = n;
  sumG[0] = G;
  sumH[0] = H;
  cover[0] = n;

  const splittable = (node: number): boolean =>
    depth[node]! < maxDepth && end[node]! - start[node]! >= 2 * minLeaf && sumH[node]! >= 2 * MIN_HESSIAN_TO_SPLIT;
  const evaluate = (node: number): void => {
    const choice: SplitChoice = { gain: 0, feature: -1, bin: 0, missLeft: 0, gL: 0, hL: 0, cL: 0 };
    findBestSplit(ctx, hists[node]!, sumG[node]!, sumH[node]!, end[node]! - start[node]!, choice);
    if (choice.feature >= 0 && choice.gain > 0) {
      splits[node] = choice;
      candidates.push(node);
    }
  };
  const release = (node: number): void => {
    const hst = hists[node];
    if (hst) ctx.pool.push(hst);
    hists[node] = null;
  };

  if (splittable(0) && maxLeaves > 1) {
    const hst = acquire(ctx);
    const pending = buildHistogram(ctx, hst, gOff, 0, n);
    if (pending) await pending;
    hists[0] = hst;
    evaluate(0);
  }

  let nLeaves = 1;
  while (candidates.length > 0 && nLeaves < maxLeaves) {
    let bi = 0;
    for (let c = 1; c < candidates.length; c++) {
      if (splits[candidates[c]!]!.gain > splits[candidates[bi]!]!.gain) bi = c;
    }
    const node = candidates[bi]!;
    candidates.splice(bi, 1);
    const sp = splits[node]!;
    const f = sp.feature;
    const tb = sp.bin;
    const ml = sp.missLeft;
    feature[node] = f;
    thrBin[node] = tb;
    missLeft[node] = ml;

    // Stable partition of the node's rows (large nodes on every thread).
    const s = start[node]!;
    const e = end[node]!;
    const col = f * n;
    const missingBin = nBins[f]!;
    const goLeft = ctx.goLeft;
    for (let b = 0; b < missingBin; b++) goLeft[b] = b <= tb ? 1 : 0;
    goLeft[missingBin] = ml;
    let l: number;
    if (ctx.workers !== null && e - s >= MIN_PARALLEL_PARTITION) l = s + (await ctx.workers.partition(ctx, col, s, e));
    else {
      l = s + partitionRows(ctx, col, s, e);
      order.set(tmp.subarray(s, s + e - l), l);
    }

    // Children are numbered consecutively (addTreeScores counts on it).
    const lc = nodeCount++;
    const rc = nodeCount++;
    left[node] = lc;
    right[node] = rc;
    start[lc] = s;
    end[lc] = l;
    start[rc] = l;
    end[rc] = e;
    depth[lc] = depth[node]! + 1;
    depth[rc] = depth[node]! + 1;
    sumG[lc] = sp.gL;
    sumH[lc] = sp.hL;
    sumG[rc] = sumG[node]! - sp.gL;
    sumH[rc] = sumH[node]! - sp.hL;
    cover[lc] = l - s;
    cover[rc] = e - l;
    nLeaves++;

    if (nLeaves >= maxLeaves) {
      release(node);
      break;
    }
    const needL = splittable(lc);
    const needR = splittable(rc);
    if (!needL && !needR) {
      release(node);
      continue;
    }
    const small = l - s <= e - l ? lc : rc;
    const large = small === lc ? rc : lc;
    const hs = acquire(ctx);
    const pending = buildHistogram(ctx, hs, gOff, start[small]!, end[small]!);
    if (pending) await pending;
    hists[small] = hs;
    const needLarge = large === lc ? needL : needR;
    if (needLarge) {
      // Subtraction trick: the parent's buffer becomes the larger child's histogram.
      const hp = hists[node]!;
      subtractHistogram(ctx, hp, hs);
      hists[large] = hp;
      hists[node] = null;
      evaluate(large);
    } else release(node);
    if (small === lc ? needL : needR) evaluate(small);
    else release(small);
  }
  for (let node = 0; node < nodeCount; node++) {
    release(node);
    value[node] = (-lr * sumG[node]!) / (sumH[node]! + l2);
  }
  return { nodeCount, feature, thrBin, left, right, missLeft, value, cover, start, end };
}

/** `out[i] = i` for `i < n`. */
function fillIdentity(out: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = i;
}

/** Exported shape of a grown tree, writing its values into output `k` of `K`. */
function toTree(grown: GrownTree, mapper: BinMapper, k: number, K: number): Tree {
  const m = grown.nodeCount;
  const feature = new Int32Array(m);
  const threshold = new Float64Array(m);
  const value = new Float64Array(m * K);
  for (let node = 0; node < m; node++) {
    value[node * K + k] = grown.value[node]!;
    if (grown.left[node]! === -1) continue;
    const f = grown.feature[node]!;
    const edges = mapper.edges[f]!;
    const b = grown.thrBin[node]!;
    feature[node] = f;
    threshold[node] = b < edges.length ? edges[b]! : FLOAT32_MAX;
  }
  return {
    feature,
    threshold,
    left: grown.left.slice(0, m),
    right: grown.right.slice(0, m),
    missingGoesLeft: grown.missLeft.slice(0, m),
    value,
    cover: grown.cover.slice(0, m),
  };
}

/** Copies column-major bins (`bins[f * n + i]`) into `out` row-major (`out[i * p + f]`); returns `out`. */
function toRowMajor(bins: Uint8Array, n: number, p: number, out: Uint8Array): Uint8Array {
  // A block of rows at a time, so that its rows' lines stay in cache while every column is read.
  const block = 4096;
  for (let i0 = 0; i0 < n; i0 += block) {
    const i1 = Math.min(n, i0 + block);
    for (let f = 0; f < p; f++) {
      const col = f * n;
      for (let i = i0; i < i1; i++) out[i * p + f] = bins[col + i]!;
    }
  }
  return out;
}

/**
 * Validation rows in the kernel memory: their row-major bins (one row's path through a tree then
 * reads one cache line), their raw scores, and a copy of the tree being added.
 */
interface ValidationScores {
  readonly rowBins: Uint8Array;
  readonly rows: number;
  readonly raw: Float64Array;
  readonly nBins: Int32Array;
  readonly feature: Int32Array;
  readonly thrBin: Int32Array;
  readonly left: Int32Array;
  readonly missLeft: Uint8Array;
  readonly value: Float64Array;
}

/** Adds a grown tree's leaf values to the validation rows' scores (output `k` of `K`), in a kernel loop. */
function addTreeToValidation(memory: SharedMemory, val: ValidationScores, grown: GrownTree, p: number, k: number, K: number): void {
  const m = grown.nodeCount;
  val.feature.set(grown.feature.subarray(0, m));
  val.thrBin.set(grown.thrBin.subarray(0, m));
  val.left.set(grown.left.subarray(0, m));
  val.missLeft.set(grown.missLeft.subarray(0, m));
  val.value.set(grown.value.subarray(0, m));
  const F64 = Float64Array.BYTES_PER_ELEMENT;
  wasmKernels(memory).addTreeScores(
    val.rowBins.byteOffset,
    p,
    val.rows,
    val.nBins.byteOffset,
    val.feature.byteOffset,
    val.thrBin.byteOffset,
    val.left.byteOffset,
    val.missLeft.byteOffset,
    val.value.byteOffset,
    val.raw.byteOffset + k * F64,
    K * F64,
  );
}

/** Mean loss (scikit-learn's half losses) of raw scores `raw` (rows x K) against `y`. */
function meanLoss(kind: LossKind, y: Float64Array, raw: Float64Array, K: number): number {
  const n = y.length;
  let s = 0;
  if (kind === 'squared_error') {
    for (let i = 0; i < n; i++) {
      const d = raw[i]! - y[i]!;
      s += 0.5 * d * d;
    }
  } else if (kind === 'binary') {
    for (let i = 0; i < n; i++) {
      const z = raw[i]!;
      // log(1 + e^z) - y z, computed without overflow.
      s += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - y[i]! * z;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = i * K;
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, raw[o + k]!);
      let se = 0;
      for (let k = 0; k < K; k++) se += Math.exp(raw[o + k]! - mx);
      s += mx + Math.log(se) - raw[o + y[i]!]!;
    }
  }
  return s / n;
}

/**
 * Gradients and hessians of the loss at `raw`, class-major (`g[k * n + i]`), and their sums per
 * output (`sums[2k]`, `sums[2k + 1]`), each added in row order. For the squared error the hessians
 * are all 1 (`h` holds them from the start and is not written) and the gradients come from a kernel
 * loop (`raw`, `y` and `g` in `memory`).
 */
function computeGradients(
  kind: LossKind,
  y: Float64Array,
  raw: Float64Array,
  K: number,
  g: Float64Array,
  h: Float64Array,
  sums: Float64Array,
  memory: SharedMemory,
): void {
  const n = y.length;
  if (kind === 'squared_error') {
    sums[0] = wasmKernels(memory).squaredErrorGradients(raw.byteOffset, y.byteOffset, g.byteOffset, n);
    sums[1] = n;
  } else if (kind === 'binary') {
    let G = 0;
    let H = 0;
    for (let i = 0; i < n; i++) {
      const pr = 1 / (1 + Math.exp(-raw[i]!));
      const gi = pr - y[i]!;
      const hi = pr * (1 - pr);
      g[i] = gi;
      h[i] = hi;
      G += gi;
      H += hi;
    }
    sums[0] = G;
    sums[1] = H;
  } else {
    const ex = new Float64Array(K);
    sums.fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * K;
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, raw[o + k]!);
      let se = 0;
      for (let k = 0; k < K; k++) {
        ex[k] = Math.exp(raw[o + k]! - mx);
        se += ex[k]!;
      }
      const yi = y[i]!;
      for (let k = 0; k < K; k++) {
        const pr = ex[k]! / se;
        const gi = pr - (yi === k ? 1 : 0);
        const hi = pr * (1 - pr);
        g[k * n + i] = gi;
        h[k * n + i] = hi;
        sums[2 * k]! += gi;
        sums[2 * k + 1]! += hi;
      }
    }
  }
}

/** scikit-learn's baseline raw prediction: mean, log-odds, or centred log class priors. */
function baseline(kind: LossKind, y: Float64Array, K: number): Float64Array {
  const n = y.length;
  const eps = 2.220446049250313e-16;
  const out = new Float64Array(K);
  if (kind === 'squared_error') {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i]!;
    out[0] = s / n;
  } else if (kind === 'binary') {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i]!;
    const pr = Math.min(Math.max(s / n, eps), 1 - eps);
    out[0] = Math.log(pr / (1 - pr));
  } else {
    const counts = new Float64Array(K);
    for (let i = 0; i < n; i++) counts[y[i]!]!++;
    let meanLog = 0;
    for (let k = 0; k < K; k++) {
      out[k] = Math.log(Math.min(Math.max(counts[k]! / n, eps), 1 - eps));
      meanLog += out[k]! / K;
    }
    for (let k = 0; k < K; k++) out[k]! -= meanLog;
  }
  return out;
}

/** scikit-learn's early-stopping rule over validation scores (higher is better). */
function shouldStop(scores: readonly number[], nIterNoChange: number, tol: number): boolean {
  const ref = nIterNoChange + 1;
  if (scores.length < ref) return false;
  const referenceScore = scores[scores.length - ref]! + tol;
  for (let t = scores.length - ref + 1; t < scores.length; t++) if (scores[t]! > referenceScore) return false;
  return true;
}

function take(y: Float64Array, idx: Int32Array, out: Float64Array = new Float64Array(idx.length)): Float64Array {
  for (let t = 0; t < idx.length; t++) out[t] = y[idx[t]!]!;
  return out;
}

/**
 * Fits a histogram gradient-boosted tree ensemble. Regression: squared error. Classification:
 * binary log-loss (one output, `postTransform: 'logistic'`) for two classes, multinomial log-loss
 * (one tree per class per iteration, `softmax`) for more; each multiclass tree carries its values
 * in its own class's output and zeros elsewhere.
 *
 * With `n_jobs` > 1 and at least `parallel_threshold` training rows x features, large nodes'
 * histograms and partitions, and each tree's additions to the training scores, are shared with
 * worker threads (see {@link GrowWorkers}), which end with the fit, however it ends; the model is
 * the same to the bit whatever the number of threads. The last progress report then says what
 * share of the histogram units the workers built.
 *
 * The innermost loops (binning, histograms, partitions, scores, gradients of the squared error)
 * are WebAssembly (`wasm-kernels.ts`) over one shared memory per fit that holds the arrays they
 * read.
 *
 * Progress is reported after every iteration. Between trees the fit yields to the event loop now
 * and then (see `pace.ts`), so a cancellation message reaches the thread; an aborted `signal` or an
 * exception from `onProgress` stops it.
 */
export async function fitGradientBoosting(
  data: TrainingData,
  params: GradientBoostingParams = {},
  onProgress?: ProgressFn,
  signal?: AbortSignal,
): Promise<TreeEnsembleModel> {
  validateTrainingData(data);
  const isCls = data.task === 'classification';
  if (isCls && data.nClasses < 2) throw new RangeError('gradient boosting classification needs at least two classes');
  const kind: LossKind = !isCls ? 'squared_error' : data.nClasses === 2 ? 'binary' : 'multinomial';
  const K = kind === 'multinomial' ? data.nClasses : 1;
  const lr = params.learning_rate ?? 0.1;
  const maxIter = params.max_iter ?? 100;
  const maxLeafParam = params.max_leaf_nodes === undefined ? 31 : params.max_leaf_nodes;
  const maxDepthParam = params.max_depth ?? null;
  const minLeaf = params.min_samples_leaf ?? 20;
  const l2 = params.l2_regularization ?? 0;
  const maxBins = params.max_bins ?? 255;
  const nIterNoChange = params.n_iter_no_change ?? 10;
  const tol = params.tol ?? 1e-7;
  const seed = params.seed ?? 0;
  if (!(lr > 0)) throw new RangeError(`invalid learning_rate: ${lr}`);
  if (!(Number.isInteger(maxIter) && maxIter >= 1)) throw new RangeError(`invalid max_iter: ${maxIter}`);
  if (maxLeafParam !== null && !(Number.isInteger(maxLeafParam) && maxLeafParam >= 2)) throw new RangeError(`invalid max_leaf_nodes: ${maxLeafParam}`);
  if (maxDepthParam !== null && !(Number.isInteger(maxDepthParam) && maxDepthParam >= 1)) throw new RangeError(`invalid max_depth: ${maxDepthParam}`);
  if (!(Number.isInteger(minLeaf) && minLeaf >= 1)) throw new RangeError(`invalid min_samples_leaf: ${minLeaf}`);
  if (!(l2 >= 0)) throw new RangeError(`invalid l2_regularization: ${l2}`);
  if (!(Number.isInteger(nIterNoChange) && nIterNoChange >= 1)) throw new RangeError(`invalid n_iter_no_change: ${nIterNoChange}`);

  const n = data.x.rows;
  const p = data.x.cols;
  const xcol = toColumnMajorF32(data.x);
  const es = params.early_stopping === undefined || params.early_stopping === 'auto' ? n > 10000 : params.early_stopping;
  let trainIdx: Int32Array;
  let valIdx: Int32Array | null = null;
  if (es) {
    const split = trainTestSplit(n, { testSize: params.validation_fraction ?? 0.1, seed, stratify: isCls ? data.y : undefined });
    trainIdx = split.train;
    valIdx = split.test;
  } else {
    trainIdx = new Int32Array(n);
    for (let i = 0; i < n; i++) trainIdx[i] = i;
  }
  const nT = trainIdx.length;
  // Worker threads help when the data is large enough to pay for starting them.
  const threads = Math.min(resolveJobs(params.n_jobs), p);
  const parallel = threads > 1 && p <= MAX_UNITS && nT * p >= (params.parallel_threshold ?? DEFAULT_PARALLEL_THRESHOLD);
  const workers = parallel ? new GrowWorkers(threads - 1) : null;
  let arena: KernelMemory | null = null;
  try {
    // The bin edges are learnt from a random subsample when the data is large (as scikit-learn does).
    let binRows = trainIdx;
    if (nT > 200000) {
      binRows = trainIdx.slice();
      createRng(seed).shuffleInPlace(binRows);
    }
    const mapper = fitBinMapper(xcol, n, p, binRows, maxBins);
    let maxBinsUsed = 0;
    for (let f = 0; f < p; f++) maxBinsUsed = Math.max(maxBinsUsed, mapper.nBins[f]! + 1);
    const featureSlots = maxBinsUsed * HIST_STRIDE;
    const histSize = p * featureSlots;
    const histOffset = Int32Array.from({ length: p }, (_, f) => f * featureSlots);
    const chunkHistsLength = (histogramChunks(nT) - 1) * histSize;
    // Room for the arrays below and a few histograms; more histograms grow it.
    arena = new KernelMemory(
      KernelMemory.size([[1, nT * p], [1, nT * p], [8, nT], [8, nT * K], [8, nT * K], [8, nT * K], [4, nT], [4, nT], [1, 256], [8, chunkHistsLength], [8, 4 * histSize]]),
    );
    const bins = applyBinMapper(mapper, xcol, n, trainIdx, arena.uint8(nT * p)).bins;
    const valBins = valIdx ? applyBinMapper(mapper, xcol, n, valIdx).bins : null;
    const nV = valIdx?.length ?? 0;
    const cap = 2 * Math.min(maxLeafParam ?? Infinity, nT) + 1;
    const val: ValidationScores | null = valBins
      ? {
          rowBins: toRowMajor(valBins, nV, p, arena.uint8(nV * p)),
          rows: nV,
          raw: arena.float64(nV * K),
          nBins: arena.int32(p),
          feature: arena.int32(cap),
          thrBin: arena.int32(cap),
          left: arena.int32(cap),
          missLeft: arena.uint8(cap),
          value: arena.float64(cap),
        }
      : null;
    val?.nBins.set(mapper.nBins);
    const yT = take(data.y, trainIdx, arena.float64(nT));
    const yV = valIdx ? take(data.y, valIdx) : null;

    const base = baseline(kind, yT, K);
    const raw = arena.float64(nT * K);
    for (let i = 0; i < nT; i++) for (let k = 0; k < K; k++) raw[i * K + k] = base[k]!;
    const rawV = val?.raw ?? null;
    if (rawV && yV) for (let i = 0; i < yV.length; i++) for (let k = 0; k < K; k++) rawV[i * K + k] = base[k]!;

    const rootCounts = sharedFloat64(histSize, workers !== null);
    for (let f = 0; f < p; f++) {
      const hb = histOffset[f]! + 2;
      const col = f * nT;
      for (let i = 0; i < nT; i++) rootCounts[hb + bins[col + i]! * HIST_STRIDE]!++;
    }
    // A tree has at most this many leaves.
    const leafCap = Math.min(maxLeafParam ?? Infinity, nT);
    const ctx: GrowContext = {
      memory: arena.memory,
      arena,
      bins,
      rowBins: toRowMajor(bins, nT, p, arena.uint8(nT * p)),
      n: nT,
      p,
      nBins: mapper.nBins,
      histOffset,
      featureSlots,
      histSize,
      mapper,
      maxLeaves: maxLeafParam ?? Infinity,
      maxDepth: maxDepthParam ?? Infinity,
      minLeaf,
      l2,
      lr,
      constHess: kind === 'squared_error',
      pool: [],
      order: arena.int32(nT),
      tmp: arena.int32(nT),
      rootCounts,
      raw,
      outputs: K,
      leafStart: workers !== null ? new Int32Array(new SharedArrayBuffer(leafCap * Int32Array.BYTES_PER_ELEMENT)) : new Int32Array(leafCap),
      leafEnd: workers !== null ? new Int32Array(new SharedArrayBuffer(leafCap * Int32Array.BYTES_PER_ELEMENT)) : new Int32Array(leafCap),
      leafValue: sharedFloat64(leafCap, workers !== null),
      goLeft: arena.uint8(256),
      chunkLeft: workers !== null ? new Int32Array(new SharedArrayBuffer(Math.ceil(nT / PARTITION_CHUNK) * Int32Array.BYTES_PER_ELEMENT)) : new Int32Array(0),
      chunkStart: workers !== null ? new Int32Array(new SharedArrayBuffer(Math.ceil(nT / PARTITION_CHUNK) * Int32Array.BYTES_PER_ELEMENT)) : new Int32Array(0),
      tmpLeft: arena.int32(workers !== null ? nT : 0),
      g: arena.float64(nT * K),
      h: arena.float64(nT * K),
      chunkHists: arena.float64(chunkHistsLength),
      workers,
    };
    const { g, h } = ctx;
    // Constant hessians: written once (computeGradients leaves them).
    if (ctx.constHess) h.fill(1);
    workers?.init({
      memory: ctx.memory,
      bins: ctx.bins,
      rowBins: ctx.rowBins,
      n: nT,
      p,
      histOffset,
      featureSlots,
      histSize,
      constHess: ctx.constHess,
      g,
      h,
      order: ctx.order,
      chunkHists: ctx.chunkHists,
      tmp: ctx.tmp,
      goLeft: ctx.goLeft,
      chunkLeft: ctx.chunkLeft,
      chunkStart: ctx.chunkStart,
      tmpLeft: ctx.tmpLeft,
      rootCounts: ctx.rootCounts,
      raw,
      outputs: K,
      leafStart: ctx.leafStart,
      leafEnd: ctx.leafEnd,
      leafValue: ctx.leafValue,
    });
    const trees: Tree[] = [];
    const scores: number[] = [];
    if (rawV && yV) scores.push(-meanLoss(kind, yV, rawV, K));
    onProgress?.(0, `boosting up to ${maxIter} iterations${workers !== null ? ` (histograms on ${threads} threads)` : ''}`);
    await workers?.ready();
    const pacer = new Pacer();
    const gradSums = new Float64Array(2 * K);

    for (let iter = 0; iter < maxIter; iter++) {
      computeGradients(kind, yT, raw, K, g, h, gradSums, arena.memory);
      for (let k = 0; k < K; k++) {
        const grown = await growTree(ctx, k, gradSums[2 * k]!, gradSums[2 * k + 1]!);
        await addTreeToScores(ctx, grown, k);
        if (val) addTreeToValidation(arena.memory, val, grown, p, k, K);
        trees.push(toTree(grown, mapper, k, K));
        await pacer.pause();
        throwIfAborted(signal);
      }
      let stop = false;
      if (rawV && yV) {
        scores.push(-meanLoss(kind, yV, rawV, K));
        stop = shouldStop(scores, nIterNoChange, tol);
      }
      onProgress?.((iter + 1) / maxIter, `iteration ${iter + 1}/${maxIter}`);
      if (stop) {
        onProgress?.(1, `early stopping after ${iter + 1} iterations`);
        break;
      }
    }
    if (workers !== null) onProgress?.(1, `${Math.round(100 * workers.workerShare())}% of the histogram units built on worker threads`);

    return {
      kind: 'trees',
      task: data.task,
      nFeatures: p,
      nOutputs: K,
      nClasses: isCls ? data.nClasses : 0,
      trees,
      baseValues: base,
      aggregate: 'sum',
      postTransform: kind === 'squared_error' ? 'none' : kind === 'binary' ? 'logistic' : 'softmax',
    };
  } finally {
    await workers?.close();
    // After the workers end: nothing uses the kernel memory any more.
    arena?.release();
  }
}
