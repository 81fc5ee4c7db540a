/**
 * Drift monitoring over the prediction log: the reference of a model version (its training
 * reference, or one computed from a dataset version), reports over windows of logged rows or
 * over rows given in a request, the periodic check that stores reports and sets the gauges, and
 * reads of the prediction log.
 */
import type { Logger } from 'pino';
import type { DatasetService } from '../datasets/dataset.service.ts';
import { findColumn } from '../datasets/table.ts';
import { AppError, badRequest, conflict, invalidField, notFound } from '../platform/errors.ts';
import type { Metrics } from '../platform/metrics.ts';
import type { Registry } from '../registry/registry.service.ts';
import type { Store } from '../store/database.ts';
import { categoricalReference, numericReference, REFERENCE_FORMAT, type FeatureReference } from '../training/pipeline-reference.ts';
import * as repo from './drift.repository.ts';
import { LogBlock } from './log-block.ts';
import { namedValues, parseSchema, windowMatrix, type LogSchema, type WindowRange } from './log-codec.ts';
import type { PredictionLog } from './prediction-log.ts';
import { compareFeatures, type DriftReference, type FeatureDrift, type LiveColumn } from './report.ts';

export interface DriftSettings {
  /** Seconds between periodic checks; 0 = none. */
  readonly checkIntervalSeconds: number;
  /** Default window (rows). */
  readonly window: number;
  /** Fewest rows a report needs. */
  readonly minWindow: number;
  /** Share of drifted features that makes dataset drift. */
  readonly shareThreshold: number;
}

export interface DriftDeps {
  readonly store: Store;
  readonly registry: Registry;
  readonly datasets: DatasetService;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly predictionLog: PredictionLog;
  readonly settings: DriftSettings;
  /** The clock (ms since the epoch). Default `Date.now`. */
  readonly now?: () => number;
}

/** Most rows a window may hold. */
export const MAX_WINDOW = 100_000;

export interface DriftReport {
  readonly model: string;
  readonly version: string;
  readonly computed_at: string;
  /** `ok`, or `not_enough_data` when the window holds fewer than `min_window` rows (no test is run then). */
  readonly status: 'ok' | 'not_enough_data';
  readonly message?: string;
  readonly window: { readonly rows?: number; readonly since?: string; readonly source: 'log' | 'request' };
  readonly current_rows: number;
  readonly reference_rows: number;
  readonly min_window: number;
  readonly share_threshold: number;
  readonly share_drifted: number | null;
  readonly drifted_features: number | null;
  readonly n_features: number;
  readonly dataset_drift: boolean | null;
  readonly features: FeatureDrift[];
  readonly reference: ReferenceDescription;
}

export interface ReferenceDescription {
  readonly source: 'training' | 'dataset';
  readonly rows: number;
  readonly dataset: { readonly name: string; readonly version: number } | null;
}

export interface ReportQuery {
  readonly version?: number;
  readonly window?: number;
  /** Milliseconds before now. */
  readonly sinceMs?: number;
  readonly method?: 'psi';
}

interface StoredReference extends DriftReference {
  readonly source?: 'training' | 'dataset';
  readonly dataset?: { readonly name: string; readonly version: number } | null;
}

const SINCE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `?since=` as milliseconds: a duration (`90s`, `15m`, `1h`, `7d`) or an ISO-8601 time. @throws AppError 400 */
export function parseSince(text: string, now = Date.now()): number {
  const m = SINCE.exec(text.trim());
  if (m !== null) return Number(m[1]) * UNIT_MS[m[2]!]!;
  const t = Date.parse(text);
  if (!Number.isNaN(t) && /^\d{4}-\d{2}-\d{2}/.test(text)) return Math.max(0, now - t);
  throw invalidField('/since', 'must be a duration such as 30m, 1h or 7d, or an ISO-8601 time');
}

export class DriftService {
  private readonly deps: DriftDeps;
  /** References by `model@version`, parsed once (they never change without setReference). */
  private readonly references = new Map<string, StoredReference | null>();
  /** Logged-row schemas by `model@version`. */
  private readonly schemas = new Map<string, LogSchema>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(deps: DriftDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
  }

  get settings(): DriftSettings {
    return this.deps.settings;
  }

  /** The prediction log serving hands answered predictions to. */
  get log(): PredictionLog {
    return this.deps.predictionLog;
  }

