/**
 * Which loaded model answers a request, and keeping that answer current without I/O on the hot path.
 *
 * A routing table maps each selector seen so far (default model, `?model=` with or without
 * version/stage/alias) to loaded sessions. A hit is a `Map.get`; only the first request for a
 * selector waits for the registry and the artifact store. The table is refreshed off the request
 * path when the registry says something changed: in-process through `onChange`, and from other
 * replicas by polling `generation()` about once a second. A refresh loads and warms the new
 * session first and then swaps the table entry, so traffic moves only to a ready session; requests
 * already holding the old session finish on it, and an unreferenced session is released after an
 * idle period once nothing is in flight on it.
 */
import type { Logger } from 'pino';
import type { Config, Stage } from '../config.ts';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { prepareForServing } from '../onnx/prepare.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import { AppError, notFound, unavailable } from '../platform/errors.ts';
import type { RegistryReader, ServableVersion, VersionSelector } from '../registry/registry.types.ts';
import { LoadedModel, type ModelIdentity } from './loaded-model.ts';
import type { ServingMetrics } from './metrics.ts';
import type { ModelFileSource } from './model-source.ts';
import { tunablesFromTags, type ModelTunables } from './model-tunables.ts';
import { createRuntime, type Device } from './runtime.ts';

/**
 * Tunables of serving; every field has a default. A registered model's tags
 * (`modelplane.max_queue_delay_us`, `modelplane.max_batch_size`, see `model-tunables.ts`) override
 * `maxQueueDelayUs` and `maxBatchRows` for that model's versions.
 */
export interface ServingOptions {
  /** Most rows per onnxruntime run when packing requests. Default `MAX_BATCH_SIZE`. */
  readonly maxBatchRows?: number;
  /** Most rows waiting per model before requests get 503. Default 8 x the model's `maxBatchRows` (at least 4096). */
  readonly maxQueueRows?: number;
  /** Triton-style queue delay in microseconds for every model. Default 0 (no added delay). */
  readonly maxQueueDelayUs?: number;
  /** Registry generation polling period. Default 1000 ms. */
  readonly pollMs?: number;
  /** An unreferenced session is released after this long without use. Default 120 s. */
  readonly idleReleaseMs?: number;
  /** Period of the release sweep (and of the coarse clock). Default 5 s. */
  readonly sweepMs?: number;
  /** onnxruntime intra-op threads per session. Default 1. */
  readonly intraOpThreads?: number;
  /** Run sessions in the inference thread instead of on the event loop (`INFERENCE_THREAD`). Default false. */
  readonly inferenceThread?: boolean;
}

/** What a request asks for in `?model=&version=&stage=&alias=`. */
export interface ModelQuery {
  readonly model?: string;
  readonly version?: number;
  readonly stage?: Stage;
  readonly alias?: string;
}

type RouteKind = 'default' | 'named' | 'version' | 'stage' | 'alias';

interface RouteSpec {
  readonly kind: RouteKind;
  readonly name: string;
  readonly selector: VersionSelector;
}

interface RouteEntry {
  readonly key: string;
  readonly spec: RouteSpec;
  choices: LoadedModel[];
  /** Cumulative weights of `choices` (traffic splits); empty for one choice. */
  cumulative: number[];
  shadows: LoadedModel[];
  lastTick: number;
}

interface Target {
  readonly versions: { readonly v: ServableVersion; readonly weight: number }[];
  readonly shadows: ServableVersion[];
}

/** The micro-batching settings a loaded model runs with. */
export interface BatchingSettings {
  readonly maxBatchRows: number;
  readonly maxQueueRows: number;
  readonly maxQueueDelayUs: number;
}

/** Dependencies of {@link ServingService}. */
export interface ServingDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly artifacts: ArtifactStore;
  readonly onnx: OnnxRuntime;
  readonly metrics: ServingMetrics;
  readonly registry: RegistryReader | undefined;
  /** `MODEL_PATH` source in single-file mode. */
  readonly file: ModelFileSource | undefined;
  /** Told whether the default model is loaded whenever routes change (drives `model_loaded`). */
  readonly onStatus?: (defaultLoaded: boolean) => void;
}

