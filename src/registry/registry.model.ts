/**
 * Domain objects of the model registry and the naming/permission rules that do not need storage.
 * Replies are shaped from these (never from table rows); timestamps are epoch milliseconds here
 * and become ISO-8601 in the native routes (MLflow compatibility wants the milliseconds).
 */
import type { Stage } from '../config.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import type { Role } from '../platform/auth.ts';
import { invalidField } from '../platform/errors.ts';
import type { TrafficSplit } from './registry.types.ts';

export const STAGES: readonly Stage[] = ['None', 'Staging', 'Production', 'Archived'];

/** A dataset version a model was trained on or whose statistics are its drift reference. */
export interface DatasetRef {
  readonly name: string;
  /** `null` when the reference names the dataset without pinning a version. */
  readonly version: number | null;
}

/** Who changes the registry: the API key id is recorded in the history, the role is checked. */
export interface Actor {
  readonly keyId: string;
  readonly role: Role;
}

export interface ModelVersion {
  readonly name: string;
  readonly version: number;
  readonly stage: Stage;
  readonly description: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly aliases: readonly string[];
  /** Artifact key of the servable `model.onnx`; the bundle is the folder holding it. */
  readonly artifactKey: string;
  readonly signature: ModelSignature;
  readonly metrics: Readonly<Record<string, number>>;
  readonly runId: string | null;
  readonly dataset: DatasetRef | null;
  /** Where the file came from: `upload`, `runs:/<run_id>/<path>`, `training`, ... */
  readonly source: string;
  /** Size of the servable file in bytes. */
  readonly size: number;
  /** sha-256 (hex) of the servable file. */
  readonly sha256: string;
  /** Whether the bundle holds a `reference.json`. */
  readonly hasReference: boolean;
  /** Rewrites applied at registration (ZipMap removal, ...). */
  readonly rewrites: readonly string[];
  readonly warnings: readonly string[];
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Key id of the uploader. */
  readonly createdBy: string;
}

/** Highest version in one stage. */
export interface StageLatest {
  readonly stage: Stage;
  readonly version: number;
}

export interface RegisteredModel {
  readonly name: string;
  readonly description: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Highest existing version number, `null` when the model has none. */
  readonly latestVersion: number | null;
  /** The highest version in each stage that has one (MLflow's `latest_versions`). */
  readonly latestVersions: readonly StageLatest[];
  /** alias -> version */
  readonly aliases: Readonly<Record<string, number>>;
}

export interface RegisteredModelDetail extends RegisteredModel {
  readonly versions: readonly ModelVersion[];
  readonly traffic: StoredTraffic | null;
}

/** A traffic split with who set it and when. */
export interface StoredTraffic extends TrafficSplit {
  readonly updatedAt: number;
  readonly updatedBy: string;
}

/**
 * One audit entry. `action` is one of `model.create`, `model.rename` (from/to are the names), `version.create`, `version.delete`,
 * `stage` (from/to are stages), `alias` (from/to are version numbers, `null` = unset),
 * `traffic` (from/to are the split as JSON, `null` = none).
 */
export interface HistoryEntry {
  readonly id: number;
  readonly name: string;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly version: number | null;
  readonly alias: string | null;
  readonly from: string | null;
  readonly to: string | null;
}

/** A page of results and the offset of the next page, if any. */
export interface Page<T> {
  readonly items: T[];
  readonly nextOffset: number | undefined;
}

/**
 * Model names appear in URLs and artifact keys: letters, digits, `_`, `-`, `.` and inner spaces,
 * starting with a letter, digit or `_`, at most 200 characters.
 */
export const MODEL_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_. -]{0,198}[A-Za-z0-9_.-])?$/;

/** @throws AppError 400 for a name the registry cannot store */
export function checkModelName(name: string, path = '/params/name'): string {
  if (!MODEL_NAME.test(name)) {
    throw invalidField(path, 'model names have 1 to 200 characters: letters, digits, _, -, . and inner spaces, starting with a letter, digit or _');
  }
  return name;
}

/** MLflow's alias rules: word characters and `-`, at most 255, `latest` and `v<digits>` reserved. */
const ALIAS = /^[A-Za-z0-9_-]{1,255}$/;
const VERSION_ALIAS = /^v(\d+)$/i;

/** @throws AppError 400 when `alias` may not be assigned */
export function checkAliasName(alias: string, path = '/params/alias'): string {
  if (!ALIAS.test(alias)) throw invalidField(path, 'aliases have 1 to 255 characters: letters, digits, _ and -');
  if (alias.toLowerCase() === 'latest') throw invalidField(path, "'latest' is reserved: it always means the newest version");
  if (VERSION_ALIAS.test(alias)) throw invalidField(path, `'${alias}' is reserved: v<number> addresses that version number`);
  return alias;
}

/**
 * The version a reserved alias denotes without being stored: `latest` (the newest version) or
 * `v<n>` (version n). `undefined` for ordinary aliases.
 */
export function reservedAlias(alias: string): { kind: 'latest' } | { kind: 'version'; version: number } | undefined {
  if (alias.toLowerCase() === 'latest') return { kind: 'latest' };
  const m = VERSION_ALIAS.exec(alias);
  return m ? { kind: 'version', version: Number(m[1]) } : undefined;
}

/** Stages in which a version serves traffic (and so cannot be deleted). */
export function isServingStage(stage: Stage): boolean {
  return stage === 'Staging' || stage === 'Production';
}

/**
 * Least role for a stage transition: `admin` to enter Production or Archived and to leave
 * Production (taking a version out of Production changes what production traffic gets);
 * `train` for the rest.
 */
export function roleForTransition(from: Stage, to: Stage): Role {
  return to === 'Production' || to === 'Archived' || from === 'Production' ? 'admin' : 'train';
}

export function isStage(value: string): value is Stage {
  return (STAGES as readonly string[]).includes(value);
}