  /** Starts the prediction log and the periodic drift check. */
  start(): void {
    this.deps.predictionLog.start();
    const s = this.deps.settings.checkIntervalSeconds;
    if (s > 0 && this.timer === undefined) {
      this.timer = setInterval(() => void this.runChecks(), s * 1000);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
    await this.deps.predictionLog.close();
  }

  // ------------------------------------------------------------------------------ references

  /**
   * Sets a model version's reference from a dataset version: the model's features are summarised
   * from the dataset's columns of the same names. Resolves with its description.
   * @throws AppError 404 unknown model, version or dataset; 400 when the dataset lacks a feature
   */
  async setReferenceFromDataset(model: string, body: { dataset: string; dataset_version?: number; version?: number }): Promise<ReferenceDescription & { model: string; version: string; features: number }> {
    const version = body.version ?? (await this.latestVersion(model));
    const mv = await this.deps.registry.models.getVersion(model, version);
    const { table, version: dv } = await this.deps.datasets.loadTable(body.dataset, body.dataset_version ?? (await this.deps.datasets.resolveVersion(body.dataset)).version);
    const sig = mv.signature;
    const missing = sig.featureNames.filter((n) => findColumn(table, n) === undefined);
    if (missing.length > 0) {
      throw badRequest(
        `dataset '${dv.name}' version ${dv.version} lacks feature(s) of model '${model}': ${missing.join(', ')}`,
        missing.map((n) => ({ path: '/dataset', message: `no column '${n}'` })),
      );
    }
    const features: Record<string, FeatureReference> = {};
    sig.featureNames.forEach((name, j) => {
      const col = findColumn(table, name)!;
      if (sig.featureTypes[j] === 'categorical' || col.type === 'categorical') {
        const labels: string[] = [];
        const index = new Map<string, number>();
        const codes = new Float64Array(table.rowCount);
        for (let i = 0; i < table.rowCount; i++) {
          const v = col.type === 'categorical' ? col.values[i] : Number.isNaN(col.values[i]) ? null : String(col.values[i]);
          if (v === null || v === undefined) {
            codes[i] = Number.NaN;
            continue;
          }
          let c = index.get(v);
          if (c === undefined) {
            c = labels.length;
            labels.push(v);
            index.set(v, c);
          }
          codes[i] = c;
        }
        features[name] = categoricalReference(codes, labels);
      } else {
        features[name] = numericReference(col.values);
      }
    });
    const reference = {
      format: REFERENCE_FORMAT,
      source: 'dataset' as const,
      rows: table.rowCount,
      feature_names: sig.featureNames,
      features,
      dataset: { name: dv.name, version: dv.version, sha256: dv.sha256 },
    };
    await this.deps.registry.models.setReference(model, version, reference);
    this.references.delete(`${model}@${version}`);
    return { model, version: String(version), source: 'dataset', rows: table.rowCount, dataset: { name: dv.name, version: dv.version }, features: sig.featureNames.length };
  }

  /** The newest version of a model. @throws AppError 404 */
  private async latestVersion(model: string): Promise<number> {
    const versions = await this.deps.registry.models.listVersions(model);
    if (versions.length === 0) throw notFound(`model '${model}' has no versions`);
    return Math.max(...versions.map((v) => v.version));
  }

  /** The newest version of a model that has a reference. @throws AppError 404, 409 */
  private async latestWithReference(model: string): Promise<number> {
    const versions = await this.deps.registry.models.listVersions(model);
    if (versions.length === 0) throw notFound(`model '${model}' has no versions`);
    const withRef = versions.filter((v) => v.hasReference).map((v) => v.version);
    if (withRef.length === 0) throw noReference(model);
    return Math.max(...withRef);
  }

  /** A version's reference, parsed and checked once. @throws AppError 404, 409 */
  private async reference(model: string, version: number): Promise<StoredReference> {
    const key = `${model}@${version}`;
    let ref = this.references.get(key);
    if (ref === undefined) {
      const raw = await this.deps.registry.models.getReference(model, version);
      ref = raw === undefined ? null : readReference(raw);
      this.references.set(key, ref);
    }
    if (ref === null) throw noReference(model, version);
    return ref;
  }

  // ------------------------------------------------------------------------------ reports

  /**
   * The report over the latest logged rows of a model version (`window` rows, or every row of
   * the last `sinceMs`, at most {@link MAX_WINDOW}). Without `version`: the version of the latest
   * logged row, else the newest version with a reference.
   */
  async report(model: string, query: ReportQuery): Promise<DriftReport> {
    const version = query.version ?? (await this.loggedVersion(model)) ?? (await this.latestWithReference(model));
    const reference = await this.reference(model, version);
    await this.deps.predictionLog.flush();
    const limit = query.sinceMs === undefined ? (query.window ?? this.deps.settings.window) : MAX_WINDOW;
    const since = query.sinceMs === undefined ? undefined : Date.now() - query.sinceMs;
    const ranges = await readWindow(this.deps.store.db, model, String(version), limit, since);
    const schema = ranges.length === 0 ? undefined : await this.logSchema(model, String(version));
    const window = { ...(since === undefined ? { rows: limit } : { since: new Date(since).toISOString() }), source: 'log' as const };
    let n = 0;
    if (schema !== undefined) for (const r of ranges) n += r.to - r.from;
    return this.build(model, String(version), reference, () => liveFromLog(reference, schema!, ranges), n, window, query.method);
  }

  /**
   * The report over rows given in a request (objects by feature name, or arrays in model order),
   * not logged. @throws AppError 400 naming a malformed record
   */
  async check(model: string, records: readonly unknown[], query: ReportQuery): Promise<DriftReport> {
    const version = query.version ?? (await this.latestWithReference(model));
    const reference = await this.reference(model, version);
    const rows = records.map((r, i): Record<string, unknown> => {
      if (Array.isArray(r)) {
        if (r.length !== reference.feature_names.length) throw invalidField(`/records/${i}`, `must have ${reference.feature_names.length} values (the model's features in order)`);
        return Object.fromEntries(reference.feature_names.map((n, j) => [n, r[j]]));
      }
      if (r === null || typeof r !== 'object') throw invalidField(`/records/${i}`, 'must be an object of feature values or an array in feature order');
      return r as Record<string, unknown>;
    });
    return this.build(model, String(version), reference, () => liveColumns(reference, rows), rows.length, { rows: rows.length, source: 'request' }, query.method);
  }

  /** The report over `n` live rows whose columns `live()` gives (not called below the minimum window). */
  private build(model: string, version: string, reference: StoredReference, live: () => Map<string, LiveColumn>, n: number, window: DriftReport['window'], method: 'psi' | undefined): DriftReport {
    const s = this.deps.settings;
    const description: ReferenceDescription = { source: reference.source ?? 'training', rows: reference.rows, dataset: reference.dataset === undefined || reference.dataset === null ? null : { name: reference.dataset.name, version: reference.dataset.version } };
    const head = { model, version, computed_at: new Date().toISOString(), window, current_rows: n, reference_rows: reference.rows, min_window: s.minWindow, share_threshold: s.shareThreshold, n_features: reference.feature_names.length };
    if (n < s.minWindow) {
      return {
        ...head,
        status: 'not_enough_data',
        message: `not enough data: ${n} row(s) in the window, at least ${s.minWindow} needed (DRIFT_MIN_WINDOW)`,
        share_drifted: null,
        drifted_features: null,
        dataset_drift: null,
        features: [],
        reference: description,
      };
    }
    const summary = compareFeatures(reference, live(), n, { shareThreshold: s.shareThreshold, ...(method === undefined ? {} : { method }) });
    return { ...head, status: 'ok', ...summary, reference: description };
  }

  /** Sets the drift gauges of a model from a report over its logged traffic. */
  private publish(report: DriftReport): void {
    if (report.status !== 'ok') return;
    const m = this.deps.metrics;
    for (const f of report.features) {
      if (f.method !== null && f.statistic !== null) m.driftScore.set({ model: report.model, feature: f.feature, method: f.method }, f.p_value ?? f.statistic);
      m.driftDetected.set({ model: report.model, feature: f.feature }, f.drifted ? 1 : 0);
    }
    m.datasetDriftShare.set({ model: report.model }, report.share_drifted ?? 0);
    m.datasetDriftDetected.set({ model: report.model }, report.dataset_drift === true ? 1 : 0);
  }

  /** The schema of a model version's logged rows (registry versions' schemas never change: cached). */
  private async logSchema(model: string, version: string): Promise<LogSchema | undefined> {
    const key = `${model}@${version}`;
    const cached = this.schemas.get(key);
    if (cached !== undefined) return cached;
    const row = await repo.findSchema(this.deps.store.db, model, version);
    if (row === undefined) return undefined;
    const schema = parseSchema(row);
    if (/^\d+$/.test(version)) this.schemas.set(key, schema);
    return schema;
  }

  /** The version of a model's latest logged row, as a number when it is a registry version. */
  private async loggedVersion(model: string): Promise<number | undefined> {
    await this.deps.predictionLog.flush();
    const v = await repo.latestLoggedVersion(this.deps.store.db, model);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  }

  // ------------------------------------------------------------------------------ periodic check

  /**
   * One periodic check: every model with logged rows since the previous interval began and a
   * reference gets a report over the default window, stored in its history and published as
   * gauges. Overlapping calls share one run.
   *
   * Every replica (and every process of `serve --workers N`) runs the timer, but one of them
   * checks per interval: the first to claim the interval's slot in the store. The others publish
   * the latest stored report of each of those models instead, so every replica's gauges follow
   * the checks (one interval behind at most) without a history row per replica.
   */
  runChecks(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    const now = this.now();
    const periodic = this.deps.settings.checkIntervalSeconds > 0;
    const interval = periodic ? this.deps.settings.checkIntervalSeconds * 1000 : 1;
    const slot = Math.floor(now / interval);
    // Periodic: the models logged since the previous interval began, or since the last checked
    // interval began when that is earlier. With the timer off (DRIFT_CHECK_INTERVAL=0) a check is
    // run by hand and looks back one day.
    let since = periodic ? (slot - 1) * interval : now - UNIT_MS['d']!;
    try {
      await this.deps.predictionLog.flush();
      if (periodic) {
        // A check that runs late (a busy process: the timer waits for a check still running) or
        // after intervals nobody checked must still see the rows logged since the last check,
        // or a model whose traffic then stopped would never be checked on it.
        const previous = await repo.previousClaim(this.deps.store.db, 'drift-check', slot);
        if (previous !== undefined) since = Math.min(since, previous * interval);
      }
      const models = await repo.recentlyLoggedModels(this.deps.store.db, since);
      // A check run by hand (timer off) is not one replica's share of a period: it always runs.
      if (periodic && !(await repo.claimSlot(this.deps.store.db, 'drift-check', slot, now))) {
        await this.publishStored(models.map((m) => m.model));
        return;
      }
      for (const { model, version } of models) {
        if (!/^\d+$/.test(version)) continue;
        try {
          const report = await this.report(model, { version: Number(version) });
          this.publish(report);
          if (report.status === 'ok') await this.store(report);
        } catch (err) {
          if (err instanceof AppError && err.status < 500) this.deps.log.debug({ model, version, reason: err.message }, 'drift check skipped');
          else this.deps.log.warn({ err, model, version }, 'drift check failed');
        }
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'drift check failed; retried at the next period');
    }
  }

  /** Publishes the latest stored report of each model (another replica checked this interval). */
  private async publishStored(models: readonly string[]): Promise<void> {
    for (const model of models) {
      const row = await repo.latestReport(this.deps.store.db, model);
      if (row !== undefined) this.publish(JSON.parse(row.report) as DriftReport);
    }
  }

  private async store(report: DriftReport): Promise<void> {
    await repo.insertReport(this.deps.store.db, {
      model: report.model,
      version: report.version,
      at: Date.parse(report.computed_at),
      share_drifted: report.share_drifted ?? 0,
      dataset_drift: report.dataset_drift === true ? 1 : 0,
      report: JSON.stringify(report),
    });
  }

  /** Report and publish (GET /drift/{model} over the log also refreshes the gauges). */
  async reportAndPublish(model: string, query: ReportQuery): Promise<DriftReport> {
    const report = await this.report(model, query);
    if (query.method === undefined) this.publish(report);
    return report;
  }

  /** Stored reports of a model, newest first. */
  async history(model: string, limit: number, pageToken?: string): Promise<{ reports: DriftReport[]; next_page_token?: string }> {
    const before = pageToken === undefined ? undefined : decodeToken(pageToken, '/page_token');
    const rows = await repo.listReports(this.deps.store.db, model, limit + 1, before);
    const page = rows.slice(0, limit);
    const reports = page.map((r) => JSON.parse(r.report) as DriftReport);
    return rows.length > limit ? { reports, next_page_token: encodeToken(page[page.length - 1]!.id) } : { reports };
  }

  // ------------------------------------------------------------------------------ prediction log reads

  /**
   * Logged rows of the filter after sequence number `afterId`, oldest first, at most `limit`:
   * blocks read a few at a time (more each time), each decoded as far as the rows it gives.
   */
  private async readPredictions(filter: Omit<repo.PredictionFilter, 'afterId'>, afterId: number | undefined, limit: number): Promise<LoggedPrediction[]> {
    const out: LoggedPrediction[] = [];
    let after = afterId;
    for (let batch = 2; out.length < limit; batch = Math.min(2 * batch, 64)) {
      const rows = await repo.listBlocks(this.deps.store.db, { ...filter, ...(after === undefined ? {} : { afterId: after }) }, batch);
      if (rows.length === 0) break;
      for (const row of rows) {
        const block = new LogBlock(row.data);
        const schema = await this.logSchema(row.model, row.version);
        for (let i = 0; i < block.rows && out.length < limit; i++) {
          const id = row.first_seq + i;
          const at = block.at[i]!;
          if ((after !== undefined && id <= after) || (filter.since !== undefined && at < filter.since) || (filter.until !== undefined && at >= filter.until)) continue;
          out.push(toLogged(row, block, i, schema));
        }
        if (out.length >= limit) break;
      }
      const last = rows[rows.length - 1]!;
      after = last.first_seq + last.row_count - 1;
    }
    return out;
  }

  /** A page of logged predictions, oldest first. */
  async predictions(filter: Omit<repo.PredictionFilter, 'afterId'>, limit: number, pageToken?: string): Promise<{ rows: LoggedPrediction[]; next_page_token?: string }> {
    await this.deps.predictionLog.flush();
    const afterId = pageToken === undefined ? undefined : decodeToken(pageToken, '/page_token');
    const rows = await this.readPredictions(filter, afterId, limit + 1);
    const page = rows.slice(0, limit);
    return rows.length > limit ? { rows: page, next_page_token: encodeToken(page[page.length - 1]!.id) } : { rows: page };
  }

  /** Every logged prediction of a range, oldest first, page by page (exports). */
  async *exportPredictions(filter: Omit<repo.PredictionFilter, 'afterId'>, max: number): AsyncGenerator<LoggedPrediction[]> {
    await this.deps.predictionLog.flush();
    let afterId: number | undefined;
    let left = max;
    while (left > 0) {
      const rows = await this.readPredictions(filter, afterId, Math.min(5000, left));
      if (rows.length === 0) return;
      left -= rows.length;
      afterId = rows[rows.length - 1]!.id;
      yield rows;
    }
  }
}

/** A logged prediction as the API shows it. */
export interface LoggedPrediction {
  readonly id: number;
  readonly timestamp: string;
  readonly model: string;
  readonly version: string;
  readonly request_id: string | null;
  readonly kind: string;
  readonly latency_ms: number;
  readonly inputs: Record<string, unknown>;
  readonly output: Record<string, unknown>;
}

/** Row `i` of a block as the API shows it, its inputs named by its schema (`{}` without one). */
function toLogged(row: repo.BlockMeta, block: LogBlock, i: number, schema: LogSchema | undefined): LoggedPrediction {
  return {
    id: row.first_seq + i,
    timestamp: new Date(block.at[i]!).toISOString(),
    model: row.model,
    version: row.version,
    request_id: block.requestId(i),
    kind: block.kindOf(i),
    latency_ms: block.latency[i]!,
    inputs: schema === undefined ? {} : namedValues(schema, block.input(i)),
    output: JSON.parse(block.output(i)) as Record<string, unknown>,
  };
}

/** Blocks fetched by the first query of a window (doubled by each next one). */
const WINDOW_BLOCKS = 4;

/**
 * The latest `limit` rows of a model version (with `since`: of those at or after it), as ranges of
 * blocks, oldest first. Blocks are read newest first, a few per query, until the window is full.
 */
export async function readWindow(db: Store['db'], model: string, version: string, limit: number, since?: number): Promise<WindowRange[]> {
  const ranges: WindowRange[] = [];
  let need = limit;
  let beforeSeq: number | undefined;
  for (let batch = WINDOW_BLOCKS; need > 0; batch *= 2) {
    const rows = await repo.latestBlocks(db, model, version, batch, { ...(beforeSeq === undefined ? {} : { beforeSeq }), ...(since === undefined ? {} : { since }) });
    if (rows.length === 0) break;
    for (const row of rows) {
      if (need === 0) break;
      const block = new LogBlock(row.data);
      // Newest rows first: runs of rows in the window, from the block's end backwards.
      let to = -1;
      for (let i = block.rows - 1; i >= 0 && need > 0; i--) {
        if (since === undefined || block.at[i]! >= since) {
          if (to < 0) to = i + 1;
          need--;
          if (need === 0 || i === 0) ranges.push({ block, from: i, to });
        } else if (to >= 0) {
          ranges.push({ block, from: i + 1, to });
          to = -1;
        }
      }
    }
    beforeSeq = rows[rows.length - 1]!.first_seq;
  }
  return ranges.reverse();
}

function encodeToken(id: number): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

function decodeToken(token: string, path: string): number {
  const m = /^id:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (m === null) throw invalidField(path, 'is not a page token this server gave');
  return Number(m[1]);
}

function noReference(model: string, version?: number): AppError {
  return conflict(
    `model '${model}'${version === undefined ? '' : ` version ${version}`} has no drift reference: train it here, or set one from a dataset version with PUT /drift/${encodeURIComponent(model)}/reference`,
  );
}

/** Checks a stored reference has what reports read. @throws AppError 409 */
function readReference(raw: unknown): StoredReference {
  const r = raw as Partial<StoredReference>;
  if (r === null || typeof r !== 'object' || !Array.isArray(r.feature_names) || r.features === undefined || typeof r.features !== 'object') {
    throw conflict('the stored drift reference of this model version is malformed; set it again with PUT /drift/{model}/reference');
  }
  return { rows: typeof r.rows === 'number' ? r.rows : 0, feature_names: r.feature_names, features: r.features, ...(r.source === undefined ? {} : { source: r.source }), dataset: r.dataset ?? null };
}

/** The live columns of the reference's features from rows keyed by feature name. */
export function liveColumns(reference: DriftReference, rows: readonly Record<string, unknown>[]): Map<string, LiveColumn> {
  const out = new Map<string, LiveColumn>();
  const n = rows.length;
  for (const name of reference.feature_names) {
    const ref = reference.features[name];
    if (ref === undefined) continue;
    if (ref.type === 'numeric') {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i]![name];
        values[i] = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      }
      out.set(name, { type: 'numeric', values });
    } else {
      const values = new Array<string | null>(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i]![name];
        values[i] = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : v === null || v === undefined ? null : JSON.stringify(v);
      }
      out.set(name, { type: 'categorical', values });
    }
  }
  return out;
}

