/**
 * The model registry's rules: registration (validate, then allocate a version and store the
 * bundle atomically), stages, aliases, traffic splits, tags and the audit history. Also the
 * `RegistryReader` that serving resolves versions through.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { InvalidArtifactKeyError } from '../artifacts/errors.ts';
import { validateKey } from '../artifacts/keys.ts';
import type { Stage } from '../config.ts';
import { InvalidModelError } from '../onnx/model-file.ts';
import { prepareForServing } from '../onnx/prepare.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { ModelSignature, SignatureHints } from '../onnx/signature.ts';
import { roleAllows } from '../platform/auth.ts';
import { AppError, badRequest, conflict, forbidden, invalidField, notFound, payloadTooLarge } from '../platform/errors.ts';
import type { Store } from '../store/database.ts';
import { ModelRuntimeError, onnxSmokeTest, type ModelSmokeTest } from './model-check.ts';
import {
  checkAliasName,
  checkModelName,
  isServingStage,
  isStage,
  reservedAlias,
  roleForTransition,
  type Actor,
  type DatasetRef,
  type HistoryEntry,
  type ModelVersion,
  type Page,
  type RegisteredModel,
  type RegisteredModelDetail,
  type StageLatest,
  type StoredTraffic,
} from './registry.model.ts';
import {
  isVersionNumber,
  registryRepository as repo,
  type ModelHistoryRow,
  type ModelVersionRow,
  type NewHistoryEntry,
  type RegisteredModelRow,
} from './registry.repository.ts';
import type { RegistryReader, ServableVersion, TrafficSplit, VersionSelector } from './registry.types.ts';

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

export interface RegistryServiceOptions {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly log: Logger;
  /** Largest model file accepted, in bytes (the server's body limit). */
  readonly maxModelBytes: number;
  /** onnxruntime, for the check of uploaded models. */
  readonly onnx: OnnxRuntime;
  /** Loads and runs a model once before it is accepted; default: a dummy run in `onnx`. */
  readonly smokeTest?: ModelSmokeTest;
  /** Clock (tests). */
  readonly now?: () => number;
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

/** Outcome of a stage transition. */
export interface TransitionResult {
  readonly version: ModelVersion;
  /** Versions moved to Archived by `archiveExistingVersions`. */
  readonly archived: readonly number[];
}

type ChangeListener = (modelName: string) => void;

const RUNS_SOURCE = /^runs:\/([A-Za-z0-9_-]{1,128})\/(.+)$/;
/** Weights must add up to 100 within this tolerance (they are percentages). */
const WEIGHT_TOLERANCE = 1e-6;

/**
 * Registered models, versions, stages, aliases, traffic and history. Every change runs in one
 * transaction that also bumps the registry generation, then notifies in-process listeners.
 */
export class RegistryService implements RegistryReader {
  private readonly store: Store;
  private readonly artifacts: ArtifactStore;
  private readonly log: Logger;
  private readonly maxModelBytes: number;
  private readonly smokeTest: ModelSmokeTest;
  private readonly now: () => number;
  private readonly listeners = new Set<ChangeListener>();

  constructor(options: RegistryServiceOptions) {
    this.store = options.store;
    this.artifacts = options.artifacts;
    this.log = options.log;
    this.maxModelBytes = options.maxModelBytes;
    this.smokeTest = options.smokeTest ?? onnxSmokeTest(options.onnx);
    this.now = options.now ?? Date.now;
  }

  private get db() {
    return this.store.db;
  }

  // ---------------------------------------------------------------- registered models

  /**
   * Creates an empty registered model.
   * @throws AppError 409 when the name is taken, 400 for an invalid name
   */
  async createModel(name: string, options: { description?: string | null; tags?: Readonly<Record<string, string>> }, actor: string): Promise<RegisteredModel> {
    checkModelName(name, '/body/name');
    const now = this.now();
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
    const [versions, traffic] = await Promise.all([this.listVersions(name), this.getTraffic(name)]);
    return { ...summary, versions, traffic };
  }

