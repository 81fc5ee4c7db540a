/**
 * Micro-batching: concurrent requests for one model are packed into one `session.run`.
 *
 * The cost of a small tabular model is mostly onnxruntime's per-call overhead, not the arithmetic,
 * so answering 30 waiting requests with one call of 30 rows is close to 30 times cheaper than 30
 * calls. Policy (Triton's dynamic batcher): with `maxQueueDelayUs` 0 (the default) nothing waits on
 * purpose: when the runtime is free, whatever is queued goes in one call, up to `maxBatchRows`; while
 * a call runs, new requests queue up and form the next batch. With a delay, a batch smaller than
 * `maxBatchRows` is held until its oldest request has waited that long. The queue is bounded: past
 * `maxQueueRows` waiting rows a request is refused (the caller answers 503) instead of letting
 * latency and memory grow without limit.
 */
import type { FloatRows, RawOutputs } from './runtime.ts';

/** Where a request's rows ended up: the shared outputs and the first row that belongs to it. */
export interface BatchSlice {
  readonly outputs: RawOutputs;
  readonly offset: number;
}

export interface BatcherOptions {
  readonly nFeatures: number;
  readonly double: boolean;
  /** Most rows per run; a single request with more rows still runs alone. */
  readonly maxBatchRows: number;
  /** Most rows waiting; beyond it `submit` throws {@link QueueFullError}. */
  readonly maxQueueRows: number;
  /** Triton's `max_queue_delay_microseconds`; 0 = never wait on purpose. */
  readonly maxQueueDelayUs: number;
  /** Told the duration (seconds) and rows of every run. */
  readonly onRun?: (seconds: number, rows: number) => void;
}

/** The queue is full: the caller should answer 503 and the client retry. */
export class QueueFullError extends Error {
  constructor(readonly queuedRows: number) {
    super(`prediction queue is full (${queuedRows} rows waiting)`);
    this.name = 'QueueFullError';
  }
}

interface Pending {
  readonly input: FloatRows;
  readonly rows: number;
  readonly resolve: (slice: BatchSlice) => void;
  readonly reject: (err: unknown) => void;
  readonly at: number;
}

/**
 * Runs `rows` rows. The input is the runtime's only until the returned promise settles: the
 * batcher reuses the buffer of packed runs afterwards.
 */
type RunFn = (input: FloatRows, rows: number) => Promise<RawOutputs>;

/** Largest packed run whose buffer is kept for the next (4 MB of float64 values). */
const MAX_PACKED_VALUES = 1 << 19;

export class MicroBatcher {
  /** Waiting requests from `head` on; slots before `head` are already dispatched and cleared. */
  private queue: (Pending | undefined)[] = [];
  private head = 0;
  private queuedRows = 0;
  private running = false;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private runs = 0;
  private batchedRows = 0;
  /** See {@link packBuffer}. */
  private packed: FloatRows | undefined;

  constructor(
    private readonly runFn: RunFn,
    private readonly options: BatcherOptions,
  ) {}

  /** Rows waiting for the runtime now. */
  get waitingRows(): number {
    return this.queuedRows;
  }

  /** Runs so far and the mean rows per run (how well batching works). */
  stats(): { runs: number; mean_rows_per_run: number; queued_rows: number } {
    return { runs: this.runs, mean_rows_per_run: this.runs === 0 ? 0 : this.batchedRows / this.runs, queued_rows: this.queuedRows };
  }

  /** The batch size, queue bound and queue delay this batcher runs with. */
  settings(): { maxBatchRows: number; maxQueueRows: number; maxQueueDelayUs: number } {
    const { maxBatchRows, maxQueueRows, maxQueueDelayUs } = this.options;
    return { maxBatchRows, maxQueueRows, maxQueueDelayUs };
  }

  /** Whether `rows` more rows would be refused now (the queue holds rows and would pass `maxQueueRows`). */
  wouldOverflow(rows: number): boolean {
    return this.queuedRows > 0 && this.queuedRows + rows > this.options.maxQueueRows;
  }