export class ServingService {
  private readonly routes = new Map<string, RouteEntry>();
  /** The default route, kept outside the map so the commonest request does no key building. */
  private defaultRoute: RouteEntry | undefined;
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private readonly materializing = new Map<string, Promise<RouteEntry>>();
  private readonly retired = new Set<LoadedModel>();
  private tick = 0;
  private lastGeneration: number | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private fileTag: string | undefined;
  private fileLoads = 0;
  private closed = false;
  /** Usage summary for `/info`. */
  readonly usage = { reloads: 0, reload_failures: 0, predictions: 0, failures: 0, latency_ms_total: 0, requests: 0 };
  private readonly maxBatchRows: number;
  private readonly idleTicks: number;
  private readonly device: Device;

  constructor(
    private readonly deps: ServingDeps,
    private readonly options: ServingOptions = {},
  ) {
    this.maxBatchRows = options.maxBatchRows ?? deps.config.maxBatchSize;
    this.idleTicks = Math.max(1, Math.ceil((options.idleReleaseMs ?? 120_000) / (options.sweepMs ?? 5000)));
    this.device = deps.config.model.device;
  }

  /** Whether a default model is configured (`MODEL_PATH` or `MODEL_NAME`). */
  get hasDefault(): boolean {
    return this.deps.file !== undefined || this.deps.config.model.name !== undefined;
  }

  /** The default model now, if loaded. */
  get defaultModel(): LoadedModel | undefined {
    return this.defaultRoute?.choices[0];
  }

  /** The registered model `/predict/staging` addresses when no `?model=` is given. */
  stagingModelName(): string {
    const name = this.deps.config.model.name;
    if (name === undefined) {
      throw new AppError(400, 'validation_error', '/predict/staging needs ?model=<name> when MODEL_NAME is not set', [
        { path: '/querystring/model', message: 'is required when MODEL_NAME is not set' },
      ]);
    }
    return name;
  }

  /** The micro-batching settings `model` was loaded with (server-wide options and its model's tags). */
  batchingOf(model: LoadedModel): BatchingSettings {
    return model.batcher.settings();
  }

  /**
   * The training reference (`reference.json`) of a loaded registry version, for explanations;
   * `undefined` for `MODEL_PATH` files, versions without one, and registries that keep none.
   */
  async trainingReference(identity: ModelIdentity): Promise<unknown> {
    const registry = this.deps.registry;
    const version = Number(identity.version);
    if (registry?.getReference === undefined || !Number.isInteger(version)) return undefined;
    return registry.getReference(identity.name, version);
  }

  /** Every loaded model (for `/health/model`). */
  loadedModels(): LoadedModel[] {
    return [...this.loaded.values()];
  }

  /**
   * Loads the default model and starts the refresh timers. In single-file mode a file that cannot
   * be read or served throws (the process must not start); in registry mode a default model that
   * is not registered yet only leaves `/ready` at 503 until it appears.
   */
  async start(): Promise<void> {
    const { registry, file, config, log } = this.deps;
    if (file !== undefined) {
      await this.loadFile(true);
      const ttl = config.model.cacheTtlSeconds;
      if (ttl > 0) this.every(ttl * 1000, () => this.loadFile(false));
    }
    if (registry !== undefined) {
      this.unsubscribe = registry.onChange((name) => this.scheduleRefresh(name));
      try {
        this.lastGeneration = await registry.generation();
      } catch (err) {
        log.warn({ err }, 'model registry not reachable at start');
      }
      if (file === undefined && config.model.name !== undefined) {
        try {
          await this.materializeDefault();
        } catch (err) {
          log.warn({ model: config.model.name, reason: (err as Error).message }, 'default model not loaded yet; /ready answers 503 until it is servable');
        }
      }
      this.every(this.options.pollMs ?? 1000, () => this.poll());
    }
    this.every(this.options.sweepMs ?? 5000, () => Promise.resolve(this.sweep()));
  }

