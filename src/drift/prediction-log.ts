/**
 * The prediction log: every sampled answered prediction (inputs, outputs, model and version,
 * latency, request id, time), one store row per predicted row.
 *
 * The request path only pushes one entry onto an in-memory buffer (after copying the input rows,
 * whose buffer goes back to the model); a timer turns entries into rows and writes them in
 * multi-row INSERTs off the request path. The buffer is bounded in rows: when the store is slow
 * or down, the oldest entries are dropped and counted (`prediction_log_dropped_total`) rather
 * than letting memory grow or failing requests. Retention by age and row count runs on its own
 * timer.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../platform/metrics.ts';
import type { LoadedModel } from '../serving/loaded-model.ts';
import { rowJson } from '../serving/loaded-model.ts';
import type { PredictionSink, ServedAnswer, ServedKind } from '../serving/prediction.service.ts';
import type { FloatRows } from '../serving/runtime.ts';
import type { Store } from '../store/database.ts';
import { deleteOlderThan, insertPredictions, keepNewest, upsertSchema, type NewPredictionLogRow } from './drift.repository.ts';
import { encodeRow, schemaOf } from './log-codec.ts';

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
  /** Period of retention. Default 5 minutes. */
  readonly retentionMs?: number;
}

interface Entry {
  readonly model: LoadedModel;
  readonly input: FloatRows;
  readonly rows: number;
  readonly answer: ServedAnswer;
  readonly kind: ServedKind;
  readonly requestId: string | undefined;
  readonly at: number;
  readonly latencyMs: number;
}

export class PredictionLog implements PredictionSink {
  private pending: Entry[] = [];
  private pendingRows = 0;
  private writing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private failing = false;
  /** Models whose schema row is in the store (written once per loaded model). */
  private readonly described = new WeakSet<LoadedModel>();
  private readonly store: Store;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly options: PredictionLogOptions;

  constructor(deps: { store: Store; metrics: Metrics; log: Logger }, options: PredictionLogOptions) {
    this.store = deps.store;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
  }

  /** Rows waiting in memory. */
  get bufferedRows(): number {
    return this.pendingRows;
  }

  /** Request path: samples, copies the rows and pushes one entry. No I/O. */
  record(model: LoadedModel, input: FloatRows, rows: number, answer: ServedAnswer, kind: ServedKind, requestId: string | undefined, t0: number): void {
    const rate = this.options.sampleRate;
    if (rate < 1 && (rate === 0 || Math.random() >= rate)) return;
    const latencyMs = performance.now() - t0;
    this.pending.push({ model, input: input.slice(0, rows * model.nFeatures), rows, answer, kind, requestId, at: Date.now(), latencyMs });
    this.pendingRows += rows;
    if (this.pendingRows > this.options.bufferRows) this.dropOldest();
  }

  /** Starts the writer and retention timers. */
  start(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setInterval(() => void this.flush(), this.options.flushMs ?? 250);
    this.flushTimer.unref();
    if (this.options.retentionDays > 0 || this.options.maxRows > 0) {
      this.retentionTimer = setInterval(() => void this.enforceRetention(), this.options.retentionMs ?? 5 * 60_000);
      this.retentionTimer.unref();
      void this.enforceRetention();
    }
  }

  /** Stops the timers and writes what is buffered (one last try). */
  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    this.flushTimer = undefined;
    this.retentionTimer = undefined;
    await this.flush();
  }

  /**
   * Writes every buffered entry; resolves when written (or failed: the entries go back to the
   * front of the buffer, where the bound may drop them). One write at a time: a call during a
   * write waits for it and then writes what came meanwhile.
   */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
    if (this.pending.length === 0) return;
    const taken = this.pending;
    const takenRows = this.pendingRows;
    this.pending = [];
    this.pendingRows = 0;
    this.writing = this.write(taken, takenRows).finally(() => {
      this.writing = undefined;
    });
    await this.writing;
  }

  private async write(entries: Entry[], rows: number): Promise<void> {
    try {
      await this.describe(entries);
      await insertPredictions(this.store.db, this.toRows(entries), this.store.dialect);
      this.metrics.predictionLogWritten.inc(rows);
      if (this.failing) this.log.info('prediction log: writing again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'prediction log: the store refused a write; rows stay buffered (oldest dropped beyond PREDICTION_LOG_BUFFER_ROWS)');
      this.failing = true;
      this.pending = entries.concat(this.pending);
      this.pendingRows += rows;
      if (this.pendingRows > this.options.bufferRows) this.dropOldest();
    }
  }

  /** Drops whole entries from the old end until the buffer fits, counting their rows. */
  private dropOldest(): void {
    let k = 0;
    let dropped = 0;
    while (k < this.pending.length && this.pendingRows - dropped > this.options.bufferRows) dropped += this.pending[k++]!.rows;
    this.pending.splice(0, k);
    this.pendingRows -= dropped;
    this.metrics.predictionLogDropped.inc(dropped);
  }

  /** Deletes rows past the retention age and row count. */
  async enforceRetention(): Promise<void> {
    try {
      if (this.options.retentionDays > 0) await deleteOlderThan(this.store.db, Date.now() - this.options.retentionDays * 86_400_000);
      if (this.options.maxRows > 0) await keepNewest(this.store.db, this.options.maxRows);
    } catch (err) {
      this.log.warn({ err }, 'prediction log: retention failed; retried at the next period');
    }
  }

  /** Writes the schema rows of models not described yet. */
  private async describe(entries: readonly Entry[]): Promise<void> {
    for (const e of entries) {
      if (this.described.has(e.model)) continue;
      await upsertSchema(this.store.db, { model: e.model.identity.name, version: e.model.identity.version, ...schemaOf(e.model) });
      this.described.add(e.model);
    }
  }

  /** Store rows of the entries, one per predicted row. */
  private toRows(entries: readonly Entry[]): NewPredictionLogRow[] {
    const out: NewPredictionLogRow[] = [];
    for (const e of entries) {
      const { model, input, rows, answer } = e;
      const f = model.nFeatures;
      const latency = Math.round(e.latencyMs * 1000) / 1000;
      for (let r = 0; r < rows; r++) {
        const fragment = fragmentOf(model, answer, r);
        out.push({
          at: e.at,
          model: model.identity.name,
          version: model.identity.version,
          request_id: e.requestId ?? null,
          kind: e.kind,
          latency_ms: latency,
          inputs: encodeRow(input, r, f),
          output: `{${fragment}}`,
        });
      }
    }
    return out;
  }
}

const isFragments = (a: ServedAnswer): a is readonly string[] => Array.isArray(a);

/** Row `r`'s answer fields as JSON text (without braces). */
function fragmentOf(model: LoadedModel, answer: ServedAnswer, r: number): string {
  if (typeof answer === 'string') return answer;
  if (isFragments(answer)) return answer[r]!;
  return rowJson(model, answer.outputs, answer.offset + r);
}