/**
 * The live columns of the reference's features from a window of logged rows: the rows copied into
 * one matrix, each column read out of it by the schema's feature order (a feature the schema lacks
 * stays missing).
 */
export function liveFromLog(reference: DriftReference, schema: LogSchema, ranges: readonly WindowRange[]): Map<string, LiveColumn> {
  const { matrix, rows: n } = windowMatrix(schema, ranges);
  const f = schema.features.length;
  const index = new Map(schema.features.map((name, j) => [name, j]));
  const out = new Map<string, LiveColumn>();
  for (const name of reference.feature_names) {
    const ref = reference.features[name];
    if (ref === undefined) continue;
    const j = index.get(name) ?? -1;
    if (ref.type === 'numeric') {
      const values = new Float64Array(n);
      if (j < 0) values.fill(Number.NaN);
      else for (let i = 0; i < n; i++) values[i] = matrix[i * f + j]!;
      out.set(name, { type: 'numeric', values });
    } else {
      const labels = j < 0 ? null : (schema.categories[j] ?? null);
      const values = new Array<string | null>(n).fill(null);
      if (j >= 0) {
        for (let i = 0; i < n; i++) {
          const v = matrix[i * f + j]!;
          values[i] = Number.isNaN(v) ? null : labels === null ? String(v) : (labels[v] ?? null);
        }
      }
      out.set(name, { type: 'categorical', values });
    }
  }
  return out;
}