  /**
   * Queues `rows` rows (`input` holds `rows * nFeatures` values) and resolves with the run's
   * outputs once they are computed.
   * @throws QueueFullError when the queue holds `maxQueueRows` rows already
   */
  submit(input: FloatRows, rows: number): Promise<BatchSlice> {
    if (this.wouldOverflow(rows)) return Promise.reject(new QueueFullError(this.queuedRows));
    return new Promise<BatchSlice>((resolve, reject) => {
      this.queue.push({ input, rows, resolve, reject, at: this.options.maxQueueDelayUs > 0 ? performance.now() : 0 });
      this.queuedRows += rows;
      if (!this.running) this.schedule();
    });
  }

  /** Decides whether to run now or wait for more requests (only with a queue delay). */
  private schedule(): void {
    if (this.running || this.queuedRows === 0) return;
    const delayUs = this.options.maxQueueDelayUs;
    if (delayUs <= 0 || this.queuedRows >= this.options.maxBatchRows) {
      this.clearTimer();
      this.dispatch();
      return;
    }
    const waitedUs = (performance.now() - this.queue[this.head]!.at) * 1000;
    if (waitedUs >= delayUs) {
      this.clearTimer();
      this.dispatch();
      return;
    }
    if (this.timer !== undefined) return;
    const leftMs = (delayUs - waitedUs) / 1000;
    // setTimeout cannot wait less than 1 ms; sub-millisecond delays poll once per loop turn.
    this.timer =
      leftMs >= 1
        ? setTimeout(() => {
            this.timer = undefined;
            this.schedule();
          }, leftMs)
        : setImmediate(() => {
            this.timer = undefined;
            this.schedule();
          });
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private dispatch(): void {
    const max = this.options.maxBatchRows;
    const start = this.head;
    let end = start;
    let rows = 0;
    while (end < this.queue.length) {
      const r = this.queue[end]!.rows;
      if (end > start && rows + r > max) break;
      rows += r;
      end++;
    }
    const batch = this.queue.slice(start, end) as Pending[];
    // Under steady load the queue never empties, so it is compacted only every 1024 requests: the
    // dispatched slots are cleared now, or up to 1024 answered requests' rows (120 KB off the JS
    // heap for a 1000-row batch) would stay reachable until then.
    this.queue.fill(undefined, start, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queuedRows -= rows;
    this.running = true;
    this.runs++;
    this.batchedRows += rows;

    let input: FloatRows;
    if (batch.length === 1) {
      input = batch[0]!.input;
    } else {
      const f = this.options.nFeatures;
      input = this.packBuffer(rows * f);
      let at = 0;
      for (const p of batch) {
        input.set(p.input.subarray(0, p.rows * f), at);
        at += p.rows * f;
      }
    }
    const t0 = performance.now();
    let promise: Promise<RawOutputs>;
    try {
      promise = this.runFn(input, rows);
    } catch (err) {
      promise = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    promise.then(
      (outputs) => {
        this.options.onRun?.((performance.now() - t0) / 1000, rows);
        let offset = 0;
        for (const p of batch) {
          p.resolve({ outputs, offset });
          offset += p.rows;
        }
        this.running = false;
        this.schedule();
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
        this.running = false;
        this.schedule();
      },
    );
  }

  /**
   * Where the rows of a run of several requests are packed. Runs go one at a time and the runtime
   * is done with its input when its promise settles, so one buffer, grown as needed, serves every
   * run (runs of more than {@link MAX_PACKED_VALUES} values get their own).
   */
  private packBuffer(values: number): FloatRows {
    const alloc = (n: number): FloatRows => (this.options.double ? new Float64Array(n) : new Float32Array(n));
    if (values > MAX_PACKED_VALUES) return alloc(values);
    let buffer = this.packed;
    if (buffer === undefined || buffer.length < values) {
      buffer = alloc(Math.min(MAX_PACKED_VALUES, Math.max(values, 2 * (buffer?.length ?? 0))));
      this.packed = buffer;
    }
    return buffer.length === values ? buffer : buffer.subarray(0, values);
  }

  /** Refuses everything still waiting (used when a model is released). */
  drain(reason: Error): void {
    this.clearTimer();
    for (let i = this.head; i < this.queue.length; i++) this.queue[i]!.reject(reason);
    this.queue = [];
    this.head = 0;
    this.queuedRows = 0;
  }
}
