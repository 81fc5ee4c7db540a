/**
 * Test support for serving: real ONNX models built with the exporter, an in-memory implementation
 * of our own `RegistryReader` interface over a real artifact store, and an app builder that wires
 * serving into the real platform (auth, errors, metrics).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp, type App } from '../../src/app.ts';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.ts';
import { loadConfig, type Config, type Stage } from '../../src/config.ts';
import type { PredictionCacheOptions } from '../../src/backends.ts';
import { closeContext, openContext, type AppContext } from '../../src/context.ts';
import type { LinearModel, Preprocessing } from '../../src/ml/types.ts';
import { exportModel } from '../../src/onnx/export.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import type { SignatureHints } from '../../src/onnx/signature.ts';
import type { Role } from '../../src/platform/auth.ts';
import { createLogger } from '../../src/platform/logging.ts';
import type { RegistryReader, ServableVersion, TrafficSplit, VersionSelector } from '../../src/registry/registry.types.ts';
import type { Serving, ServingOptions } from '../../src/serving/index.ts';

export const SHARED = path.resolve(import.meta.dirname, '../../../shared');
export const SAMPLES = path.join(SHARED, 'onnx-samples');
export const HAS_SAMPLES = existsSync(SAMPLES);

function numericPre(names: readonly string[]): Preprocessing {
  return { columns: names.map((name) => ({ name, kind: 'numeric' as const, fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false })) };
}

/**
 * A linear classifier over `names` with the given labels: softmax over `coef` rows (one per class)
 * or, with two labels and one row, logistic. Real ONNX bytes from the project's exporter.
 */
export function linearClassifier(names: readonly string[], labels: readonly (number | string)[], coef: readonly number[][], intercepts?: readonly number[]): Uint8Array {
  const nTargets = coef.length;
  const model: LinearModel = {
    kind: 'linear',
    task: 'classification',
    nFeatures: names.length,
    nTargets,
    coefficients: Float64Array.from(coef.flat()),
    intercepts: Float64Array.from(intercepts ?? coef.map(() => 0)),
    postTransform: nTargets === 1 ? 'logistic' : 'softmax',
    nClasses: labels.length,
  };
  return exportModel(model, numericPre(names), { featureNames: names, classLabels: labels, producerVersion: 'test' });
}

/** y = sum(coef_j * x_j) + intercept. */
export function linearRegressor(names: readonly string[], coef: readonly number[], intercept = 0): Uint8Array {
  const model: LinearModel = {
    kind: 'linear',
    task: 'regression',
    nFeatures: names.length,
    nTargets: 1,
    coefficients: Float64Array.from(coef),
    intercepts: Float64Array.from([intercept]),
    postTransform: 'none',
    nClasses: 0,
  };
  return exportModel(model, numericPre(names), { featureNames: names, classLabels: null, producerVersion: 'test' });
}

/** A model with one categorical feature `colour` (codes of red/green/blue) and one numeric `size`: y = 10*code + size. */
export function categoricalRegressor(): Uint8Array {
  const pre: Preprocessing = {
    columns: [
      { name: 'colour', kind: 'categorical', fill: Number.NaN, offset: 0, scale: 1, categories: ['red', 'green', 'blue'], oneHot: false },
      { name: 'size', kind: 'numeric', fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false },
    ],
  };
  const model: LinearModel = {
    kind: 'linear',
    task: 'regression',
    nFeatures: 2,
    nTargets: 1,
    coefficients: Float64Array.from([10, 1]),
    intercepts: Float64Array.from([0]),
    postTransform: 'none',
    nClasses: 0,
  };
  return exportModel(model, pre, { featureNames: ['colour', 'size'], classLabels: null, producerVersion: 'test' });
}

interface StoredVersion {
  version: number;
  stage: Stage;
  aliases: string[];
  servable: Omit<ServableVersion, 'stage' | 'aliases'>;
}

/**
 * In-memory implementation of OUR `RegistryReader` interface (not a mock of anything external):
 * versions live in a map, model bytes in the real artifact store, and every change bumps the
 * generation and notifies listeners, like the real registry does.
 */
export class MemoryRegistry implements RegistryReader {
  private readonly models = new Map<string, StoredVersion[]>();
  private readonly splits = new Map<string, TrafficSplit>();
  private readonly modelTags = new Map<string, Record<string, string>>();
  private gen = 0;
  private readonly listeners = new Set<(name: string) => void>();
  /** When false, changes are only visible through `generation()` (another replica made them). */
  notify = true;
  resolveCalls = 0;

  constructor(private readonly artifacts: ArtifactStore) {}

