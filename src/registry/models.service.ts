/**
 * Registered models and their versions: creation, listing, metadata, registration (validate, then
 * take a number and store the bundle) and deletion, and the files of a version's bundle.
 */
import { createHash } from 'node:crypto';
import { InvalidArtifactKeyError } from '../artifacts/errors.ts';
import { validateKey } from '../artifacts/keys.ts';
import type { Stage } from '../config.ts';
import { InvalidModelError } from '../onnx/errors.ts';
import type { ModelSignature, SignatureHints } from '../onnx/signature.ts';
import { conflict, invalidField, payloadTooLarge } from '../platform/errors.ts';
import { ModelRuntimeError, type ModelSmokeTest } from './model-check.ts';
import { checkModelName, isServingStage, type DatasetRef, type ModelVersion, type Page, type RegisteredModel, type RegisteredModelDetail, type StageLatest } from './registry.model.ts';
import { registryRepository as repo, type RegisteredModelRow } from './registry.repository.ts';
import {
  aliasesByVersion,
  checkMetrics,
  history,
  invalidModel,
  mergeTags,
  modelNotFound,
  parseJsonObject,
  parseSplit,
  readTraffic,
  readVersion,
  splitUses,
  toVersion,
  versionNotFound,
  type RegistryContext,
} from './registry.shared.ts';

/** File names inside a version bundle (`models/<name>/<version>/`). */
export const BUNDLE_FILES = { model: 'model.onnx', signature: 'signature.json', reference: 'reference.json' } as const;

/** Artifact folder of one version's bundle, ending in `/`. */
export function bundlePrefix(name: string, version: number): string {
  return `models/${name}/${version}/`;
}

/**
 * Artifact key where tracking stores a run's files: `runs/<run_id>/artifacts/<path>`. A
 * `runs:/<run_id>/<path>` source is read from there.
 */
export function runArtifactKey(runId: string, path: string): string {
  return `runs/${runId}/artifacts/${path}`;
}

/** Everything a registration may record besides the file and the signature hints. */
export interface RegisterExtras {
  /** Key id of whoever registers (history, `created_by`). */
  readonly actor: string;
  readonly description?: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** Evaluation metrics (training). Must be finite numbers. */
  readonly metrics?: Readonly<Record<string, number>>;
  readonly runId?: string;
  readonly dataset?: DatasetRef;
  /** Training-data statistics; stored as `reference.json` in the bundle. */
  readonly reference?: unknown;
  /** Provenance shown with the version; default `upload`. */
  readonly source?: string;
}

/** Description/tags change. A tag set to `null` is removed; other tags are kept (JSON merge patch). */
export interface MetadataPatch {
  readonly description?: string | null;
  readonly tags?: Readonly<Record<string, string | null>>;
}

/** A model file checked where it was made, already in the artifact store (see `registerChecked`). */
export interface CheckedModel {
  /** Artifact key of the servable `.onnx` file. */
  readonly artifactKey: string;
  readonly size: number;
  readonly sha256: string;
  readonly signature: ModelSignature;
}

const RUNS_SOURCE = /^runs:\/([A-Za-z0-9_-]{1,128})\/(.+)$/;


export class ModelsService {
  constructor(
    private readonly ctx: RegistryContext,
    private readonly options: { readonly maxModelBytes: number; readonly smokeTest: ModelSmokeTest },
  ) {}

  private get db() {
    return this.ctx.store.db;
  }

  private get maxModelBytes(): number {
    return this.options.maxModelBytes;
  }

  private get smokeTest(): ModelSmokeTest {
    return this.options.smokeTest;
  }

  // ---------------------------------------------------------------- registered models

  /**
   * Creates an empty registered model.
   * @throws AppError 409 when the name is taken, 400 for an invalid name
   */
  async createModel(name: string, options: { description?: string | null; tags?: Readonly<Record<string, string>> }, actor: string): Promise<RegisteredModel> {
    checkModelName(name, '/body/name');
    const now = this.ctx.now();
    await this.db.transaction().execute(async (trx) => {
      const created = await repo.insertModelIfAbsent(trx, {
        name,
        description: options.description ?? null,
        tags: JSON.stringify(options.tags ?? {}),
        last_version: 0,
        created_at: now,
        updated_at: now,
      });
      if (!created) throw conflict(`registered model '${name}' already exists`);
      await repo.addHistory(trx, [history(name, now, actor, 'model.create')]);
    });
    return this.getModelSummary(name);
  }

