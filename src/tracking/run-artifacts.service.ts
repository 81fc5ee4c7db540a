/**
 * Run artifacts: files stored under `runs/<run_id>/artifacts/<path>` in the artifact store,
 * listed as MLflow lists them (direct children, folders first-class).
 */
import type { Readable } from 'node:stream';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { ArtifactNotFoundError, InvalidArtifactKeyError } from '../artifacts/errors.ts';
import { notFound } from '../platform/errors.ts';
import type { Store } from '../store/database.ts';
import {
  type FileInfo,
} from './tracking.types.ts';
import {
  invalidParameter,
  validateArtifactPath,
} from './validation.ts';

import {
  activeRunRow,
  runArtifactPrefix,
  runRow,
  type Db,
} from './tracking.shared.ts';

/** Run artifacts, stored under `runs/<run_id>/artifacts/<path>` in the artifact store. */
export class RunArtifactsService {
  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
  ) {}

  private get db(): Db {
    return this.store.db;
  }

  // Artifacts: stored under runs/<run_id>/artifacts/<path>

  private artifactKey(runId: string, path: string): string {
    return runArtifactPrefix(runId) + validateArtifactPath(path, false);
  }

  /** Stores one file of an active run; refuses paths that are absolute or contain `..`. */
  async logArtifact(runId: string, path: string, body: Buffer | Uint8Array | Readable): Promise<FileInfo> {
    const key = this.artifactKey(runId, path);
    await activeRunRow(this.db, runId);
    try {
      const info = await this.artifacts.put(key, body);
      return { path, isDir: false, fileSize: info.size };
    } catch (err) {
      if (err instanceof InvalidArtifactKeyError) throw invalidParameter(`artifact path '${path}' is refused: ${err.reason}`);
      throw err;
    }
  }

  /** Deletes a file, or a folder and everything under it, of an active run (MLflow's `delete_artifacts`). */
  async deleteArtifacts(runId: string, path: string): Promise<void> {
    const folder = validateArtifactPath(path, true);
    await activeRunRow(this.db, runId);
    const prefix = runArtifactPrefix(runId);
    try {
      if (folder !== '') await this.artifacts.delete(prefix + folder);
      await this.artifacts.deletePrefix(prefix + (folder === '' ? '' : `${folder}/`));
    } catch (err) {
      throw this.mapArtifactError(err, runId, path);
    }
  }

  /** Direct children of a folder of a run's artifacts (MLflow's `list_artifacts`), folders first-class. */
  async listArtifacts(runId: string, path = ''): Promise<FileInfo[]> {
    const folder = validateArtifactPath(path.endsWith('/') ? path.slice(0, -1) : path, true);
    await runRow(this.db, runId);
    const prefix = runArtifactPrefix(runId) + (folder === '' ? '' : `${folder}/`);
    const out: FileInfo[] = [];
    const dirs = new Set<string>();
    for (const info of await this.listPrefix(prefix)) {
      const rest = info.key.slice(prefix.length);
      const slash = rest.indexOf('/');
      const childPath = (folder === '' ? '' : `${folder}/`) + (slash < 0 ? rest : rest.slice(0, slash));
      if (slash < 0) {
        out.push({ path: childPath, isDir: false, fileSize: info.size });
      } else if (!dirs.has(childPath)) {
        dirs.add(childPath);
        out.push({ path: childPath, isDir: true });
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Every file of a run's artifacts (recursive), up to `limit`, for the native run view. */
  async listAllArtifacts(runId: string, limit = 1000): Promise<{ files: FileInfo[]; truncated: boolean }> {
    await runRow(this.db, runId);
    const prefix = runArtifactPrefix(runId);
    const all = await this.listPrefix(prefix);
    return {
      files: all.slice(0, limit).map((i) => ({ path: i.key.slice(prefix.length), isDir: false, fileSize: i.size })),
      truncated: all.length > limit,
    };
  }

  /** Streams one artifact file; 404 when absent. */
  async getArtifact(runId: string, path: string): Promise<Readable> {
    const key = this.artifactKey(runId, path);
    await runRow(this.db, runId);
    try {
      return await this.artifacts.getStream(key);
    } catch (err) {
      throw this.mapArtifactError(err, runId, path);
    }
  }

  /** Reads one artifact file whole; 404 when absent. */
  async readArtifact(runId: string, path: string): Promise<Buffer> {
    const key = this.artifactKey(runId, path);
    await runRow(this.db, runId);
    try {
      return await this.artifacts.getBuffer(key);
    } catch (err) {
      throw this.mapArtifactError(err, runId, path);
    }
  }

  private async listPrefix(prefix: string) {
    try {
      return await this.artifacts.list(prefix);
    } catch (err) {
      if (err instanceof InvalidArtifactKeyError) throw invalidParameter(`artifact path is refused: ${err.reason}`);
      throw err;
    }
  }

  private mapArtifactError(err: unknown, runId: string, path: string): unknown {
    if (err instanceof ArtifactNotFoundError) return notFound(`artifact '${path}' not found in run ${runId}`);
    if (err instanceof InvalidArtifactKeyError) return invalidParameter(`artifact path '${path}' is refused: ${err.reason}`);
    return err;
  }
}
