/**
 * What the registry's services share: their dependencies, the change events that serving listens
 * to, and the mapping between rows and domain objects. Internal to the registry feature.
 */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Stage } from '../config.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import { AppError, badRequest, invalidField, notFound } from '../platform/errors.ts';
import type { Store } from '../store/database.ts';
import { reservedAlias, type HistoryEntry, type ModelVersion, type StoredTraffic } from './registry.model.ts';
import { isVersionNumber, registryRepository as repo, type Db, type ModelHistoryRow, type ModelVersionRow, type NewHistoryEntry } from './registry.repository.ts';
import type { ServableVersion, TrafficSplit } from './registry.types.ts';

/** What every registry service works with. */
export interface RegistryContext {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly log: Logger;
  readonly now: () => number;
  readonly events: RegistryEvents;
}

/** In-process change notifications: which model changed (serving refreshes its routes for it). */
export class RegistryEvents {
  private readonly listeners = new Set<(modelName: string) => void>();

  constructor(private readonly log: Logger) {}

  on(listener: (modelName: string) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(name: string): void {
    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (err) {
        this.log.warn({ err, model: name }, 'registry change listener failed');
      }
    }
  }
}

/** Weights must add up to 100 within this tolerance (they are percentages). */
const WEIGHT_TOLERANCE = 1e-6;

/** One version with its aliases. @throws AppError 404 naming the model or the version */
export async function readVersion(db: Db, name: string, version: number): Promise<ModelVersion> {
  const row = await repo.findVersion(db, name, version);
  if (row === undefined) {
    if ((await repo.findModel(db, name)) === undefined) throw modelNotFound(name);
    throw versionNotFound(name, version);
  }
  return toVersion(row, await repo.aliasesOfVersion(db, name, version));
}

/** A model's traffic split, `null` when none is set. @throws AppError 404 */
export async function readTraffic(db: Db, name: string): Promise<StoredTraffic | null> {
  const row = await repo.findTraffic(db, name);
  if (row === undefined) {
    if ((await repo.findModel(db, name)) === undefined) throw modelNotFound(name);
    return null;
  }
  return { ...parseSplit(row.split), updatedAt: row.updated_at, updatedBy: row.updated_by };
}

/** The version an alias names; the reserved `latest` and `v<n>` resolve to the newest version and version n. */
export async function aliasTarget(db: Db, name: string, alias: string): Promise<number | undefined> {
  const reserved = reservedAlias(alias);
  if (reserved?.kind === 'latest') return (await repo.latestVersion(db, name))?.version;
  if (reserved?.kind === 'version') return reserved.version;
  return (await repo.findAlias(db, name, alias))?.version;
}

export function modelNotFound(name: string): AppError {
  return notFound(`registered model '${name}' does not exist`);
}

export function versionNotFound(name: string, version: number): AppError {
  return notFound(`model '${name}' has no version ${version}`);
}

export function invalidModel(reason: string): AppError {
  return new AppError(400, 'invalid_model', `invalid model file: ${reason}`);
}

export function history(
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

export function toVersion(row: ModelVersionRow, aliases: readonly string[]): ModelVersion {
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

export function toHistory(row: ModelHistoryRow): HistoryEntry {
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

export function aliasesByVersion(rows: readonly { version: number; alias: string }[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of rows) {
    const list = out.get(r.version);
    if (list === undefined) out.set(r.version, [r.alias]);
    else list.push(r.alias);
  }
  return out;
}

export function parseJsonObject(text: string): Record<string, unknown> & Record<string, string> {
  const v = JSON.parse(text) as unknown;
  return (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, string>;
}

export function mergeTags(current: Readonly<Record<string, string>>, patch: Readonly<Record<string, string | null>>): Record<string, string> {
  const out: Record<string, string> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

export function checkMetrics(metrics: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`metric '${k}' must be a finite number`);
    out[k] = v;
  }
  return out;
}

/** Validates a split and returns it in canonical form (routes sorted by version, shadows sorted). */
export function checkSplit(split: TrafficSplit): TrafficSplit {
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

export function parseSplit(text: string): TrafficSplit {
  const v = JSON.parse(text) as Partial<TrafficSplit>;
  return { routes: v.routes ?? [], shadow: v.shadow ?? [] };
}

export function splitUses(split: TrafficSplit, version: number): boolean {
  return split.routes.some((r) => r.version === version) || split.shadow.includes(version);
}