  /** Registered models by name, with the latest version per stage and aliases. */
  async listModels(offset: number, limit: number): Promise<Page<RegisteredModel>> {
    const rows = await repo.listModels(this.db, offset, limit + 1);
    const page = rows.slice(0, limit);
    return { items: await this.summarise(page), nextOffset: rows.length > limit ? offset + limit : undefined };
  }

  /** @throws AppError 404 */
  async getModelSummary(name: string): Promise<RegisteredModel> {
    const row = await repo.findModel(this.db, name);
    if (row === undefined) throw modelNotFound(name);
    return (await this.summarise([row]))[0]!;
  }

  /** One model with all its versions, aliases and traffic split. @throws AppError 404 */
  async getModel(name: string): Promise<RegisteredModelDetail> {
    const summary = await this.getModelSummary(name);
    const [versions, traffic] = await Promise.all([this.listVersions(name), readTraffic(this.db, name)]);
    return { ...summary, versions, traffic };
  }

  /** Changes a model's description and tags. @throws AppError 404 */
  async updateModel(name: string, patch: MetadataPatch): Promise<RegisteredModel> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.ctx.now());
      if (row === undefined) throw modelNotFound(name);
      await repo.updateModel(trx, name, {
        ...(patch.description === undefined ? {} : { description: patch.description }),
        ...(patch.tags === undefined ? {} : { tags: JSON.stringify(mergeTags(parseJsonObject(row.tags), patch.tags)) }),
      });
    });
    return this.getModelSummary(name);
  }

  /**
   * Renames a model (MLflow's `rename_registered_model`): its versions, aliases, traffic split and
   * history follow it, and its bundles are copied to the new name's folder before the rows move
   * (no file I/O inside the transaction), the old folder removed after. Serving hears of both names.
   * @throws AppError 409 when the new name is taken, 404, 400 for an invalid name
   */
  async renameModel(name: string, newName: string, actor: string): Promise<RegisteredModel> {
    checkModelName(newName, '/body/new_name');
    if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
    if (newName === name) return this.getModelSummary(name);
    if ((await repo.findModel(this.db, newName)) !== undefined) throw conflict(`registered model '${newName}' already exists`);
    const fromPrefix = `models/${name}/`;
    const toPrefix = `models/${newName}/`;
    const copied: string[] = [];
    try {
      for (const f of await this.ctx.artifacts.list(fromPrefix)) {
        const key = toPrefix + f.key.slice(fromPrefix.length);
        await this.ctx.artifacts.put(key, await this.ctx.artifacts.getBuffer(f.key));
        copied.push(key);
      }
      await this.db.transaction().execute(async (trx) => {
        const now = this.ctx.now();
        const row = await repo.lockModel(trx, name, now);
        if (row === undefined) throw modelNotFound(name);
        if (!(await repo.renameModel(trx, row, newName, now, fromPrefix, toPrefix))) throw conflict(`registered model '${newName}' already exists`);
        await repo.addHistory(trx, [history(newName, now, actor, 'model.rename', { from: name, to: newName })]);
        await repo.bumpGeneration(trx);
      });
    } catch (err) {
      // Only the copies made here: the new name's folder may hold another model's files by now.
      for (const key of copied) await this.ctx.artifacts.delete(key).catch((e: unknown) => this.ctx.log.warn({ err: e, key }, 'could not remove a copy after a failed rename'));
      throw err;
    }
    await this.deleteBundle(fromPrefix);
    this.ctx.events.emit(name);
    this.ctx.events.emit(newName);
    return this.getModelSummary(newName);
  }

  /**
   * Deletes a model with all its versions and bundles.
   * @throws AppError 409 while any version serves a stage, an alias or a traffic split
   */
  async deleteModel(name: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.ctx.now());
      if (row === undefined) throw modelNotFound(name);
      const versions = await repo.listVersions(trx, name);
      const serving = versions.filter((v) => isServingStage(v.stage as Stage)).map((v) => `${v.version} (${v.stage})`);
      if (serving.length > 0) throw conflict(`model '${name}' has versions in service: ${serving.join(', ')}; archive them first`);
      const aliases = await repo.listAliases(trx, [name]);
      if (aliases.length > 0) throw conflict(`model '${name}' has aliases (${aliases.map((a) => a.alias).join(', ')}); delete them first`);
      if ((await repo.findTraffic(trx, name)) !== undefined) throw conflict(`model '${name}' has a traffic split; clear it first`);
      await repo.deleteModel(trx, name);
      await repo.bumpGeneration(trx);
    });
    this.ctx.log.info({ model: name, actor }, 'registered model deleted');
    await this.deleteBundle(`models/${name}/`);
    this.ctx.events.emit(name);
  }

  // ---------------------------------------------------------------- versions

  /**
   * Registers a new version from ONNX bytes. The file is checked first (size, ONNX structure,
   * signature, loads in onnxruntime and runs on zero rows); only then is a version number taken,
   * so a refused file consumes no number (see {@link commitVersion} for the rest).
   * @throws AppError 400 (`invalid_model`) naming what is wrong with the file, 413 when too large
   */
  async registerVersion(name: string, bytes: Uint8Array, hints: SignatureHints, extras: RegisterExtras): Promise<ModelVersion> {
    checkModelName(name);
    if (bytes.length > this.maxModelBytes) {
      throw payloadTooLarge(`the model file has ${bytes.length} bytes; the limit is ${this.maxModelBytes}`);
    }
    const metrics = checkMetrics(extras.metrics ?? {});
    let prepared;
    try {
      // The ONNX parser (onnx-proto's generated code) is loaded by the first upload, not at start.
      const { prepareForServing } = await import('../onnx/prepare.ts');
      prepared = prepareForServing(bytes, hints);
      await this.smokeTest(prepared.bytes, prepared.signature);
    } catch (err) {
      if (err instanceof InvalidModelError) throw invalidModel(err.reason);
      if (err instanceof ModelRuntimeError) throw invalidModel(err.reason);
      throw err;
    }
    const servable = prepared.bytes;
    return this.commitVersion(
      name,
      {
        bytes: servable,
        size: servable.length,
        sha256: createHash('sha256').update(servable).digest('hex'),
        signature: prepared.signature,
        notes: { rewrites: prepared.info.rewrites, warnings: prepared.info.warnings },
      },
      metrics,
      extras,
    );
  }

  /**
   * Registers a model that was already checked where it was made (a training job exports it,
   * checks it in onnxruntime against the trained model and logs it to its run): the version points
   * at the stored file, which is neither copied, nor read, nor loaded again here.
   * @throws AppError 400 for an invalid name or metrics
   */
  async registerChecked(name: string, model: CheckedModel, extras: RegisterExtras): Promise<ModelVersion> {
    checkModelName(name);
    const metrics = checkMetrics(extras.metrics ?? {});
    return this.commitVersion(name, { ...model, notes: { rewrites: [], warnings: [] } }, metrics, extras);
  }

  /**
   * Gives a checked model a version number and its bundle, without file I/O inside a transaction
   * (on SQLite a transaction holds the database's one write lock): a short transaction takes the
   * next number, the bundle is written, and a second short transaction inserts the version. If
   * anything fails the bundle is deleted and the number handed back when no later registration
   * took the next one meanwhile; concurrent registrations get distinct numbers. The model is
   * created when it does not exist yet.
   */
  private async commitVersion(
    name: string,
    model: { readonly bytes?: Uint8Array; readonly artifactKey?: string; readonly size: number; readonly sha256: string; readonly signature: ModelSignature; readonly notes: unknown },
    metrics: Readonly<Record<string, number>>,
    extras: RegisterExtras,
  ): Promise<ModelVersion> {
    const now = this.ctx.now();
    const { version, created } = await this.db.transaction().execute(async (trx) => {
      const isNew = await repo.insertModelIfAbsent(trx, { name, description: null, tags: '{}', last_version: 0, created_at: now, updated_at: now });
      const row = await repo.lockModel(trx, name, now);
      if (row === undefined) throw new Error(`registered model '${name}' vanished during registration`);
      const next = row.last_version + 1;
      await repo.setLastVersion(trx, name, next);
      return { version: next, created: isNew };
    });
    const prefix = bundlePrefix(name, version);
    const reference = extras.reference === undefined ? undefined : JSON.stringify(extras.reference);
    try {
      let artifactKey = model.artifactKey;
      if (model.bytes !== undefined) {
        artifactKey = `${prefix}${BUNDLE_FILES.model}`;
        await this.ctx.artifacts.put(artifactKey, model.bytes);
      }
      if (artifactKey === undefined) throw new Error('a version needs model bytes or the key of a stored model');
      await this.ctx.artifacts.put(`${prefix}${BUNDLE_FILES.signature}`, Buffer.from(JSON.stringify(model.signature, null, 2)));
      if (reference !== undefined) await this.ctx.artifacts.put(`${prefix}${BUNDLE_FILES.reference}`, Buffer.from(reference));
      const key = artifactKey;
      await this.db.transaction().execute(async (trx) => {
        await repo.insertVersion(trx, {
          model: name,
          version,
          stage: 'None',
          description: extras.description ?? null,
          tags: JSON.stringify(extras.tags ?? {}),
          artifact_key: key,
          signature: JSON.stringify(model.signature),
          metrics: JSON.stringify(metrics),
          run_id: extras.runId ?? null,
          dataset_name: extras.dataset?.name ?? null,
          dataset_version: extras.dataset?.version ?? null,
          source: extras.source ?? 'upload',
          size: model.size,
          sha256: model.sha256,
          has_reference: reference === undefined ? 0 : 1,
          notes: JSON.stringify(model.notes),
          created_at: now,
          updated_at: now,
          created_by: extras.actor,
        });
        await repo.addHistory(trx, [
          ...(created ? [history(name, now, extras.actor, 'model.create')] : []),
          history(name, now, extras.actor, 'version.create', { version, to: extras.source ?? 'upload' }),
        ]);
        await repo.bumpGeneration(trx);
      });
    } catch (err) {
      await this.deleteBundle(prefix);
      await this.releaseVersionNumber(name, version, created).catch((releaseErr: unknown) =>
        this.ctx.log.warn({ err: releaseErr, model: name, version }, 'could not hand back a version number after a failed registration'),
      );
      throw err;
    }
    this.ctx.events.emit(name);
    return this.getVersion(name, version);
  }

  /** After a failed registration: the number goes back unless a later one was taken; a model created for it alone goes too. */
  private async releaseVersionNumber(name: string, version: number, created: boolean): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.ctx.now());
      if (row === undefined || row.last_version !== version) return;
      if (created && version === 1) await repo.deleteModel(trx, name);
      else await repo.setLastVersion(trx, name, version - 1);
    });
  }

  /**
   * Registers the file a run logged, from `runs:/<run_id>/<path>`: read from the artifact store
   * at `runs/<run_id>/artifacts/<path>` (where tracking stores run files). When `<path>` is a
   * folder (MLflow logs models as directories), its `model.onnx`, or its only `.onnx` file, is
   * used. The run id is recorded as the version's run.
   * @throws AppError 400 for a malformed source or when nothing is there
   */
  async registerFromRun(name: string, source: string, hints: SignatureHints, extras: RegisterExtras): Promise<ModelVersion> {
    const m = RUNS_SOURCE.exec(source);
    if (!m) throw invalidField('/body/source', "must be 'runs:/<run_id>/<path>'");
    const runId = m[1]!;
    const path = m[2]!.replace(/\/+$/, '');
    let key: string;
    try {
      key = validateKey(runArtifactKey(runId, path));
    } catch (err) {
      if (err instanceof InvalidArtifactKeyError) throw invalidField('/body/source', `path ${err.reason}`);
      throw err;
    }
    const file = await this.findRunModelFile(key);
    if (file === undefined) throw invalidField('/body/source', `run '${runId}' has no artifact '${path}' (looked for ${key})`);
    if (file.size > this.maxModelBytes) {
      throw payloadTooLarge(`the model file has ${file.size} bytes; the limit is ${this.maxModelBytes}`);
    }
    const bytes = await this.ctx.artifacts.getBuffer(file.key);
    return this.registerVersion(name, bytes, hints, { ...extras, runId: extras.runId ?? runId, source });
  }

  private async findRunModelFile(key: string): Promise<{ key: string; size: number } | undefined> {
    const direct = await this.ctx.artifacts.stat(key);
    if (direct !== undefined) return direct;
    const inside = (await this.ctx.artifacts.list(`${key}/`)).filter((f) => f.key.endsWith('.onnx'));
    const named = inside.find((f) => f.key === `${key}/model.onnx`);
    if (named !== undefined) return named;
    return inside.length === 1 ? inside[0] : undefined;
  }

  /** @throws AppError 404 */
  async getVersion(name: string, version: number): Promise<ModelVersion> {
    return readVersion(this.db, name, version);
  }


  /** Every version of a model, oldest first; optionally only one stage. @throws AppError 404 */
  async listVersions(name: string, stage?: Stage): Promise<ModelVersion[]> {
    const rows = stage === undefined ? await repo.listVersions(this.db, name) : await repo.versionsInStage(this.db, name, stage);
    if (rows.length === 0 && (await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
    const aliases = aliasesByVersion(await repo.listAliases(this.db, [name]));
    return rows.map((r) => toVersion(r, aliases.get(r.version) ?? []));
  }

  /** Changes a version's description and tags. @throws AppError 404 */
  async updateVersion(name: string, version: number, patch: MetadataPatch): Promise<ModelVersion> {
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const row = await repo.findVersion(trx, name, version);
      if (row === undefined) throw versionNotFound(name, version);
      await repo.updateVersion(trx, name, version, {
        updated_at: now,
        ...(patch.description === undefined ? {} : { description: patch.description }),
        ...(patch.tags === undefined ? {} : { tags: JSON.stringify(mergeTags(parseJsonObject(row.tags), patch.tags)) }),
      });
    });
    return this.getVersion(name, version);
  }

  /**
   * Deletes a version and its bundle. The number is never handed out again.
   * @throws AppError 409 while it is in Staging/Production, has an alias or is in the traffic split
   */
  async deleteVersion(name: string, version: number, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const row = await repo.findVersion(trx, name, version);
      if (row === undefined) throw versionNotFound(name, version);
      if (isServingStage(row.stage as Stage)) {
        throw conflict(`version ${version} of '${name}' is in ${row.stage}; move it to Archived or None first`);
      }
      const aliases = await repo.aliasesOfVersion(trx, name, version);
      if (aliases.length > 0) throw conflict(`version ${version} of '${name}' has aliases (${aliases.join(', ')}); move or delete them first`);
      const traffic = await repo.findTraffic(trx, name);
      if (traffic !== undefined && splitUses(parseSplit(traffic.split), version)) {
        throw conflict(`version ${version} of '${name}' is in the traffic split; change the split first`);
      }
      await repo.deleteVersion(trx, name, version);
      await repo.addHistory(trx, [history(name, now, actor, 'version.delete', { version, from: row.stage })]);
      await repo.bumpGeneration(trx);
    });
    await this.deleteBundle(bundlePrefix(name, version));
    this.ctx.events.emit(name);
  }

  /** The servable ONNX bytes of a version. @throws AppError 404 */
  async readArtifact(name: string, version: number): Promise<Buffer> {
    const v = await this.getVersion(name, version);
    return this.ctx.artifacts.getBuffer(v.artifactKey);
  }

  /** The version's `reference.json`, parsed, or `undefined` when it has none. @throws AppError 404 */
  async getReference(name: string, version: number): Promise<unknown> {
    const v = await this.getVersion(name, version);
    if (!v.hasReference) return undefined;
    const text = await this.ctx.artifacts.getBuffer(`${bundlePrefix(name, version)}${BUNDLE_FILES.reference}`);
    return JSON.parse(text.toString('utf8')) as unknown;
  }

  /** Stores (replacing) a version's `reference.json`. @throws AppError 404 */
  async setReference(name: string, version: number, reference: unknown): Promise<void> {
    await this.getVersion(name, version);
    await this.ctx.artifacts.put(`${bundlePrefix(name, version)}${BUNDLE_FILES.reference}`, Buffer.from(JSON.stringify(reference)));
    await this.db.transaction().execute(async (trx) => {
      const now = this.ctx.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      await repo.updateVersion(trx, name, version, { has_reference: 1, updated_at: now });
    });
  }

  /** Best effort: a bundle left behind is harmless (no row points at it) but is logged. */
  private async deleteBundle(prefix: string): Promise<void> {
    try {
      await this.ctx.artifacts.deletePrefix(prefix);
    } catch (err) {
      this.ctx.log.warn({ err, prefix }, 'could not delete model artifacts');
    }
  }

  private async summarise(rows: readonly RegisteredModelRow[]): Promise<RegisteredModel[]> {
    const names = rows.map((r) => r.name);
    const [latest, aliases] = await Promise.all([repo.latestPerStage(this.db, names), repo.listAliases(this.db, names)]);
    return rows.map((r) => {
      const perStage: StageLatest[] = latest
        .filter((l) => l.model === r.name)
        .map((l) => ({ stage: l.stage as Stage, version: l.version }))
        .sort((a, b) => a.version - b.version);
      const aliasMap: Record<string, number> = {};
      for (const a of aliases) if (a.model === r.name) aliasMap[a.alias] = a.version;
      return {
        name: r.name,
        description: r.description,
        tags: parseJsonObject(r.tags),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        latestVersion: perStage.length === 0 ? null : Math.max(...perStage.map((p) => p.version)),
        latestVersions: perStage,
        aliases: aliasMap,
      };
    });
  }
}
