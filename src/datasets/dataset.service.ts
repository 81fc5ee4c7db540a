/**
 * Datasets: immutable, numbered versions of tabular data. Each version is the uploaded CSV as it
 * arrived (`datasets/<name>/<version>/data.csv` in the artifact store) plus, in the store, its
 * sha-256, size, row count and inferred schema with column statistics. Built-in datasets are
 * addressable by name and stored as an ordinary version 1 on first use, so training lineage always
 * points at real stored bytes.
 */
import { once } from 'node:events';
import { isUniqueViolation } from '../store/database.ts';
import { PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import type { ArtifactInfo, ArtifactStore } from '../artifacts/artifact-store.ts';
import { AppError, conflict, invalidField, notFound, payloadTooLarge, type FieldError } from '../platform/errors.ts';
import type { Store } from '../store/database.ts';
import { builtinAsCsv, isBuiltinDataset, listBuiltinDatasets, type BuiltinDatasetInfo } from './builtin.ts';
import { readStoredCsv, tableToCsv, type CsvSource } from './csv-ingest.ts';
import { CsvParserThread } from './csv-parser.ts';
import * as repo from './dataset.repository.ts';
import { DatasetError, DatasetParseError, DatasetTooLargeError } from './errors.ts';
import type { DatasetSchema } from './schema.ts';
import { tableFromJsonRows, type Table } from './table.ts';

/** Where a version came from. */
export type DatasetSource = 'upload' | 'json' | 'builtin' | 'import';

/** One stored dataset version. `schema` is `null` in listings (it can be large). */
export interface DatasetVersion {
  readonly name: string;
  readonly version: number;
  readonly source: DatasetSource;
  /** Lower-case hex sha-256 of the stored bytes. */
  readonly sha256: string;
  readonly bytes: number;
  readonly rowCount: number;
  readonly columnCount: number;
  readonly delimiter: string;
  readonly schema: DatasetSchema | null;
  /** Artifact key of the stored CSV. */
  readonly artifactKey: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** A dataset name: stored versions and, for built-ins, what the platform ships. */
export interface DatasetSummary {
  readonly name: string;
  /** Set for built-in datasets (stored as version 1 on first use). */
  readonly builtin: BuiltinDatasetInfo | null;
  readonly versionCount: number;
  readonly latestVersion: number | null;
  readonly updatedAt: number | null;
}

/** A dataset with its versions (newest first) and the newest one in full. */
export interface DatasetDetail extends DatasetSummary {
  readonly versions: readonly DatasetVersion[];
  readonly latest: DatasetVersion;
}

/** A page of results; `nextOffset` is set when more exist. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextOffset?: number;
}

export interface DatasetServiceOptions {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly log: Logger;
  /** Largest accepted upload in bytes (`DATASET_MAX_BYTES`). */
  readonly maxBytes: number;
  readonly now?: () => number;
}

/** Options of one upload. */
export interface UploadOptions {
  /** Key id (or `cli`) recorded as the creator. */
  readonly actor: string;
  /** Field delimiter; sniffed when absent. */
  readonly delimiter?: string;
  /** Provenance; default `upload`. */
  readonly source?: DatasetSource;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Attempts to allocate a version number when concurrent uploads keep taking the next one. */
const MAX_RESERVE_ATTEMPTS = 20;
/** An `uploading` row of a built-in older than this was left by a crash and may be taken over. */
const STALE_BUILTIN_MS = 60_000;
const BUILTIN_WAIT_MS = 30_000;

/** The artifact key of a version's CSV. */
export function datasetKey(name: string, version: number): string {
  return `datasets/${name}/${version}/data.csv`;
}

/** Checks a dataset name (used in artifact keys and URLs). @throws AppError 400 */
export function checkDatasetName(name: string, path = '/params/name'): string {
  if (!NAME_RE.test(name)) {
    throw invalidField(path, 'must be 1-128 characters: letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return name;
}

/** Maps ingest errors onto the HTTP error family; `path` is where the data sat in the request. */
export function datasetHttpError(err: unknown, path = '/body'): unknown {
  if (err instanceof DatasetTooLargeError) return payloadTooLarge(err.message);
  if (err instanceof DatasetParseError) {
    let where = path;
    if (err.row !== undefined) where = `${path}/${err.row}${err.field === undefined ? '' : `/${escapePointer(err.field)}`}`;
    const errors: FieldError[] = [{ path: where, message: err.message }];
    return new AppError(400, 'invalid_dataset', err.message, errors);
  }
  if (err instanceof DatasetError) return new AppError(err.status, err.code.toLowerCase(), err.message);
  return err;
}

function escapePointer(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Tees a byte stream into `ArtifactStore.put` with back-pressure: `write` resolves once the
 * store has taken the chunk (or rejects as soon as the store failed), so a slow bucket slows the
 * upload instead of buffering it in memory.
 */
class ArtifactSink {
  private readonly stream = new PassThrough();
  private readonly done: Promise<ArtifactInfo>;
  private failure: Error | undefined;

  constructor(artifacts: ArtifactStore, key: string) {
    this.done = artifacts.put(key, this.stream);
    this.done.catch((err: unknown) => {
      this.failure = err instanceof Error ? err : new Error(`artifact write failed: ${String(err)}`);
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (!this.stream.write(chunk)) await Promise.race([once(this.stream, 'drain'), this.done]);
  }

  finish(): Promise<ArtifactInfo> {
    this.stream.end();
    return this.done;
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await this.done.catch(() => undefined);
  }
}

/** Datasets: uploads, listings, built-ins and loading versions back as tables. */
export class DatasetService {
  private readonly store: Store;
  private readonly artifacts: ArtifactStore;
  private readonly log: Logger;
  private readonly maxBytes: number;
  private readonly now: () => number;
  /** Uploads are parsed off the event loop (see csv-parser.ts); started on the first one. */
  private readonly parser = new CsvParserThread();

  constructor(options: DatasetServiceOptions) {
    this.store = options.store;
    this.artifacts = options.artifacts;
    this.log = options.log;
    this.maxBytes = options.maxBytes;
    this.now = options.now ?? Date.now;
  }

  private get db() {
    return this.store.db;
  }

  /**
   * Stores CSV bytes as a new version of `name`: they are hashed, written to the artifact store
   * and parsed (on the parser thread) in one pass as they arrive. The version number is allocated
   * before the bytes stream (so concurrent uploads never share one) and released again if the
   * upload fails: a failed upload leaves neither a version nor a file. Built-in names are reserved.
   * @throws AppError 400 (`invalid_dataset`, naming the line), 409 (built-in name), 413
   */
  async uploadCsv(name: string, source: CsvSource, options: UploadOptions): Promise<DatasetVersion> {
    checkDatasetName(name);
    if (isBuiltinDataset(name)) {
      throw conflict(`'${name}' is a built-in dataset; upload under another name`);
    }
    const version = await this.reserveVersion(name, options.source ?? 'upload', options.actor);
    return this.storeVersion(name, version, source, options);
  }

  /**
   * Stores JSON rows (an array of objects) as a new version, written as CSV so that every version
   * is loaded back the same way. Errors name the row (`/body/rows/<i>/<field>`).
   * @throws AppError 400, 409, 413
   */
  async uploadRows(name: string, rows: unknown, options: UploadOptions): Promise<DatasetVersion> {
    checkDatasetName(name);
    let csv: string;
    try {
      csv = tableToCsv(tableFromJsonRows(rows));
    } catch (err) {
      throw datasetHttpError(err, '/body/rows');
    }
    return this.uploadCsv(name, csv, { ...options, delimiter: ',', source: options.source ?? 'json' });
  }

  /** Dataset names (stored and built-in), by name. */
  async listDatasets(offset: number, limit: number): Promise<Page<DatasetSummary>> {
    const stored = new Map((await repo.listNames(this.db)).map((r) => [r.name, r]));
    const builtins = new Map(listBuiltinDatasets().map((b) => [b.name, b]));
    const names = [...new Set([...stored.keys(), ...builtins.keys()])].sort();
    const slice = names.slice(offset, offset + limit);
    const items = slice.map((name): DatasetSummary => {
      const s = stored.get(name);
      return {
        name,
        builtin: builtins.get(name) ?? null,
        versionCount: s?.versions ?? 0,
        latestVersion: s?.latest ?? null,
        updatedAt: s?.updated_at ?? null,
      };
    });
    return offset + limit < names.length ? { items, nextOffset: offset + limit } : { items };
  }

  /**
   * A dataset with its versions (newest first, at most `limit` from `offset`) and the newest in
   * full. A built-in is stored as version 1 first if it was never used.
   * @throws AppError 404
   */
  async getDataset(name: string, offset = 0, limit = 100): Promise<DatasetDetail & { nextOffset?: number }> {
    const latest = await this.resolveVersion(name);
    const rows = await repo.listReadyVersions(this.db, name, offset, limit + 1);
    const s = await repo.nameSummary(this.db, name);
    const more = rows.length > limit;
    return {
      name,
      builtin: listBuiltinDatasets().find((b) => b.name === name) ?? null,
      versionCount: s?.versions ?? 1,
      latestVersion: latest.version,
      updatedAt: s?.updated_at ?? latest.createdAt,
      versions: rows.slice(0, limit).map(toVersion),
      latest,
      ...(more ? { nextOffset: offset + limit } : {}),
    };
  }

  /**
   * One ready version, or the newest when `version` is absent. Built-in datasets are stored as
   * version 1 on first use.
   * @throws AppError 404
   */
  async resolveVersion(name: string, version?: number): Promise<DatasetVersion> {
    if (isBuiltinDataset(name)) await this.ensureBuiltin(name);
    const row = version === undefined ? await repo.latestReady(this.db, name) : await repo.findVersion(this.db, name, version);
    if (row === undefined || row.status !== 'ready') {
      if (version === undefined) throw notFound(`dataset '${name}' not found`);
      const any = await repo.latestReady(this.db, name);
      throw notFound(any === undefined ? `dataset '${name}' not found` : `dataset '${name}' has no version ${version} (latest is ${any.version})`);
    }
    return toVersion(row);
  }

  /** Same as {@link resolveVersion} with a required version. @throws AppError 404 */
  async getVersion(name: string, version: number): Promise<DatasetVersion> {
    return this.resolveVersion(name, version);
  }

  /**
   * Loads a stored version back into a typed table by streaming its CSV through the parser again
   * (with the delimiter it was stored with), each column built as the version's schema types it.
   * @throws AppError 404
   */
  async loadTable(name: string, version: number): Promise<{ table: Table; version: DatasetVersion }> {
    const v = await this.resolveVersion(name, version);
    const stream = await this.artifacts.getStream(v.artifactKey);
    const declared = v.schema === null ? undefined : { rows: v.rowCount, types: Object.fromEntries(v.schema.columns.map((c) => [c.name, c.type])) };
    return { table: await readStoredCsv(stream, v.delimiter, declared), version: v };
  }

  /**
   * Stores a built-in dataset as version 1 unless it is there already. Safe to race: only one
   * caller can insert version 1; the others wait for it to become ready.
   */
  async ensureBuiltin(name: string): Promise<DatasetVersion> {
    const deadline = this.now() + BUILTIN_WAIT_MS;
    for (;;) {
      const row = await repo.findVersion(this.db, name, 1);
      if (row?.status === 'ready') return toVersion(row);
      if (row !== undefined && this.now() - row.created_at > STALE_BUILTIN_MS) {
        // Left behind by a process that died while storing it.
        await repo.deleteVersion(this.db, name, 1);
        continue;
      }
      if (row === undefined) {
        let reserved = false;
        try {
          await repo.insertVersion(this.db, this.pendingRow(name, 1, 'builtin', 'builtin'));
          reserved = true;
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
        }
        if (reserved) {
          this.log.info({ dataset: name }, 'storing built-in dataset as version 1');
          return this.storeVersion(name, 1, builtinAsCsv(name), { actor: 'builtin', delimiter: ',', source: 'builtin' });
        }
      }
      if (this.now() > deadline) throw new Error(`timed out waiting for built-in dataset '${name}' to be stored`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Removes what uploads cut off by a crash (kill -9, power loss) left: their `uploading` rows,
   * which hide the version yet hold its number, whatever of their file was stored, and the
   * artifact store's temporary files. Only what is older than `before` (ms since the epoch), so
   * an upload another live process is receiving is left alone. Called at start-up.
   */
  async sweepAbandonedUploads(before: number): Promise<{ rows: number; tempFiles: number }> {
    const stale = await repo.staleUploads(this.db, before);
    for (const row of stale) {
      await this.artifacts.delete(row.artifact_key).catch(() => undefined);
      await repo.deleteVersion(this.db, row.name, row.version);
    }
    const tempFiles = (await this.artifacts.sweepTemporary?.('datasets/', before)) ?? 0;
    if (stale.length > 0 || tempFiles > 0) {
      this.log.warn({ rows: stale.map((r) => `${r.name}:${r.version}`), tempFiles }, 'removed dataset uploads abandoned by a crash');
    }
    return { rows: stale.length, tempFiles };
  }

  private pendingRow(name: string, version: number, source: DatasetSource, actor: string): repo.DatasetVersionRow {
    return {
      name,
      version,
      status: 'uploading',
      artifact_key: datasetKey(name, version),
      source,
      sha256: null,
      bytes: null,
      row_count: null,
      column_count: null,
      delimiter: null,
      schema: null,
      created_at: this.now(),
      created_by: actor,
    };
  }

  /** Inserts an `uploading` row with the next free number; retries when a concurrent upload wins. */
  private async reserveVersion(name: string, source: DatasetSource, actor: string): Promise<number> {
    for (let attempt = 0; attempt < MAX_RESERVE_ATTEMPTS; attempt++) {
      const version = (await repo.maxVersion(this.db, name)) + 1;
      try {
        await repo.insertVersion(this.db, this.pendingRow(name, version, source, actor));
        return version;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    throw conflict(`too many concurrent uploads to dataset '${name}'; retry`);
  }

  /** Streams `source` into the reserved version's key while parsing it; undoes everything on failure. */
  private async storeVersion(name: string, version: number, source: CsvSource, options: UploadOptions): Promise<DatasetVersion> {
    const key = datasetKey(name, version);
    const sink = new ArtifactSink(this.artifacts, key);
    try {
      const result = await this.parser.parse(source, {
        maxBytes: this.maxBytes,
        ...(options.delimiter === undefined ? {} : { delimiter: options.delimiter }),
        onChunk: (chunk) => sink.write(chunk),
      });
      await sink.finish();
      const updated = await repo.markReady(this.db, name, version, {
        sha256: result.sha256,
        bytes: result.bytes,
        row_count: result.rowCount,
        column_count: result.columnCount,
        delimiter: result.delimiter,
        schema: JSON.stringify(result.schema),
      });
      if (updated !== 1) throw new Error(`dataset '${name}' version ${version} vanished while it was being stored`);
    } catch (err) {
      await sink.abort();
      await this.artifacts.delete(key).catch((e: unknown) => this.log.warn({ err: e, key }, 'could not delete a failed dataset upload'));
      await repo.deleteVersion(this.db, name, version).catch((e: unknown) => this.log.warn({ err: e, name, version }, 'could not release a failed dataset version'));
      throw datasetHttpError(err);
    }
    const row = await repo.findVersion(this.db, name, version);
    if (row === undefined) throw new Error(`dataset '${name}' version ${version} vanished after it was stored`);
    this.log.info({ dataset: name, version, rows: row.row_count, bytes: row.bytes }, 'stored dataset version');
    return toVersion(row);
  }
}

function toVersion(row: repo.DatasetVersionRow): DatasetVersion {
  return {
    name: row.name,
    version: Number(row.version),
    source: row.source as DatasetSource,
    sha256: row.sha256 ?? '',
    bytes: Number(row.bytes ?? 0),
    rowCount: Number(row.row_count ?? 0),
    columnCount: Number(row.column_count ?? 0),
    delimiter: row.delimiter ?? ',',
    schema: row.schema === null ? null : (JSON.parse(row.schema) as DatasetSchema),
    artifactKey: row.artifact_key,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
  };
}
