/**
 * Which loaded model answers a request, kept current without I/O on the hot path.
 *
 * A routing table maps each selector seen so far (default model, `?model=` with or without
 * version/stage/alias) to loaded sessions. A hit is a `Map.get`; only the first request for a
 * selector waits for the registry and the artifact store. The table is refreshed off the request
 * path when the registry says something changed: in-process through `onChange`, and from other
 * replicas (or training workers) by polling `generation()` about once a second. A refresh loads and
 * warms the new session first and then swaps the table entry, so traffic moves only to a ready
 * session; requests already holding the old session finish on it.
 */
import type { Logger } from 'pino';
import type { Config, Stage } from '../config.ts';
import { AppError, notFound, unavailable } from '../platform/errors.ts';
import type { RegistryReader, ServableVersion, VersionSelector } from '../registry/registry.types.ts';
import type { LoadedModel } from './loaded-model.ts';
import type { SessionCache } from './sessions.ts';

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

export interface RouteEntry {
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

export interface RouterDeps {
  readonly config: Config;
  readonly log: Logger;
  /** `undefined` in single-file mode: only the default route exists. */
  readonly registry: RegistryReader | undefined;
  readonly sessions: SessionCache;
  /** `MODEL_PATH` when the default model comes from a file (then the registry never resolves it). */
  readonly file: string | undefined;
  /** Called whenever the routes changed (status gauges). */
  readonly onRoutesChanged: () => void;
}

const NONE: readonly LoadedModel[] = [];

export class ModelRouter {
  private readonly routes = new Map<string, RouteEntry>();
  /** The default route, kept outside the map so the commonest request does no key building. */
  private defaultRoute: RouteEntry | undefined;
  private readonly materializing = new Map<string, Promise<RouteEntry>>();
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private lastGeneration: number | undefined;
  private closed = false;

  constructor(private readonly deps: RouterDeps) {}

