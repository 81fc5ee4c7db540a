/**
 * The prediction log: every sampled answered prediction (inputs, outputs, model and version,
 * latency, request id, time), stored as a block of rows per (model, version) per flush
 * (`log-block.ts`).
 *
 * The request path only appends the rows to typed arrays (`log-batch.ts`: the input values, the
 * answer's JSON as UTF-8, a few numbers; no object or string kept per row) and never waits for the
 * store. A timer packs what was appended into blocks and hands them to the writer (`log-writer.ts`:
 * one transaction on the store's connection). The buffer is bounded in rows: when the store is
 * slow or down, the oldest rows are dropped and counted (`prediction_log_dropped_total`) rather
 * than letting memory grow or failing requests. Retention by age and row count runs on its own
 * timer (with rows left in the table before blocks by a previous version moved into blocks).
 */
import type { Logger } from 'pino';
import type { Metrics } from '../platform/metrics.ts';
import type { LoadedModel } from '../serving/loaded-model.ts';
import { rowJson } from '../serving/loaded-model.ts';
import type { PredictionSink, ServedAnswer, ServedKind } from '../serving/prediction.service.ts';
import type { FloatRows } from '../serving/runtime.ts';
import type { Store } from '../store/database.ts';
import { blocksAcross, claimSlot, countEdge, deleteBlocksBefore, deleteBlocksBelow, findBlock, trimBlock, upsertSchema } from './drift.repository.ts';
import { LogRows } from './log-batch.ts';
import { LogBlock, type EncodedBlock } from './log-block.ts';
import { schemaOf } from './log-codec.ts';
import { foldLegacyRows } from './log-legacy.ts';
import { StoreLogWriter, type LogWriter } from './log-writer.ts';

export interface PredictionLogOptions {
  /** Share of answered requests logged (`PREDICTION_LOG_SAMPLE_RATE`). */
  readonly sampleRate: number;
  /** Most rows held in memory (`PREDICTION_LOG_BUFFER_ROWS`). */
  readonly bufferRows: number;
  /** Days rows are kept; 0 = regardless of age. */
  readonly retentionDays: number;
  /** Most rows kept; 0 = no limit. */
  readonly maxRows: number;
  /** Period of the writer. Default 250 ms. */
  readonly flushMs?: number;
  /** Period of retention (and of moving rows a previous version left in the old table). Default 5 minutes. */
  readonly retentionMs?: number;
}

/** Default period of retention. */
const RETENTION_MS = 5 * 60_000;

export class PredictionLog implements PredictionSink {
  /** Rows appended since the last flush. */
  private current: LogRows;
  /** Rows of flushes the store refused, oldest first: written again before `current`. */
  private failed: LogRows[] = [];
  /**
   * Buffers of a flush that was written, emptied for the next one: allocating fresh ones at
   * every flush (megabytes outside the JavaScript heap) made V8 run a full collection about once
   * a second under load.
   */
  private spare: LogRows | undefined;
  private writing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private failing = false;
  /** When the write in progress began (`performance.now()`), for the drop warning. */
  private writeStartedAt: number | undefined;
  /** Rows were dropped since the last successful write (warned once per such episode). */
  private dropping = false;
  /** Model name and version of each label (`2k`, `2k + 1`), and each loaded model's label. */
  private readonly labels: string[] = [];
  private readonly labelOf = new WeakMap<LoadedModel, number>();
  /** Models seen since the last flush whose schema row is not written yet. */
  private undescribed: LoadedModel[] = [];
  private readonly store: Store;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly options: PredictionLogOptions;
  private readonly writer: LogWriter;
  private readonly now: () => number;

  /**
   * @param deps.writer where rows go; default: the store's own connection
   * @param deps.now the clock of retention (ms since the epoch); default `Date.now`
   */
  constructor(deps: { store: Store; metrics: Metrics; log: Logger; writer?: LogWriter; now?: () => number }, options: PredictionLogOptions) {
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
    this.writer = deps.writer ?? new StoreLogWriter(deps.store);
    this.current = new LogRows(256);
  }

  /** Rows waiting in memory. */
  get bufferedRows(): number {
    let rows = this.current.rows;
    for (const f of this.failed) rows += f.rows;
    return rows;
  }

