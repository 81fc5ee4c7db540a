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
  /**
   * Admission, asked once per row before any look-up (with {@link rowHash}): `false` means "not
   * worth a look-up, and do not store its answer". The memory cache admits a row the second time
   * it sees it (see {@link Sightings}); Redis admits every row (either can be told otherwise).
   */
  admits(hash: number): boolean;
  /** Removes every entry of this cache (Redis: under its key prefix); resolves with how many there were. */
  clear(): Promise<number>;
  size(): number | null;
}

/** Cache key of one row: the model's cache tag plus the row's bytes (exact float bits) in base64. */
export function cacheKey(tag: string, row: FloatRows): string {
  return tag + Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('base64');
}

/**
 * A 32-bit hash of row `row` of `input` (`nFeatures` values per row) seeded with the model's cache
 * seed: the exact float bits, mixed word by word (FNV-1a over 32-bit words, then a final avalanche).
 * Never 0 (0 marks an empty slot in {@link Sightings}). `words` is `wordsOf(input)`, passed in when
 * hashing many rows of one buffer.
 */
export function rowHash(seed: number, input: FloatRows, row: number, nFeatures: number, words: Int32Array = wordsOf(input)): number {
  const perRow = nFeatures * (input.BYTES_PER_ELEMENT >> 2);
  const end = (row + 1) * perRow;
  let h = (seed ^ 0x811c9dc5) | 0;
  for (let i = row * perRow; i < end; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h === 0 ? 1 : h;
}

/** The 32-bit words of `input`'s bytes: build it once for many {@link rowHash} calls on one buffer. */
export function wordsOf(input: FloatRows): Int32Array {
  return new Int32Array(input.buffer, input.byteOffset, input.byteLength >> 2);
}

/** A 32-bit seed for {@link rowHash} from a model's cache tag. */
export function cacheSeed(tag: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tag.length; i++) h = Math.imul(h ^ tag.charCodeAt(i), 0x01000193);
  return h | 0;
}

/**
 * The doorkeeper of TinyLFU: remembers the hashes of recently seen rows in a fixed table (one slot
 * per hash, newer sightings overwrite older ones). A row is admitted to the cache the second time
 * it is seen while its slot still holds it. Rows seen once (most rows, in typical scoring traffic)
 * then cost one hash and one table read instead of a key string, an LRU insertion, an eviction and
 * the garbage of both, which at the default size measured at about a tenth of a prediction's CPU.
 */
export class Sightings {
  private readonly slots: Int32Array;
  private readonly mask: number;

  /** @param bits the table holds `2^bits` slots (default 2^16: 256 KiB) */
  constructor(bits = 16) {
    if (!Number.isInteger(bits) || bits < 1 || bits > 30) throw new RangeError(`sightings table bits must be 1..30, got ${bits}`);
    this.slots = new Int32Array(1 << bits);
    this.mask = (1 << bits) - 1;
  }

  /** Records a sighting; true when this hash was already in its slot. */
  seen(hash: number): boolean {
    const i = (hash ^ (hash >>> 16)) & this.mask;
    if (this.slots[i] === hash) return true;
    this.slots[i] = hash;
    return false;
  }

  clear(): void {
    this.slots.fill(0);
  }
}

/** Bounded in-process LRU. */
export class MemoryPredictionCache implements PredictionCache {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, string>;
  private readonly sightings: Sightings | undefined;

  /**
   * @param maxEntries most entries kept; the least recently used is evicted beyond it
   * @param ttlSeconds lifetime of an entry; 0 = until evicted
   * @param repeatOnly admit a row only the second time it is seen (see {@link Sightings}); else every row.
   *   The sightings table has about 1.5 slots per entry (at least 1024): a row is admitted when it
   *   comes back within roughly the cache's capacity of other rows. Rows that come back less often
   *   would be evicted before their next use anyway, so cyclic traffic wider than the cache (say
   *   64 000 distinct rows against 10 000 entries) does not churn it.
   */
  constructor(maxEntries: number, ttlSeconds: number, repeatOnly = true) {
    this.lru = new LRUCache<string, string>({ max: maxEntries, ...(ttlSeconds > 0 ? { ttl: ttlSeconds * 1000, ttlAutopurge: false } : {}) });
    this.sightings = repeatOnly ? new Sightings(Math.min(24, Math.max(10, Math.ceil(Math.log2(maxEntries * 1.5))))) : undefined;
  }

  admits(hash: number): boolean {
    return this.sightings === undefined || this.sightings.seen(hash);
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
    this.sightings?.clear();
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
    repeatOnly = false,
  ) {
    this.sightings = repeatOnly ? new Sightings() : undefined;
  }

  private readonly sightings: Sightings | undefined;

  /**
   * Every row by default: a look-up is a round trip either way, and an answer stored here serves
   * every replica, while the admission filter only knows the rows this process has seen.
   */
  admits(hash: number): boolean {
    return this.sightings === undefined || this.sightings.seen(hash);
  }

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

/** Whether the shared cache can be used now (see `RedisHealth.usable`). */
export interface CacheAvailability {
  readonly usable: boolean;
}

/**
 * The Redis cache with an in-memory stand-in: while Redis is unavailable, look-ups and stores go
 * to a bounded local cache of this process instead of missing every time, so a Redis outage does
 * not also turn every repeated row into model work. Keys carry the model version's cache tag, so
 * entries made during an outage can never answer for another version. Clearing clears both.
 */
export class FallbackPredictionCache implements PredictionCache {
  readonly kind = 'redis' as const;

  constructor(
    private readonly shared: RedisPredictionCache,
    private readonly local: MemoryPredictionCache,
    private readonly availability: CacheAvailability,
  ) {}

  private get current(): PredictionCache {
    return this.availability.usable ? this.shared : this.local;
  }

  admits(hash: number): boolean {
    return this.current.admits(hash);
  }

  get(key: string): string | undefined | Promise<string | undefined> {
    return this.current.get(key);
  }

  set(key: string, value: string): void {
    this.current.set(key, value);
  }

  getMany(keys: readonly string[]): CachedFragments | Promise<CachedFragments> {
    return this.current.getMany(keys);
  }

  setMany(keys: readonly string[], values: readonly string[]): void {
    this.current.setMany(keys, values);
  }

  /** Clears the local stand-in, then Redis (503 while Redis is not reachable, as before). */
  async clear(): Promise<number> {
    const local = await this.local.clear();
    return local + (await this.shared.clear());
  }

  size(): null {
    return null;
  }
}