  /** Stops timers and releases every session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unsubscribe?.();
    await this.refreshing?.catch(() => undefined);
    const all = new Set<LoadedModel>([...this.loaded.values(), ...this.retired]);
    this.loaded.clear();
    this.retired.clear();
    this.routes.clear();
    this.defaultRoute = undefined;
    for (const m of all) await this.release(m);
    await this.deps.file?.close();
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || this.closed) return;
      running = true;
      fn()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'serving background task failed'))
        .finally(() => {
          running = false;
        });
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  // ---------------------------------------------------------------- hot path

  /**
   * The model for a request: synchronous for any selector seen before (the normal case), a
   * promise the first time (registry look-up and session load).
   * @throws AppError 404 for an unknown model/version/stage/alias, 503 when no default is servable
   */
  pick(query: ModelQuery): LoadedModel | Promise<LoadedModel> {
    const name = query.model;
    if (name === undefined) {
      if (query.version !== undefined || query.stage !== undefined || query.alias !== undefined) {
        const def = this.deps.config.model.name;
        if (def === undefined || this.deps.file !== undefined) {
          throw new AppError(400, 'validation_error', 'version, stage and alias need ?model=<name>', [{ path: '/querystring/model', message: 'is required with version, stage or alias' }]);
        }
        return this.pickNamed(def, query);
      }
      const route = this.defaultRoute;
      if (route !== undefined) return this.choose(route);
      return this.materializeDefault().then((r) => this.choose(r));
    }
    return this.pickNamed(name, query);
  }

  private pickNamed(name: string, query: ModelQuery): LoadedModel | Promise<LoadedModel> {
    let spec: RouteSpec;
    let key: string;
    const set = (query.version !== undefined ? 1 : 0) + (query.stage !== undefined ? 1 : 0) + (query.alias !== undefined ? 1 : 0);
    if (set > 1) throw new AppError(400, 'validation_error', 'give at most one of version, stage, alias', [{ path: '/querystring', message: 'at most one of version, stage, alias' }]);
    if (query.version !== undefined) {
      key = `v\u0000${name}\u0000${query.version}`;
      spec = { kind: 'version', name, selector: { version: query.version } };
    } else if (query.stage !== undefined) {
      key = `s\u0000${name}\u0000${query.stage}`;
      spec = { kind: 'stage', name, selector: { stage: query.stage } };
    } else if (query.alias !== undefined) {
      key = `a\u0000${name}\u0000${query.alias}`;
      spec = { kind: 'alias', name, selector: { alias: query.alias } };
    } else {
      key = `n\u0000${name}`;
      spec = { kind: 'named', name, selector: {} };
    }
    const route = this.routes.get(key);
    if (route !== undefined) return this.choose(route);
    return this.materialize(key, spec).then((r) => this.choose(r));
  }

  private choose(route: RouteEntry): LoadedModel {
    route.lastTick = this.tick;
    const choices = route.choices;
    let m = choices[0]!;
    if (choices.length > 1) {
      const r = Math.random() * route.cumulative[route.cumulative.length - 1]!;
      for (let i = 0; i < choices.length; i++) {
        if (r < route.cumulative[i]!) {
          m = choices[i]!;
          break;
        }
      }
    }
    m.lastUsedTick = this.tick;
    return m;
  }

  /** Shadow versions of the route that served `model`, if any (traffic split shadows). */
  shadowsOf(query: ModelQuery): readonly LoadedModel[] {
    const route = query.model === undefined ? this.defaultRoute : this.routes.get(`n\u0000${query.model}`);
    return route === undefined || route.shadows.length === 0 || query.version !== undefined || query.stage !== undefined || query.alias !== undefined ? NONE : route.shadows;
  }

  // ---------------------------------------------------------------- resolution (off the hot path)

