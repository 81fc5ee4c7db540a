/**
 * Where versions serve: stage transitions (with MLflow's archiving of the others), aliases,
 * traffic splits of the default route, and the audit history of every such change.
 */
import type { Stage } from '../config.ts';
import { roleAllows } from '../platform/auth.ts';
import { forbidden, invalidField, notFound } from '../platform/errors.ts';
import { checkAliasName, isServingStage, isStage, roleForTransition, type Actor, type HistoryEntry, type ModelVersion, type Page, type StoredTraffic } from './registry.model.ts';
import { registryRepository as repo, type NewHistoryEntry } from './registry.repository.ts';
import { aliasTarget, checkSplit, history, modelNotFound, readTraffic, readVersion, toHistory, versionNotFound, type RegistryContext } from './registry.shared.ts';
import type { TrafficSplit } from './registry.types.ts';

/** Outcome of a stage transition. */
export interface TransitionResult {
  readonly version: ModelVersion;
  /** Versions moved to Archived by `archiveExistingVersions`. */
  readonly archived: readonly number[];
}

export class LifecycleService {
  constructor(private readonly ctx: RegistryContext) {}

  private get db() {
    return this.ctx.store.db;
  }

  // ---------------------------------------------------------------- stages

  /**
   * Moves a version to a stage. With `archiveExistingVersions` (only for Staging/Production, as
   * in MLflow) the other versions in the target stage move to Archived in the same transaction.
   * Role: see `roleForTransition` (admin to enter Production/Archived or leave Production).
   * Moving a version to the stage it is in changes nothing (but still archives the others when
   * asked).
   * @throws AppError 400 (bad stage/option), 403 (role), 404
   */
  async transitionStage(
    name: string,
    version: number,
    stage: string,
    options: { archiveExistingVersions?: boolean; actor: Actor },
  ): Promise<TransitionResult> {
    if (!isStage(stage)) throw invalidField('/body/stage', "must be one of 'None', 'Staging', 'Production', 'Archived'");
    const archive = options.archiveExistingVersions === true;
    if (archive && !isServingStage(stage)) {
      throw invalidField('/body/archive_existing_versions', `can only be true when moving to Staging or Production, not ${stage}`);
    }
    const { actor } = options;
    let archived: number[] = [];
    let changed = false;
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const row = await repo.findVersion(trx, name, version);
      if (row === undefined) throw versionNotFound(name, version);
      const from = row.stage as Stage;
      const need = roleForTransition(from, stage);
      if (!roleAllows(actor.role, need)) {
        throw forbidden(`moving version ${version} from ${from} to ${stage} needs role '${need}'; the key has role '${actor.role}'`);
      }
      const entries: NewHistoryEntry[] = [];
      if (from !== stage) {
        await repo.updateVersion(trx, name, version, { stage, updated_at: now });
        entries.push(history(name, now, actor.keyId, 'stage', { version, from, to: stage }));
      }
      if (archive) {
        const others = (await repo.versionsInStage(trx, name, stage)).filter((v) => v.version !== version);
        for (const other of others) {
          await repo.updateVersion(trx, name, other.version, { stage: 'Archived', updated_at: now });
          entries.push(history(name, now, actor.keyId, 'stage', { version: other.version, from: stage, to: 'Archived' }));
        }
        archived = others.map((o) => o.version);
      }
      if (entries.length > 0) {
        changed = true;
        await repo.addHistory(trx, entries);
        await repo.bumpGeneration(trx);
      }
    });
    if (changed) this.ctx.events.emit(name);
    return { version: await readVersion(this.db, name, version), archived };
  }

  // ---------------------------------------------------------------- aliases

  /**
   * Points an alias at a version (creating or moving it). MLflow's rules: see `checkAliasName`.
   * @throws AppError 400 (reserved/invalid name), 404
   */
  async setAlias(name: string, alias: string, version: number, actor: string): Promise<ModelVersion> {
    checkAliasName(alias);
    let changed = false;
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      if ((await repo.findVersion(trx, name, version)) === undefined) throw versionNotFound(name, version);
      const old = await repo.findAlias(trx, name, alias);
      if (old?.version === version) return;
      await repo.upsertAlias(trx, { model: name, alias, version, created_at: now, updated_at: now });
      await repo.addHistory(trx, [
        history(name, now, actor, 'alias', { version, alias, from: old === undefined ? null : String(old.version), to: String(version) }),
      ]);
      await repo.bumpGeneration(trx);
      changed = true;
    });
    if (changed) this.ctx.events.emit(name);
    return readVersion(this.db, name, version);
  }

  /** Removes an alias. @throws AppError 404 when the model or alias does not exist */
  async deleteAlias(name: string, alias: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const old = await repo.findAlias(trx, name, alias);
      if (old === undefined) throw notFound(`model '${name}' has no alias '${alias}'`);
      await repo.deleteAlias(trx, name, alias);
      await repo.addHistory(trx, [history(name, now, actor, 'alias', { version: old.version, alias, from: String(old.version), to: null })]);
      await repo.bumpGeneration(trx);
    });
    this.ctx.events.emit(name);
  }

  /**
   * The version an alias points at. The reserved `latest` and `v<n>` resolve to the newest
   * version and version n. @throws AppError 404
   */
  async getAlias(name: string, alias: string): Promise<ModelVersion> {
    const version = await aliasTarget(this.db, name, alias);
    if (version === undefined) {
      if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
      throw notFound(`model '${name}' has no alias '${alias}'`);
    }
    return readVersion(this.db, name, version);
  }

  // ---------------------------------------------------------------- traffic

  /** The model's traffic split, `null` when none is set. @throws AppError 404 */
  getTraffic(name: string): Promise<StoredTraffic | null> {
    return readTraffic(this.db, name);
  }

  /**
   * Sets the weighted split of the model's default route. Weights are percentages: each > 0,
   * summing to 100 (within 1e-6). Every version (routes and shadows) must exist and appear once.
   * `routes` may be empty when `shadow` is not: the default route then stays stage-based and the
   * shadows get a copy of its traffic. An empty split (no routes, no shadows) clears it.
   * @throws AppError 400 (invalid split), 404
   */
  async setTraffic(name: string, split: TrafficSplit, actor: string): Promise<StoredTraffic | null> {
    const normal = checkSplit(split);
    const cleared = normal.routes.length === 0 && normal.shadow.length === 0;
    let changed = false;
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const wanted = [...normal.routes.map((r) => r.version), ...normal.shadow];
      const missing: number[] = [];
      for (const v of wanted) if ((await repo.findVersion(trx, name, v)) === undefined) missing.push(v);
      if (missing.length > 0) throw invalidField('/body', `model '${name}' has no version ${missing.join(', ')}`);
      const old = await repo.findTraffic(trx, name);
      const next = cleared ? null : JSON.stringify(normal);
      if ((old?.split ?? null) === next) return;
      if (next === null) await repo.deleteTraffic(trx, name);
      else await repo.upsertTraffic(trx, { model: name, split: next, updated_at: now, updated_by: actor });
      await repo.addHistory(trx, [history(name, now, actor, 'traffic', { from: old?.split ?? null, to: next })]);
      await repo.bumpGeneration(trx);
      changed = true;
    });
    if (changed) this.ctx.events.emit(name);
    return this.getTraffic(name);
  }

  // ---------------------------------------------------------------- history

  /** Audit entries of a model, newest first. @throws AppError 404 */
  async history(name: string, offset: number, limit: number): Promise<Page<HistoryEntry>> {
    if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
    const rows = await repo.listHistory(this.db, name, offset, limit + 1);
    return { items: rows.slice(0, limit).map(toHistory), nextOffset: rows.length > limit ? offset + limit : undefined };
  }

}
