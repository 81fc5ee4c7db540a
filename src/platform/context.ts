import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Config } from '../config.ts';
import type { Store } from '../store/database.ts';
import type { KeyService } from './auth.ts';
import type { Metrics } from './metrics.ts';
import type { EventLoopMonitor, GpuProbe } from './system.ts';

/** Outcome of one readiness check. */
export interface CheckResult {
  readonly ok: boolean;
  readonly detail?: string;
}

/**
 * What features tell the health and info endpoints about themselves. Serving registers the default
 * model's readiness, training its queue, and so on; the platform only renders.
 */
export class StatusBoard {
  private readonly checks = new Map<string, () => Promise<CheckResult> | CheckResult>();
  private readonly sections = new Map<string, () => unknown>();
  /** Whether the default model is loaded; serving replaces this. */
  modelLoaded: () => boolean = () => false;

  /** A check that must pass for `/ready` to answer 200. */
  addReadinessCheck(name: string, check: () => Promise<CheckResult> | CheckResult): void {
    this.checks.set(name, check);
  }

  /** A named section shown in `/info` and `/health/detailed` (must hold no secrets). */
  addSection(name: string, section: () => unknown): void {
    this.sections.set(name, section);
  }

  async runChecks(): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
    const checks: Record<string, CheckResult> = {};
    let ready = true;
    for (const [name, check] of this.checks) {
      let result: CheckResult;
      try {
        result = await check();
      } catch (err) {
        result = { ok: false, detail: err instanceof Error ? err.message : 'check failed' };
      }
      checks[name] = result;
      if (!result.ok) ready = false;
    }
    return { ready, checks };
  }

  renderSections(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, section] of this.sections) out[name] = section();
    return out;
  }
}

/**
 * Everything a feature needs from the process, built once in `createContext` (server) or by the
 * test helper. Backends are chosen there and nowhere else.
 */
export interface AppContext {
  readonly config: Config;
  readonly log: Logger;
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly keys: KeyService;
  readonly metrics: Metrics;
  readonly status: StatusBoard;
  readonly loop: EventLoopMonitor;
  readonly gpu: GpuProbe;
  /** Shared Redis connection when REDIS_URL/REDIS_HOST is configured. */
  readonly redis: Redis | undefined;
  /** Closers run in reverse order at shutdown (features add theirs). */
  readonly closers: Array<() => Promise<void> | void>;
}
