/**
 * Prediction cache: one row's answer (a JSON fragment) keyed by model identity and the row's exact
 * float bits. The key carries the version's cache tag, so after a promotion requests look up keys
 * of the new version and can never be answered from the old one's entries.
 * In memory (lru-cache, bounded by entries) by default; in Redis, shared by all replicas, when
 * Redis is configured.
 */
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { unavailable } from '../platform/errors.ts';
import type { FloatRows } from './runtime.ts';

/** Answers of many keys, in key order; `undefined` where a key is not cached. */
export type CachedFragments = (string | undefined)[];

export interface PredictionCache {
  /** `memory` or `redis`. */
  readonly kind: 'memory' | 'redis';
  /** A cached fragment; memory answers synchronously, Redis with a promise. */
  get(key: string): string | undefined | Promise<string | undefined>;
  /** Stores one fragment; never throws and never waits (a lost write is a later miss). */
  set(key: string, value: string): void;
  /** Fragments of many keys in one look-up (Redis: one MGET); memory answers synchronously. */
  getMany(keys: readonly string[]): CachedFragments | Promise<CachedFragments>;
  /** Stores `values[i]` under `keys[i]` in one round trip; never throws and never waits. */
  setMany(keys: readonly string[], values: readonly string[]): void;
  /** Removes every entry of this cache (Redis: under its key prefix); resolves with how many there were. */
  clear(): Promise<number>;
  size(): number | null;
}

/** Cache key of one row: the model's cache tag plus the row's bytes (exact float bits) in base64. */
export function cacheKey(tag: string, row: FloatRows): string {
  return tag + Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('base64');
}

/**
 * Cache keys of `rows` consecutive rows of `input` (`nFeatures` values each), the same keys
 * {@link cacheKey} gives for each row alone, so single and batch requests share entries.
 */
export function rowKeys(tag: string, input: FloatRows, rows: number, nFeatures: number): string[] {
  const rowBytes = nFeatures * input.BYTES_PER_ELEMENT;
  const keys = new Array<string>(rows);
  let at = input.byteOffset;
  for (let i = 0; i < rows; i++, at += rowBytes) keys[i] = tag + Buffer.from(input.buffer, at, rowBytes).toString('base64');
  return keys;
}

/** Bounded in-process LRU. */
export class MemoryPredictionCache implements PredictionCache {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, string>;

  /**
   * @param maxEntries most entries kept; the least recently used is evicted beyond it
   * @param ttlSeconds lifetime of an entry; 0 = until evicted
   */
  constructor(maxEntries: number, ttlSeconds: number) {
    this.lru = new LRUCache<string, string>({ max: maxEntries, ...(ttlSeconds > 0 ? { ttl: ttlSeconds * 1000, ttlAutopurge: false } : {}) });
  }

  get(key: string): string | undefined {
    return this.lru.get(key);
  }

  set(key: string, value: string): void {
    this.lru.set(key, value);
  }

  getMany(keys: readonly string[]): CachedFragments {
    const out: CachedFragments = new Array<string | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = this.lru.get(keys[i]!);
    return out;
  }

  setMany(keys: readonly string[], values: readonly string[]): void {
    for (let i = 0; i < keys.length; i++) this.lru.set(keys[i]!, values[i]);
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
 * a failing Redis makes lookups miss rather than fail the prediction. While the connection is not
 * ready, look-ups miss and writes are dropped at once: queueing them behind reconnection attempts
 * would add the retry time to every prediction and grow the offline queue without bound.
 */
export class RedisPredictionCache implements PredictionCache {
  readonly kind = 'redis' as const;

  /**
   * @param ttlSeconds lifetime of an entry (`SET ... EX`), whole seconds rounded up; 0 = no expiry
   * @param prefix prepended to every key; `clear()` removes only keys under it
   * @param onError told about failed commands (the operation itself then misses or is dropped)
   */
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly prefix = 'modelplane:pred:',
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  private get ready(): boolean {
    return this.redis.status === 'ready';
  }

  async get(key: string): Promise<string | undefined> {
    if (!this.ready) return undefined;
    try {
      const v = await this.redis.get(this.prefix + key);
      return v ?? undefined;
    } catch (err) {
      this.onError(err);
      return undefined;
    }
  }

  set(key: string, value: string): void {
    if (!this.ready) return;
    const k = this.prefix + key;
    const p = this.ttlSeconds > 0 ? this.redis.set(k, value, 'EX', Math.ceil(this.ttlSeconds)) : this.redis.set(k, value);
    p.catch(this.onError);
  }

  async getMany(keys: readonly string[]): Promise<CachedFragments> {
    const misses = (): CachedFragments => new Array<string | undefined>(keys.length).fill(undefined);
    if (keys.length === 0 || !this.ready) return misses();
    try {
      const values = await this.redis.mget(keys.map((k) => this.prefix + k));
      return values.map((v) => v ?? undefined);
    } catch (err) {
      this.onError(err);
      return misses();
    }
  }

  setMany(keys: readonly string[], values: readonly string[]): void {
    if (keys.length === 0 || !this.ready) return;
    if (this.ttlSeconds <= 0) {
      const args: string[] = new Array<string>(keys.length * 2);
      for (let i = 0; i < keys.length; i++) {
        args[2 * i] = this.prefix + keys[i]!;
        args[2 * i + 1] = values[i]!;
      }
      this.redis.mset(args).catch(this.onError);
      return;
    }
    // MSET has no expiry: one pipelined SET ... EX per key, still one round trip.
    const ttl = Math.ceil(this.ttlSeconds);
    const pipeline = this.redis.pipeline();
    for (let i = 0; i < keys.length; i++) pipeline.set(this.prefix + keys[i]!, values[i]!, 'EX', ttl);
    pipeline.exec().then((results) => {
      const failed = results?.find(([err]) => err !== null);
      if (failed !== undefined) this.onError(failed[0]);
    }, this.onError);
  }

  /**
   * Removes the keys under this cache's prefix (SCAN + UNLINK).
   * @throws AppError 503 when Redis is not reachable
   */
  async clear(): Promise<number> {
    if (!this.ready) throw unavailable('the prediction cache (Redis) is not reachable; retry later', 1);
    const pattern = `${globEscape(this.prefix)}*`;
    let cursor = '0';
    let n = 0;
    try {
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) n += await this.redis.unlink(...keys);
      } while (cursor !== '0');
    } catch (err) {
      this.onError(err);
      throw unavailable('the prediction cache (Redis) failed while clearing; retry later', 1);
    }
    return n;
  }

  size(): null {
    return null;
  }
}

/** A literal string as a Redis glob pattern (`*`, `?`, `[`, `]` and `\\` escaped). */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
