/**
 * Prediction cache: one row's answer (a JSON fragment) keyed by model identity and the row's exact
 * float bits. The key carries the version's cache tag, so after a promotion requests look up keys
 * of the new version and can never be answered from the old one's entries.
 * In memory (lru-cache, bounded by entries) by default; in Redis, shared by all replicas, when
 * Redis is configured.
 */
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { FloatRows } from './runtime.ts';

export interface PredictionCache {
  /** `memory` or `redis`. */
  readonly kind: 'memory' | 'redis';
  /** A cached fragment; memory answers synchronously, Redis with a promise. */
  get(key: string): string | undefined | Promise<string | undefined>;
  set(key: string, value: string): void;
  /** Removes every entry; resolves with how many there were. */
  clear(): Promise<number>;
  size(): number | null;
}

/** Cache key of one row: the model's cache tag plus the row's bytes (exact float bits) in base64. */
export function cacheKey(tag: string, row: FloatRows): string {
  return tag + Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('base64');
}

/** Bounded in-process LRU. */
export class MemoryPredictionCache implements PredictionCache {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, string>;

  constructor(maxEntries: number, ttlSeconds: number) {
    this.lru = new LRUCache<string, string>({ max: maxEntries, ...(ttlSeconds > 0 ? { ttl: ttlSeconds * 1000, ttlAutopurge: false } : {}) });
  }

  get(key: string): string | undefined {
    return this.lru.get(key);
  }

  set(key: string, value: string): void {
    this.lru.set(key, value);
  }

  clear(): Promise<number> {
    const n = this.lru.size;
    this.lru.clear();
    return Promise.resolve(n);
  }

  size(): number {
    return this.lru.size;
  }
}

/**
 * Redis-backed cache shared by replicas. Writes are fire-and-forget (a lost write is a later miss);
 * a failing Redis makes lookups miss rather than fail the prediction.
 */
export class RedisPredictionCache implements PredictionCache {
  readonly kind = 'redis' as const;

  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly prefix = 'modelplane:pred:',
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  async get(key: string): Promise<string | undefined> {
    try {
      const v = await this.redis.get(this.prefix + key);
      return v ?? undefined;
    } catch (err) {
      this.onError(err);
      return undefined;
    }
  }

  set(key: string, value: string): void {
    const k = this.prefix + key;
    const p = this.ttlSeconds > 0 ? this.redis.set(k, value, 'EX', Math.ceil(this.ttlSeconds)) : this.redis.set(k, value);
    p.catch(this.onError);
  }

  async clear(): Promise<number> {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    return n;
  }

  size(): null {
    return null;
  }
}