  /** Registers a new version from ONNX bytes; returns its number. */
  async register(name: string, bytes: Uint8Array, hints: SignatureHints = {}, stage: Stage = 'None'): Promise<number> {
    const prepared = prepareForServing(bytes, hints);
    const list = this.models.get(name) ?? [];
    const version = list.length + 1;
    const key = `models/${name}/${version}/model.onnx`;
    await this.artifacts.put(key, Buffer.from(prepared.bytes));
    list.push({
      version,
      stage: 'None',
      aliases: [],
      servable: { name, version, artifactKey: key, signature: prepared.signature, metrics: { accuracy: 0.9 }, runId: null, createdAt: new Date().toISOString() },
    });
    this.models.set(name, list);
    if (stage !== 'None') this.transition(name, version, stage);
    else this.changed(name);
    return version;
  }

  /** Moves a version to a stage, archiving the one that held it (Production/Staging are exclusive). */
  transition(name: string, version: number, stage: Stage): void {
    const list = this.models.get(name) ?? [];
    for (const v of list) {
      if (v.version === version) v.stage = stage;
      else if (v.stage === stage && stage !== 'None' && stage !== 'Archived') v.stage = 'Archived';
    }
    this.changed(name);
  }

  setAlias(name: string, alias: string, version: number): void {
    for (const v of this.models.get(name) ?? []) {
      v.aliases = v.aliases.filter((a) => a !== alias);
      if (v.version === version) v.aliases.push(alias);
    }
    this.changed(name);
  }

  /** Sets the registered model's tags; like the real registry, read at the next load of a version. */
  setModelTags(name: string, tags: Record<string, string>): void {
    this.modelTags.set(name, tags);
  }

  setTraffic(name: string, split: TrafficSplit | undefined): void {
    if (split === undefined) this.splits.delete(name);
    else this.splits.set(name, split);
    this.changed(name);
  }

  private changed(name: string): void {
    this.gen++;
    if (this.notify) for (const l of this.listeners) l(name);
  }

  resolve(name: string, selector: VersionSelector): Promise<ServableVersion | undefined> {
    this.resolveCalls++;
    const list = this.models.get(name) ?? [];
    let found: StoredVersion | undefined;
    if (selector.version !== undefined) found = list.find((v) => v.version === selector.version);
    else if (selector.stage !== undefined) found = [...list].reverse().find((v) => v.stage === selector.stage);
    else if (selector.alias !== undefined) found = list.find((v) => v.aliases.includes(selector.alias!));
    else found = list[list.length - 1];
    return Promise.resolve(
      found === undefined ? undefined : { ...found.servable, stage: found.stage, aliases: [...found.aliases], modelTags: { ...this.modelTags.get(name) } },
    );
  }

  traffic(name: string): Promise<TrafficSplit | undefined> {
    return Promise.resolve(this.splits.get(name));
  }

  generation(): Promise<number> {
    return Promise.resolve(this.gen);
  }

  onChange(listener: (modelName: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface ServingTestApp {
  readonly app: App;
  readonly ctx: AppContext;
  readonly config: Config;
  readonly registry: MemoryRegistry;
  readonly serving: Serving;
  readonly keys: Readonly<Record<Role, string>>;
  headers(role: Role): Record<string, string>;
  close(): Promise<void>;
}

export interface ServingTestOptions {
  readonly env?: Record<string, string>;
  /** Registers models before the app starts (so the default model loads at start). */
  readonly seed?: (registry: MemoryRegistry, dataDir: string) => Promise<void>;
  readonly serving?: ServingOptions;
  readonly cache?: PredictionCacheOptions;
}

/**
 * The real app of `buildApp` (platform auth, errors, metrics, health, serving) with serving
 * resolving models through the in-memory registry above.
 */
export async function buildServingApp(options: ServingTestOptions = {}): Promise<ServingTestApp> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-serving-'));
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '0', ...options.env });
  const log = createLogger(config, { pretty: false });
  // The registry serving resolves through is set once the artifact store exists (below).
  let registry: MemoryRegistry | undefined;
  const reader: RegistryReader = {
    resolve: (name, selector) => registry!.resolve(name, selector),
    traffic: (name) => registry!.traffic(name),
    generation: () => registry!.generation(),
    onChange: (listener) => registry!.onChange(listener),
  };
  const ctx = await openContext(config, log, {
    backends: options.cache === undefined ? {} : { predictionCache: options.cache },
    services: { keyRefreshMs: 60_000, servingRegistry: reader, serving: { pollMs: 50, sweepMs: 50, idleReleaseMs: 200, ...options.serving } },
  });
  try {
    registry = new MemoryRegistry(ctx.backends.artifacts);
    await options.seed?.(registry, dataDir);
    const keys = {} as Record<Role, string>;
    for (const role of ['read', 'predict', 'train', 'admin'] as const) keys[role] = (await ctx.services.keys.create(`test-${role}`, role, 'test')).key;
    // The real app from buildApp, whose serving resolves through the in-memory registry.
    const app = await buildApp(ctx);
    try {
      await app.ready();
      await ctx.services.start();
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    const memory = registry;
    return {
      app,
      ctx,
      config,
      registry: memory,
      serving: ctx.services.serving,
      keys,
      headers: (role) => ({ 'x-api-key': keys[role] }),
      async close() {
        await app.close();
        await closeContext(ctx);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await closeContext(ctx);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