  /** Request path: samples and appends the rows (copies of the inputs, the answers as JSON). No I/O. */
  record(model: LoadedModel, input: FloatRows, rows: number, answer: ServedAnswer, kind: ServedKind, requestId: string | undefined, t0: number): void {
    const rate = this.options.sampleRate;
    if (rate < 1 && (rate === 0 || Math.random() >= rate)) return;
    const latencyMs = Math.round((performance.now() - t0) * 1000) / 1000;
    const at = Date.now();
    let label = this.labelOf.get(model);
    if (label === undefined) {
      label = this.labels.length / 2;
      this.labels.push(model.identity.name, model.identity.version);
      this.labelOf.set(model, label);
      this.undescribed.push(model);
    }
    const f = model.nFeatures;
    for (let r = 0; r < rows; r++) this.current.append(label, kind, at, latencyMs, requestId ?? null, fragmentOf(model, answer, r), input, r * f, f);
    if (this.bufferedRows > this.options.bufferRows) this.dropOldest();
  }

  /** Starts the writer and retention timers. */
  start(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setInterval(() => void this.flush(), this.options.flushMs ?? 250);
    this.flushTimer.unref();
    // Always: besides retention, the run moves rows an older version's replica wrote into blocks.
    this.retentionTimer = setInterval(() => void this.enforceRetention(), this.options.retentionMs ?? RETENTION_MS);
    this.retentionTimer.unref();
    void this.enforceRetention();
  }