  /** Changes a model's description and tags. @throws AppError 404 */
  async updateModel(name: string, patch: MetadataPatch): Promise<RegisteredModel> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.now());
      if (row === undefined) throw modelNotFound(name);
      await repo.updateModel(trx, name, {
        ...(patch.description === undefined ? {} : { description: patch.description }),
        ...(patch.tags === undefined ? {} : { tags: JSON.stringify(mergeTags(parseJsonObject(row.tags), patch.tags)) }),
      });
    });
    return this.getModelSummary(name);
  }

  /**
   * Deletes a model with all its versions and bundles.
   * @throws AppError 409 while any version serves a stage, an alias or a traffic split
   */
  async deleteModel(name: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.now());
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
    this.log.info({ model: name, actor }, 'registered model deleted');
    await this.deleteBundle(`models/${name}/`);
    this.emit(name);
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
    const now = this.now();
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
        await this.artifacts.put(artifactKey, model.bytes);
      }
      if (artifactKey === undefined) throw new Error('a version needs model bytes or the key of a stored model');
      await this.artifacts.put(`${prefix}${BUNDLE_FILES.signature}`, Buffer.from(JSON.stringify(model.signature, null, 2)));
      if (reference !== undefined) await this.artifacts.put(`${prefix}${BUNDLE_FILES.reference}`, Buffer.from(reference));
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
        this.log.warn({ err: releaseErr, model: name, version }, 'could not hand back a version number after a failed registration'),
      );
      throw err;
    }
    this.emit(name);
    return this.getVersion(name, version);
  }

  /** After a failed registration: the number goes back unless a later one was taken; a model created for it alone goes too. */
  private async releaseVersionNumber(name: string, version: number, created: boolean): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await repo.lockModel(trx, name, this.now());
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
    const bytes = await this.artifacts.getBuffer(file.key);
    return this.registerVersion(name, bytes, hints, { ...extras, runId: extras.runId ?? runId, source });
  }

  private async findRunModelFile(key: string): Promise<{ key: string; size: number } | undefined> {
    const direct = await this.artifacts.stat(key);
    if (direct !== undefined) return direct;
    const inside = (await this.artifacts.list(`${key}/`)).filter((f) => f.key.endsWith('.onnx'));
    const named = inside.find((f) => f.key === `${key}/model.onnx`);
    if (named !== undefined) return named;
    return inside.length === 1 ? inside[0] : undefined;
  }

  /** @throws AppError 404 */
  async getVersion(name: string, version: number): Promise<ModelVersion> {
    const row = await repo.findVersion(this.db, name, version);
    if (row === undefined) throw await this.missingVersion(name, version);
    return toVersion(row, await repo.aliasesOfVersion(this.db, name, version));
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
      const now = this.now();
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
      const now = this.now();
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
    this.emit(name);
  }

  /** The servable ONNX bytes of a version. @throws AppError 404 */
  async readArtifact(name: string, version: number): Promise<Buffer> {
    const v = await this.getVersion(name, version);
    return this.artifacts.getBuffer(v.artifactKey);
  }

  /** The version's `reference.json`, parsed, or `undefined` when it has none. @throws AppError 404 */
  async getReference(name: string, version: number): Promise<unknown> {
    const v = await this.getVersion(name, version);
    if (!v.hasReference) return undefined;
    const text = await this.artifacts.getBuffer(`${bundlePrefix(name, version)}${BUNDLE_FILES.reference}`);
    return JSON.parse(text.toString('utf8')) as unknown;
  }

  /** Stores (replacing) a version's `reference.json`. @throws AppError 404 */
  async setReference(name: string, version: number, reference: unknown): Promise<void> {
    await this.getVersion(name, version);
    await this.artifacts.put(`${bundlePrefix(name, version)}${BUNDLE_FILES.reference}`, Buffer.from(JSON.stringify(reference)));
    await this.db.transaction().execute(async (trx) => {
      const now = this.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      await repo.updateVersion(trx, name, version, { has_reference: 1, updated_at: now });
    });
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
      const now = this.now();
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
    if (changed) this.emit(name);
    return { version: await this.getVersion(name, version), archived };
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
      const now = this.now();
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
    if (changed) this.emit(name);
    return this.getVersion(name, version);
  }

  /** Removes an alias. @throws AppError 404 when the model or alias does not exist */
  async deleteAlias(name: string, alias: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const now = this.now();
      if ((await repo.lockModel(trx, name, now)) === undefined) throw modelNotFound(name);
      const old = await repo.findAlias(trx, name, alias);
      if (old === undefined) throw notFound(`model '${name}' has no alias '${alias}'`);
      await repo.deleteAlias(trx, name, alias);
      await repo.addHistory(trx, [history(name, now, actor, 'alias', { version: old.version, alias, from: String(old.version), to: null })]);
      await repo.bumpGeneration(trx);
    });
    this.emit(name);
  }

  /**
   * The version an alias points at. The reserved `latest` and `v<n>` resolve to the newest
   * version and version n. @throws AppError 404
   */
  async getAlias(name: string, alias: string): Promise<ModelVersion> {
    const version = await this.aliasTarget(name, alias);
    if (version === undefined) {
      if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
      throw notFound(`model '${name}' has no alias '${alias}'`);
    }
    return this.getVersion(name, version);
  }

  private async aliasTarget(name: string, alias: string): Promise<number | undefined> {
    const reserved = reservedAlias(alias);
    if (reserved?.kind === 'latest') return (await repo.latestVersion(this.db, name))?.version;
    if (reserved?.kind === 'version') return reserved.version;
    return (await repo.findAlias(this.db, name, alias))?.version;
  }

  // ---------------------------------------------------------------- traffic

  /** The model's traffic split, `null` when none is set. @throws AppError 404 */
  async getTraffic(name: string): Promise<StoredTraffic | null> {
    const row = await repo.findTraffic(this.db, name);
    if (row === undefined) {
      if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
      return null;
    }
    return { ...parseSplit(row.split), updatedAt: row.updated_at, updatedBy: row.updated_by };
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
      const now = this.now();
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
    if (changed) this.emit(name);
    return this.getTraffic(name);
  }

  // ---------------------------------------------------------------- history

  /** Audit entries of a model, newest first. @throws AppError 404 */
  async history(name: string, offset: number, limit: number): Promise<Page<HistoryEntry>> {
    if ((await repo.findModel(this.db, name)) === undefined) throw modelNotFound(name);
    const rows = await repo.listHistory(this.db, name, offset, limit + 1);
    return { items: rows.slice(0, limit).map(toHistory), nextOffset: rows.length > limit ? offset + limit : undefined };
  }

  // ---------------------------------------------------------------- RegistryReader

  /** {@inheritDoc RegistryReader.resolve} */
  async resolve(name: string, selector: VersionSelector): Promise<ServableVersion | undefined> {
    const given = [selector.version, selector.stage, selector.alias].filter((s) => s !== undefined).length;
    if (given > 1) throw badRequest('give at most one of version, stage and alias');
    let row: ModelVersionRow | undefined;
    if (selector.version !== undefined) row = await repo.findVersion(this.db, name, selector.version);
    else if (selector.stage !== undefined) row = await repo.latestVersion(this.db, name, selector.stage);
    else if (selector.alias !== undefined) {
      const version = await this.aliasTarget(name, selector.alias);
      row = version === undefined ? undefined : await repo.findVersion(this.db, name, version);
    } else row = await repo.latestVersion(this.db, name);
    if (row === undefined) return undefined;
    const [aliases, model] = await Promise.all([repo.aliasesOfVersion(this.db, name, row.version), repo.findModel(this.db, name)]);
    const v = toVersion(row, aliases);
    return { ...toServable(v), modelTags: model === undefined ? {} : parseJsonObject(model.tags) };
  }

  /** {@inheritDoc RegistryReader.traffic} */
  async traffic(name: string): Promise<TrafficSplit | undefined> {
    const row = await repo.findTraffic(this.db, name);
    return row === undefined ? undefined : parseSplit(row.split);
  }

  /** {@inheritDoc RegistryReader.generation} */
  async generation(): Promise<number> {
    return repo.generation(this.db);
  }

  /** {@inheritDoc RegistryReader.onChange} */
  onChange(listener: (modelName: string) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // ---------------------------------------------------------------- internals

  private emit(name: string): void {
    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (err) {
        this.log.warn({ err, model: name }, 'registry change listener failed');
      }
    }
  }

  /** Best effort: a bundle left behind is harmless (no row points at it) but is logged. */
  private async deleteBundle(prefix: string): Promise<void> {
    try {
      await this.artifacts.deletePrefix(prefix);
    } catch (err) {
      this.log.warn({ err, prefix }, 'could not delete model artifacts');
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

  /** 404 naming the model when it is the model that is missing. */
  private async missingVersion(name: string, version: number): Promise<AppError> {
    if ((await repo.findModel(this.db, name)) === undefined) return modelNotFound(name);
    return versionNotFound(name, version);
  }
}

function modelNotFound(name: string): AppError {
  return notFound(`registered model '${name}' does not exist`);
}

function versionNotFound(name: string, version: number): AppError {
  return notFound(`model '${name}' has no version ${version}`);
}

function invalidModel(reason: string): AppError {
  return new AppError(400, 'invalid_model', `invalid model file: ${reason}`);
}

function history(
  model: string,
  at: number,
  actor: string,
  action: string,
  fields: { version?: number; alias?: string; from?: string | null; to?: string | null } = {},
): NewHistoryEntry {
  return {
    model,
    at,
    actor,
    action,
    version: fields.version ?? null,
    alias: fields.alias ?? null,
    from_value: fields.from ?? null,
    to_value: fields.to ?? null,
  };
}

function toVersion(row: ModelVersionRow, aliases: readonly string[]): ModelVersion {
  const notes = parseJsonObject(row.notes) as { rewrites?: string[]; warnings?: string[] };
  return {
    name: row.model,
    version: row.version,
    stage: row.stage as Stage,
    description: row.description,
    tags: parseJsonObject(row.tags),
    aliases,
    artifactKey: row.artifact_key,
    signature: JSON.parse(row.signature) as ModelSignature,
    metrics: parseJsonObject(row.metrics) as Record<string, number>,
    runId: row.run_id,
    dataset: row.dataset_name === null ? null : { name: row.dataset_name, version: row.dataset_version },
    source: row.source,
    size: row.size,
    sha256: row.sha256,
    hasReference: row.has_reference === 1,
    rewrites: notes.rewrites ?? [],
    warnings: notes.warnings ?? [],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
  };
}

/** The reader's view of a version (what serving loads). */
export function toServable(v: ModelVersion): ServableVersion {
  return {
    name: v.name,
    version: v.version,
    stage: v.stage,
    aliases: v.aliases,
    artifactKey: v.artifactKey,
    signature: v.signature,
    metrics: v.metrics,
    runId: v.runId,
    createdAt: new Date(v.createdAt).toISOString(),
    sha256: v.sha256,
    dataset: v.dataset,
  };
}

function toHistory(row: ModelHistoryRow): HistoryEntry {
  return {
    id: Number(row.id),
    name: row.model,
    at: row.at,
    actor: row.actor,
    action: row.action,
    version: row.version,
    alias: row.alias,
    from: row.from_value,
    to: row.to_value,
  };
}

function aliasesByVersion(rows: readonly { version: number; alias: string }[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of rows) {
    const list = out.get(r.version);
    if (list === undefined) out.set(r.version, [r.alias]);
    else list.push(r.alias);
  }
  return out;
}

function parseJsonObject(text: string): Record<string, unknown> & Record<string, string> {
  const v = JSON.parse(text) as unknown;
  return (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, string>;
}

function mergeTags(current: Readonly<Record<string, string>>, patch: Readonly<Record<string, string | null>>): Record<string, string> {
  const out: Record<string, string> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function checkMetrics(metrics: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`metric '${k}' must be a finite number`);
    out[k] = v;
  }
  return out;
}

/** Validates a split and returns it in canonical form (routes sorted by version, shadows sorted). */
function checkSplit(split: TrafficSplit): TrafficSplit {
  const seen = new Set<number>();
  const use = (v: number, path: string): void => {
    if (!isVersionNumber(v)) throw invalidField(path, 'must be a version number');
    if (seen.has(v)) throw invalidField(path, `version ${v} appears more than once in the split`);
    seen.add(v);
  };
  let total = 0;
  split.routes.forEach((r, i) => {
    use(r.version, `/body/routes/${i}/version`);
    if (!Number.isFinite(r.weight) || r.weight <= 0 || r.weight > 100) {
      throw invalidField(`/body/routes/${i}/weight`, 'must be a percentage > 0 and <= 100');
    }
    total += r.weight;
  });
  split.shadow.forEach((v, i) => use(v, `/body/shadow/${i}`));
  if (split.routes.length > 0 && Math.abs(total - 100) > WEIGHT_TOLERANCE) {
    throw invalidField('/body/routes', `weights are percentages and must add up to 100 (they add up to ${total})`);
  }
  return {
    routes: [...split.routes].map((r) => ({ version: r.version, weight: r.weight })).sort((a, b) => a.version - b.version),
    shadow: [...split.shadow].sort((a, b) => a - b),
  };
}

function parseSplit(text: string): TrafficSplit {
  const v = JSON.parse(text) as Partial<TrafficSplit>;
  return { routes: v.routes ?? [], shadow: v.shadow ?? [] };
}

function splitUses(split: TrafficSplit, version: number): boolean {
  return split.routes.some((r) => r.version === version) || split.shadow.includes(version);
}