  private materializeDefault(): Promise<RouteEntry> {
    if (this.deps.file !== undefined) {
      return Promise.reject(unavailable(`the model file ${this.deps.file.location} is not loaded`, 1));
    }
    const name = this.deps.config.model.name;
    if (name === undefined) {
      return Promise.reject(unavailable('no default model is configured (MODEL_NAME or MODEL_PATH); address one with ?model=<name> or /models/{name}/predict'));
    }
    return this.materialize('default', { kind: 'default', name, selector: {} });
  }

  /** Resolves and loads a route the first time it is asked for; concurrent first requests share the work. */
  private materialize(key: string, spec: RouteSpec): Promise<RouteEntry> {
    let p = this.materializing.get(key);
    if (p === undefined) {
      p = (async () => {
        const target = await this.resolveTarget(spec);
        if (target === undefined) throw await this.notServable(spec);
        const entry: RouteEntry = { key, spec, choices: [], cumulative: [], shadows: [], lastTick: this.tick };
        await this.applyTarget(entry, target);
        if (spec.kind === 'default') this.defaultRoute = entry;
        else this.routes.set(key, entry);
        this.updateStatusGauges();
        return entry;
      })().finally(() => this.materializing.delete(key));
      this.materializing.set(key, p);
    }
    return p;
  }

  private async notServable(spec: RouteSpec): Promise<AppError> {
    const registry = this.requireRegistry();
    const exists = spec.kind === 'default' || spec.kind === 'named' ? await registry.resolve(spec.name, {}) : true;
    switch (spec.kind) {
      case 'version':
        return notFound(`model '${spec.name}' has no version ${spec.selector.version ?? ''}`);
      case 'stage':
        return notFound(`model '${spec.name}' has no version in stage ${spec.selector.stage ?? ''}`);
      case 'alias':
        return notFound(`model '${spec.name}' has no alias '${spec.selector.alias ?? ''}'`);
      default: {
        const { stage, fallbackStage } = this.deps.config.model;
        const where = `stage ${stage}${fallbackStage === undefined ? '' : ` or ${fallbackStage}`}`;
        if (exists === undefined && spec.kind === 'named') return notFound(`no registered model '${spec.name}'`);
        return unavailable(`model '${spec.name}' has no version in ${where}`, 5);
      }
    }
  }

  private requireRegistry(): RegistryReader {
    const r = this.deps.registry;
    if (r === undefined) throw unavailable('the model registry is not available in this process');
    return r;
  }

  /** The versions a route should serve now (registry I/O). */
  private async resolveTarget(spec: RouteSpec): Promise<Target | undefined> {
    const registry = this.requireRegistry();
    if (spec.kind === 'version' || spec.kind === 'stage' || spec.kind === 'alias') {
      const v = await registry.resolve(spec.name, spec.selector);
      return v === undefined ? undefined : { versions: [{ v, weight: 1 }], shadows: [] };
    }
    const split = await registry.traffic(spec.name);
    if (split !== undefined && split.routes.some((r) => r.weight > 0)) {
      const versions: { v: ServableVersion; weight: number }[] = [];
      for (const r of split.routes) {
        if (r.weight <= 0) continue;
        const v = await registry.resolve(spec.name, { version: r.version });
        if (v !== undefined) versions.push({ v, weight: r.weight });
      }
      const shadows: ServableVersion[] = [];
      for (const s of split.shadow) {
        const v = await registry.resolve(spec.name, { version: s });
        if (v !== undefined) shadows.push(v);
      }
      if (versions.length > 0) return { versions, shadows };
    }
    const { stage, fallbackStage } = this.deps.config.model;
    let v = await registry.resolve(spec.name, { stage });
    if (v === undefined && fallbackStage !== undefined && fallbackStage !== stage) v = await registry.resolve(spec.name, { stage: fallbackStage });
    return v === undefined ? undefined : { versions: [{ v, weight: 1 }], shadows: [] };
  }