  /** Stops the timers, writes what is buffered (one last try) and releases the writer. */
  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    this.flushTimer = undefined;
    this.retentionTimer = undefined;
    try {
      await this.flush();
    } finally {
      await this.writer.close();
    }
  }

  /**
   * Writes every buffered row; resolves when written (or failed: the rows stay buffered, where
   * the bound may drop them). One write at a time: a call during a write waits for it and then
   * writes what came meanwhile.
   */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
    if (this.bufferedRows === 0) return;
    const taken = this.failed;
    const fresh = this.current;
    if (fresh.rows > 0) taken.push(fresh);
    this.failed = [];
    // Room for about as many rows as this flush had, so the next one rarely grows.
    this.current = this.spare ?? new LogRows(fresh.rows);
    this.spare = undefined;
    this.writeStartedAt = performance.now();
    this.writing = this.write(taken).finally(() => {
      this.writing = undefined;
      this.writeStartedAt = undefined;
    });
    await this.writing;
  }

  /** Writes the buffers in order; the first one refused and those after it go back to the buffer. */
  private async write(taken: LogRows[]): Promise<void> {
    let k = 0;
    try {
      await this.describe();
      for (; k < taken.length; k++) {
        const rows = taken[k]!;
        const blocks = this.pack(rows);
        if (blocks !== undefined) {
          await this.writer.write(blocks);
          this.metrics.predictionLogWritten.inc(rows.rows);
        }
        rows.clear();
        this.spare = rows;
      }
      if (this.failing) this.log.info('prediction log: writing again');
      this.failing = false;
      this.dropping = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'prediction log: the store refused a write; rows stay buffered (oldest dropped beyond PREDICTION_LOG_BUFFER_ROWS)');
      this.failing = true;
      this.failed = taken.slice(k).concat(this.failed);
      if (this.bufferedRows > this.options.bufferRows) this.dropOldest();
    }
  }

  /**
   * The rows as blocks; `undefined` when they cannot be packed. That is a defect, not the store
   * refusing a write: kept for a retry, the same rows would fail every flush and hold back every
   * row after them until the bound dropped them. So they are dropped at once, counted and logged
   * as an error.
   */
  private pack(rows: LogRows): EncodedBlock[] | undefined {
    try {
      return rows.blocks(this.labels);
    } catch (err) {
      this.metrics.predictionLogDropped.inc(rows.rows);
      this.log.error({ err, dropped: rows.rows }, 'prediction log: buffered rows could not be packed into blocks; dropped (counted in prediction_log_dropped_total)');
      return undefined;
    }
  }

  /** Drops rows from the old end until the buffer fits, counting them. */
  private dropOldest(): void {
    let excess = this.bufferedRows - this.options.bufferRows;
    let dropped = 0;
    for (const rows of [...this.failed, this.current]) {
      if (excess <= 0) break;
      const k = rows.dropOldest(excess);
      excess -= k;
      dropped += k;
    }
    this.failed = this.failed.filter((rows) => rows.rows > 0);
    this.metrics.predictionLogDropped.inc(dropped);
    if (dropped > 0 && !this.dropping) {
      // Once until a write succeeds: what was waiting, and whether a write was stuck or failing.
      this.dropping = true;
      const writingForMs = this.writeStartedAt === undefined ? null : Math.round(performance.now() - this.writeStartedAt);
      this.log.warn(
        { dropped, bufferRows: this.options.bufferRows, failing: this.failing, writingForMs },
        'prediction log: buffer full, oldest rows dropped (counted in prediction_log_dropped_total; warned again after the next successful write)',
      );
    }
  }

  /**
   * Deletes rows past the retention age and beyond the row count, once per retention period
   * across the processes sharing the store (the first to claim the period does it; see
   * `claimSlot`); first moves rows an older version left in the table before blocks into blocks.
   *
   * Exact on both counts: blocks wholly past the age or wholly beyond the newest `maxRows` rows
   * are deleted, and the block across each edge is cut to the rows it keeps (rewritten; its
   * remaining rows keep their sequence numbers). A block's rows are in time order, so cutting its
   * older rows by age cuts a prefix.
   */
  async enforceRetention(): Promise<void> {
    try {
      const now = this.now();
      if (!(await claimSlot(this.store.db, 'prediction-log-retention', Math.floor(now / (this.options.retentionMs ?? RETENTION_MS)), now))) return;
      const moved = await foldLegacyRows(this.store.db, false);
      if (moved > 0) this.log.info({ rows: moved }, 'prediction log: moved rows of the table before blocks into blocks');
      if (this.options.retentionDays > 0) await this.trimByAge(now - this.options.retentionDays * 86_400_000);
      if (this.options.maxRows > 0) await this.trimByCount(this.options.maxRows);
    } catch (err) {
      this.log.warn({ err }, 'prediction log: retention failed; retried at the next period');
    }
  }

  private async trimByAge(before: number): Promise<void> {
    const db = this.store.db;
    await deleteBlocksBefore(db, before);
    for (const row of await blocksAcross(db, before)) {
      const block = new LogBlock(row.data);
      let from = 0;
      while (from < block.rows && block.at[from]! < before) from++;
      if (from === 0) continue;
      let firstAt = Infinity;
      for (let i = from; i < block.rows; i++) firstAt = Math.min(firstAt, block.at[i]!);
      await trimBlock(db, row, block.rows - from, firstAt, block.slice(from));
    }
  }

  private async trimByCount(keep: number): Promise<void> {
    const db = this.store.db;
    const edge = await countEdge(db, keep);
    if (edge === undefined) return;
    const { block: meta, kept } = edge;
    await deleteBlocksBelow(db, meta.first_seq + meta.row_count - kept);
    if (kept === 0) return;
    const row = await findBlock(db, meta.id);
    if (row === undefined || row.first_seq !== meta.first_seq) return;
    const block = new LogBlock(row.data);
    const from = block.rows - kept;
    let firstAt = Infinity;
    for (let i = from; i < block.rows; i++) firstAt = Math.min(firstAt, block.at[i]!);
    await trimBlock(db, meta, kept, firstAt, block.slice(from));
  }

  /** Writes the schema rows of models first seen since the last flush. */
  private async describe(): Promise<void> {
    while (this.undescribed.length > 0) {
      const model = this.undescribed[0]!;
      await upsertSchema(this.store.db, { model: model.identity.name, version: model.identity.version, ...schemaOf(model) });
      this.undescribed.shift();
    }
  }
}

const isFragments = (a: ServedAnswer): a is readonly string[] => Array.isArray(a);

/** Row `r`'s answer fields as JSON text (without braces). */
function fragmentOf(model: LoadedModel, answer: ServedAnswer, r: number): string {
  if (typeof answer === 'string') return answer;
  if (isFragments(answer)) return answer[r]!;
  return rowJson(model, answer.outputs, answer.offset + r);
}
