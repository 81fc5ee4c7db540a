import type { Stage } from '../config.ts';
import type { ModelSignature } from '../onnx/signature.ts';

/**
 * The contract between the registry (which owns versions, stages and aliases) and serving (which
 * owns loaded onnxruntime sessions). Serving never queries registry tables directly.
 */

/** Which version of a registered model a request addresses: at most one field set. */
export interface VersionSelector {
  readonly version?: number;
  readonly stage?: Stage;
  readonly alias?: string;
}

/** Everything serving needs to load and describe one model version. */
export interface ServableVersion {
  readonly name: string;
  readonly version: number;
  readonly stage: Stage;
  readonly aliases: readonly string[];
  /** Key of the servable (ZipMap-free) `model.onnx` in the artifact store. */
  readonly artifactKey: string;
  readonly signature: ModelSignature;
  /** Training/evaluation metrics recorded with the version (empty for uploads). */
  readonly metrics: Readonly<Record<string, number>>;
  readonly runId: string | null;
  readonly createdAt: string;
  /** sha-256 (hex) of the servable file: a content key for session caches. */
  readonly sha256?: string;
  /** Dataset version the model was trained on, when known. */
  readonly dataset?: { readonly name: string; readonly version: number | null } | null;
  /** Tags of the registered model (not of the version): serving reads its `modelplane.*` tunables here. */
  readonly modelTags?: Readonly<Record<string, string>>;
}

/** A weighted split of a model's default route, plus versions that get a shadow copy of traffic. */
export interface TrafficSplit {
  readonly routes: readonly { readonly version: number; readonly weight: number }[];
  readonly shadow: readonly number[];
}

export interface RegistryReader {
  /** The version a selector points at now, or `undefined`. No selector = latest version. */
  resolve(name: string, selector: VersionSelector): Promise<ServableVersion | undefined>;
  /** Traffic split of a model's default route, if one is set. */
  traffic(name: string): Promise<TrafficSplit | undefined>;
  /**
   * A number that increases on every stage, alias, traffic or version change of any model, in
   * this process or any replica sharing the store. Serving polls it (cheap single-row read) to
   * notice changes made elsewhere.
   */
  generation(): Promise<number>;
  /** Called in-process right after a change commits (so this replica reacts without polling). */
  onChange(listener: (modelName: string) => void): () => void;
  /**
   * A version's training reference (`reference.json`, parsed), `undefined` when it has none.
   * Optional: serving explains predictions (`?explain=true`) only through readers that have it.
   */
  getReference?(name: string, version: number): Promise<unknown>;
  /**
   * Whether a registered model of that name exists (with or without versions). Optional:
   * serving uses it to tell "no such model" from "a model with no version yet".
   */
  modelExists?(name: string): Promise<boolean>;
}