  /** Loads (and warms) every version of a target, then swaps it into the entry in one step. */
  private async applyTarget(entry: RouteEntry, target: Target): Promise<void> {
    const choices: LoadedModel[] = [];
    const cumulative: number[] = [];
    let sum = 0;
    for (const { v, weight } of target.versions) {
      choices.push(await this.loadVersion(v));
      sum += weight;
      cumulative.push(sum);
    }
    const shadows: LoadedModel[] = [];
    for (const v of target.shadows) {
      const m = await this.loadVersion(v);
      if (m.nFeatures === choices[0]!.nFeatures) shadows.push(m);
    }
    // The swap: plain assignments, so no request ever sees a half-updated entry.
    entry.choices = choices;
    entry.cumulative = choices.length > 1 ? cumulative : [];
    entry.shadows = shadows;
  }

  private async loadVersion(v: ServableVersion, fresh = false): Promise<LoadedModel> {
    const key = `${v.name}@${v.version}`;
    const existing = this.loaded.get(key);
    if (existing !== undefined && !fresh) {
      existing.describe(v.stage, v.aliases);
      return existing;
    }
    let p = this.loading.get(key);
    if (p === undefined || fresh) {
      p = (async () => {
        const bytes = await this.deps.artifacts.getBuffer(v.artifactKey);
        const identity: ModelIdentity = {
          name: v.name,
          version: String(v.version),
          stage: v.stage,
          aliases: v.aliases,
          metrics: v.metrics,
          runId: v.runId,
          createdAt: v.createdAt,
          source: v.artifactKey,
          // The content hash too: a model deleted and registered again restarts at version 1, and
          // a shared Redis cache must not answer the new bytes with the old ones' predictions.
          cacheTag: `${v.name}\u0000${v.version}\u0000${v.sha256?.slice(0, 16) ?? ''}\u0000`,
        };
        const model = await this.createModel(identity, bytes, v.signature, this.tunablesOf(v));
        const previous = this.loaded.get(key);
        this.loaded.set(key, model);
        if (previous !== undefined && previous !== model) this.retire(previous);
        return model;
      })().finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  /** Tunables the registered model's tags set; an invalid tag is logged and ignored. */
  private tunablesOf(v: ServableVersion): ModelTunables {
    return tunablesFromTags(v.modelTags, ({ tag, value, expected }) =>
      this.deps.log.warn({ model: v.name, version: v.version, tag, value, expected }, `ignoring registered-model tag ${tag}: expected ${expected}`),
    );
  }

  private async createModel(identity: ModelIdentity, bytes: Uint8Array, signature: ModelSignature, tunables: ModelTunables = {}): Promise<LoadedModel> {
    const { log, metrics } = this.deps;
    const runtime = await createRuntime(this.deps.onnx, bytes, signature, {
      device: this.device,
      intraOpThreads: this.options.intraOpThreads ?? 1,
      thread: this.options.inferenceThread ?? false,
      onFallback: (reason) =>
        log.warn({ model: identity.name, version: identity.version, reason }, 'MODEL_DEVICE=cuda but the CUDA execution provider is not available; serving on CPU'),
    });
    const duration = metrics.duration.labels(identity.name);
    const batchRows = metrics.batchRows.labels(identity.name);
    const maxBatchRows = tunables.maxBatchRows ?? this.maxBatchRows;
    const batching: BatchingSettings = {
      maxBatchRows,
      maxQueueRows: this.options.maxQueueRows ?? Math.max(4096, 8 * maxBatchRows),
      maxQueueDelayUs: tunables.maxQueueDelayUs ?? this.options.maxQueueDelayUs ?? 0,
    };
    const model = new LoadedModel(identity, signature, runtime, {
      ...batching,
      onRun: (seconds, rows) => {
        duration.observe(seconds);
        batchRows.observe(rows);
      },
    });
    try {
      await model.warmUp();
    } catch (err) {
      await runtime.release().catch(() => undefined);
      throw err;
    }
    log.info({ model: identity.name, version: identity.version, device: runtime.device, ...batching }, 'model loaded and warmed');
    return model;
  }

  // ---------------------------------------------------------------- single-file mode

  /** Loads `MODEL_PATH` when its tag changed (or always when `force`); the first load throws on failure. */
  private async loadFile(first: boolean, force = false): Promise<void> {
    const file = this.deps.file!;
    if (!first && !force) {
      const tag = await file.tag();
      if (tag === this.fileTag) return;
    }
    let read: { bytes: Uint8Array; tag: string };
    try {
      read = await file.read();
    } catch (err) {
      if (first) throw new Error(`MODEL_PATH ${file.location} cannot be read: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    const prepared = prepareForServing(read.bytes);
    this.fileLoads++;
    const name = this.deps.config.model.name ?? fileBaseName(file.location);
    const identity: ModelIdentity = {
      name,
      version: `file:${this.fileLoads}`,
      stage: null,
      aliases: [],
      metrics: {},
      runId: null,
      createdAt: null,
      source: file.location,
      cacheTag: `${name}\u0000file\u0000${read.tag}\u0000`,
    };
    const model = await this.createModel(identity, prepared.bytes, prepared.signature);
    const previous = this.defaultRoute?.choices[0];
    const entry: RouteEntry = { key: 'default', spec: { kind: 'default', name, selector: {} }, choices: [model], cumulative: [], shadows: [], lastTick: this.tick };
    this.loaded.set(`file\u0000${name}`, model);
    this.defaultRoute = entry;
    this.fileTag = read.tag;
    if (!first) this.usage.reloads++;
    if (previous !== undefined && previous !== model) this.retire(previous);
    this.updateStatusGauges();
  }

  /**
   * Reloads the default model (POST /model/reload): re-reads `MODEL_PATH`, or re-resolves the
   * default route and builds a fresh session for it. Traffic switches only when the new session is
   * warm; in-flight requests finish on the old one.
   */
  async reloadDefault(): Promise<LoadedModel> {
    try {
      if (this.deps.file !== undefined) {
        await this.loadFile(false, true);
      } else {
        const name = this.deps.config.model.name;
        if (name === undefined) throw unavailable('no default model is configured (MODEL_NAME or MODEL_PATH)');
        const spec: RouteSpec = { kind: 'default', name, selector: {} };
        const target = await this.resolveTarget(spec);
        if (target === undefined) throw await this.notServable(spec);
        for (const { v } of target.versions) await this.loadVersion(v, true);
        const entry = this.defaultRoute ?? { key: 'default', spec, choices: [], cumulative: [], shadows: [], lastTick: this.tick };
        await this.applyTarget(entry, target);
        this.defaultRoute = entry;
        this.usage.reloads++;
        this.updateStatusGauges();
      }
    } catch (err) {
      this.usage.reload_failures++;
      throw err;
    }
    return this.defaultModel!;
  }

  // ---------------------------------------------------------------- refresh

  private async poll(): Promise<void> {
    const g = await this.requireRegistry().generation();
    if (g === this.lastGeneration) return;
    this.lastGeneration = g;
    this.scheduleRefresh(undefined);
  }

  /** Refreshes routes (of one model, or all) in the background; calls during a refresh coalesce. */
  private scheduleRefresh(name: string | undefined): void {
    if (this.closed) return;
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = this.refreshRoutes(name)
      .catch((err: unknown) => this.deps.log.warn({ err }, 'route refresh failed; will retry on the next change'))
      .finally(() => {
        this.refreshing = undefined;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.scheduleRefresh(undefined);
        }
      });
  }

  /** Waits for any refresh in progress (tests, reload). */
  async settled(): Promise<void> {
    while (this.refreshing !== undefined) await this.refreshing;
  }

  private async refreshRoutes(name: string | undefined): Promise<void> {
    const entries = [...this.routes.values()];
    if (this.defaultRoute !== undefined && this.deps.file === undefined) entries.push(this.defaultRoute);
    if (this.defaultRoute === undefined && this.deps.file === undefined && this.deps.config.model.name !== undefined) {
      // The default model may have just become servable.
      await this.materializeDefault().catch(() => undefined);
    }
    for (const entry of entries) {
      if (name !== undefined && entry.spec.name !== name) continue;
      const target = await this.resolveTarget(entry.spec);
      if (target === undefined) {
        // Nothing to serve any more: later requests get the 404/503 of a fresh resolution.
        if (entry === this.defaultRoute) this.defaultRoute = undefined;
        else this.routes.delete(entry.key);
        continue;
      }
      const now = entry.choices.map((m) => m.identity.version).join(',') + '|' + entry.shadows.map((m) => m.identity.version).join(',');
      const next = target.versions.map((t) => String(t.v.version)).join(',') + '|' + target.shadows.map((v) => String(v.version)).join(',');
      if (now === next && target.versions.length === 1) {
        entry.choices[0]!.describe(target.versions[0]!.v.stage, target.versions[0]!.v.aliases);
        continue;
      }
      await this.applyTarget(entry, target);
    }
    this.updateStatusGauges();
  }

  // ---------------------------------------------------------------- release

  private retire(model: LoadedModel): void {
    this.retired.add(model);
  }

  /** Advances the coarse clock; releases retired and long-unused sessions with nothing in flight. */
  sweep(): void {
    this.tick++;
    for (const [key, entry] of this.routes) {
      if (this.tick - entry.lastTick > this.idleTicks) this.routes.delete(key);
    }
    const referenced = new Set<LoadedModel>();
    const refer = (e: RouteEntry | undefined): void => {
      if (e === undefined) return;
      for (const m of e.choices) referenced.add(m);
      for (const m of e.shadows) referenced.add(m);
    };
    refer(this.defaultRoute);
    for (const e of this.routes.values()) refer(e);
    for (const m of this.retired) {
      if (referenced.has(m) || m.inFlight > 0 || m.batcher.waitingRows > 0) continue;
      this.retired.delete(m);
      void this.release(m);
    }
    for (const [key, m] of this.loaded) {
      if (referenced.has(m) || m.inFlight > 0 || m.batcher.waitingRows > 0) continue;
      if (this.tick - m.lastUsedTick <= this.idleTicks) continue;
      this.loaded.delete(key);
      void this.release(m);
    }
    this.updateStatusGauges();
  }

  private async release(m: LoadedModel): Promise<void> {
    if (m.released) return;
    m.released = true;
    m.batcher.drain(unavailable('the model was unloaded; retry', 1));
    try {
      await m.runtime.release();
      this.deps.log.info({ model: m.identity.name, version: m.identity.version }, 'model session released');
    } catch (err) {
      this.deps.log.warn({ err, model: m.identity.name }, 'releasing a model session failed');
    }
  }

  private updateStatusGauges(): void {
    const active = new Set<LoadedModel>();
    if (this.defaultRoute !== undefined) for (const m of this.defaultRoute.choices) active.add(m);
    for (const e of this.routes.values()) for (const m of e.choices) active.add(m);
    const gauge = this.deps.metrics.modelStatus;
    // Rebuilt from scratch: a released version disappears, a reloaded one (same labels, two
    // instances until the old one drains) shows 1 while either takes traffic.
    gauge.reset();
    const values = new Map<string, [string, string, number]>();
    for (const m of new Set([...this.loaded.values(), ...this.retired])) {
      if (m.released) continue;
      const key = `${m.identity.name}\u0000${m.identity.version}`;
      const v = active.has(m) ? 1 : 0;
      if ((values.get(key)?.[2] ?? -1) < v) values.set(key, [m.identity.name, m.identity.version, v]);
    }
    for (const [name, version, v] of values.values()) gauge.labels(name, version).set(v);
    this.deps.onStatus?.(this.defaultModel !== undefined);
  }
}

const NONE: readonly LoadedModel[] = [];

function fileBaseName(location: string): string {
  const base = location.slice(location.lastIndexOf('/') + 1);
  return base.replace(/\.onnx$/i, '') || 'model';
}
