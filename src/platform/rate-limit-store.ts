/**
 * The rate limiter's counter store when Redis is configured: the budget is shared through Redis
 * (@fastify/rate-limit's own Redis store and script), and falls back to a per-process count while
 * Redis is unavailable, so a Redis outage never fails or slows a request beyond the Redis command
 * timeout. A counter never blocks on a connection that is not ready: it goes local at once.
 */
import { createRequire } from 'node:module';
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { RedisHealth } from './redis-health.ts';

type Incr = FastifyRateLimitStore['incr'];
type ChildOptions = Parameters<FastifyRateLimitStore['child']>[0];
/** The parts of the plugin's resolved options a store is built from. */
interface PluginParams {
  readonly continueExceeding?: boolean;
  readonly exponentialBackoff?: boolean;
  readonly cache?: number;
}

/** The two stores shipped with @fastify/rate-limit (CommonJS, no type declarations of their own). */
interface StoreModules {
  RedisStore: new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key?: string) => FastifyRateLimitStore;
  LocalStore: new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => FastifyRateLimitStore;
}

function storeModules(): StoreModules {
  const require = createRequire(import.meta.url);
  return {
    RedisStore: require('@fastify/rate-limit/store/RedisStore.js') as StoreModules['RedisStore'],
    LocalStore: require('@fastify/rate-limit/store/LocalStore.js') as StoreModules['LocalStore'],
  };
}

/** Counts in Redis while it answers, else in this process. */
class FallbackStore implements FastifyRateLimitStore {
  constructor(
    private readonly shared: FastifyRateLimitStore,
    private readonly local: FastifyRateLimitStore,
    private readonly health: RedisHealth,
  ) {}

  incr(key: string, callback: Parameters<Incr>[1], timeWindow: number, max: number): void {
    if (!this.health.usable) {
      this.local.incr(key, callback, timeWindow, max);
      return;
    }
    this.shared.incr(
      key,
      (err, result) => {
        if (err === null && result !== undefined) {
          callback(null, result);
          return;
        }
        this.health.failed(err);
        this.local.incr(key, callback, timeWindow, max);
      },
      timeWindow,
      max,
    );
  }

  child(routeOptions: ChildOptions): FastifyRateLimitStore {
    return new FallbackStore(this.shared.child(routeOptions), this.local.child(routeOptions), this.health);
  }
}

/**
 * The `store` option of @fastify/rate-limit: a constructor (the plugin instantiates it with its
 * options) over the shared Redis connection, keys under `nameSpace`.
 */
export function fallbackRateLimitStore(redis: Redis, health: RedisHealth, nameSpace: string): FastifyRateLimitStoreCtor {
  const { RedisStore, LocalStore } = storeModules();
  return class {
    constructor(options: PluginParams) {
      const continueExceeding = options.continueExceeding === true;
      const exponentialBackoff = options.exponentialBackoff === true;
      return new FallbackStore(new RedisStore(continueExceeding, exponentialBackoff, redis, nameSpace), new LocalStore(continueExceeding, exponentialBackoff, options.cache), health);
    }
  } as unknown as FastifyRateLimitStoreCtor;
}