  /** The default model now, if loaded. */
  get defaultModel(): LoadedModel | undefined {
    return this.defaultRoute?.choices[0];
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

  /** Shadow versions of the route a query without version, stage or alias addresses (traffic split shadows). */
  shadowsOf(query: ModelQuery): readonly LoadedModel[] {
    if (query.version !== undefined || query.stage !== undefined || query.alias !== undefined) return NONE;
    const route = query.model === undefined ? this.defaultRoute : this.routes.get(`n\u0000${query.model}`);
    return route === undefined || route.shadows.length === 0 ? NONE : route.shadows;
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
    const tick = this.deps.sessions.tick;
    route.lastTick = tick;
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
    m.lastUsedTick = tick;
    return m;
  }

  // ---------------------------------------------------------------- the table

  /** Every model a route hands out or shadows now (never released). */
  referenced(): Set<LoadedModel> {
    const out = new Set<LoadedModel>();
    const refer = (e: RouteEntry | undefined): void => {
      if (e === undefined) return;
      for (const m of e.choices) out.add(m);
      for (const m of e.shadows) out.add(m);
    };
    refer(this.defaultRoute);
    for (const e of this.routes.values()) refer(e);
    return out;
  }

  /** Models that take traffic now (not shadows): `model_status` 1. */
  active(): Set<LoadedModel> {
    const out = new Set<LoadedModel>();
    if (this.defaultRoute !== undefined) for (const m of this.defaultRoute.choices) out.add(m);
    for (const e of this.routes.values()) for (const m of e.choices) out.add(m);
    return out;
  }

  /** Makes `model` the default route's only choice (single-file mode). */
  setDefault(model: LoadedModel): void {
    const name = model.identity.name;
    this.defaultRoute = { key: 'default', spec: { kind: 'default', name, selector: {} }, choices: [model], cumulative: [], shadows: [], lastTick: this.deps.sessions.tick };
    this.deps.onRoutesChanged();
  }

  /** Forgets named routes nobody asked for in `idleTicks` sweeps. */
  dropIdle(idleTicks: number): void {
    const tick = this.deps.sessions.tick;
    for (const [key, entry] of this.routes) {
      if (tick - entry.lastTick > idleTicks) this.routes.delete(key);
    }
  }

  // ---------------------------------------------------------------- resolution (off the hot path)

  /** Loads the default route from the registry (the server's start). */
  materializeDefault(): Promise<RouteEntry> {
    if (this.deps.file !== undefined) {
      return Promise.reject(unavailable(`the model file ${this.deps.file} is not loaded`, 1));
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
        const entry: RouteEntry = { key, spec, choices: [], cumulative: [], shadows: [], lastTick: this.deps.sessions.tick };
        await this.applyTarget(entry, target);
        if (spec.kind === 'default') this.defaultRoute = entry;
        else this.routes.set(key, entry);
        this.deps.onRoutesChanged();
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
        if (exists === undefined && spec.kind === 'named') {
          if ((await registry.modelExists?.(spec.name)) === true) {
            return notFound(`registered model '${spec.name}' has no version yet; upload one (POST /models/${spec.name}/versions) or train one (POST /train)`);
          }
          return notFound(`no registered model '${spec.name}'`);
        }
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
  private async applyTarget(entry: RouteEntry, target: Target, fresh = false): Promise<void> {
    const sessions = this.deps.sessions;
    const choices: LoadedModel[] = [];
    const cumulative: number[] = [];
    let sum = 0;
    for (const { v, weight } of target.versions) {
      choices.push(await sessions.version(v, fresh));
      sum += weight;
      cumulative.push(sum);
    }
    const shadows: LoadedModel[] = [];
    for (const v of target.shadows) {
      const m = await sessions.version(v);
      if (m.nFeatures === choices[0]!.nFeatures) shadows.push(m);
    }
    // The swap: plain assignments, so no request ever sees a half-updated entry.
    entry.choices = choices;
    entry.cumulative = choices.length > 1 ? cumulative : [];
    entry.shadows = shadows;
  }

  /**
   * Re-resolves the default route and builds fresh sessions for it (`POST /model/reload`). Traffic
   * switches only when the new sessions are warm.
   */
  async reloadDefault(): Promise<void> {
    const name = this.deps.config.model.name;
    if (name === undefined) throw unavailable('no default model is configured (MODEL_NAME or MODEL_PATH)');
    const spec: RouteSpec = { kind: 'default', name, selector: {} };
    const target = await this.resolveTarget(spec);
    if (target === undefined) throw await this.notServable(spec);
    const entry = this.defaultRoute ?? { key: 'default', spec, choices: [], cumulative: [], shadows: [], lastTick: this.deps.sessions.tick };
    await this.applyTarget(entry, target, true);
    this.defaultRoute = entry;
    this.deps.onRoutesChanged();
  }

  // ---------------------------------------------------------------- refresh

  /** Subscribes to the registry's changes and reads its generation (start). */
  async start(): Promise<() => void> {
    const registry = this.requireRegistry();
    const unsubscribe = registry.onChange((name) => this.scheduleRefresh(name));
    try {
      this.lastGeneration = await registry.generation();
    } catch (err) {
      this.deps.log.warn({ err }, 'model registry not reachable at start');
    }
    return unsubscribe;
  }

  /** One poll of the registry generation; a change refreshes every route. */
  async poll(): Promise<void> {
    const g = await this.requireRegistry().generation();
    if (g === this.lastGeneration) return;
    this.lastGeneration = g;
    this.scheduleRefresh(undefined);
  }

  /** Refreshes routes (of one model, or all) in the background; calls during a refresh coalesce. */
  scheduleRefresh(name: string | undefined): void {
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

  /** Stops refreshing and forgets every route (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.refreshing?.catch(() => undefined);
    this.routes.clear();
    this.defaultRoute = undefined;
  }

  private async refreshRoutes(name: string | undefined): Promise<void> {
    const { config } = this.deps;
    const fileMode = this.deps.file !== undefined;
    const entries = [...this.routes.values()];
    if (this.defaultRoute !== undefined && !fileMode) entries.push(this.defaultRoute);
    if (this.defaultRoute === undefined && !fileMode && config.model.name !== undefined) {
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
    this.deps.onRoutesChanged();
  }
}
