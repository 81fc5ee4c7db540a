/**
 * One contract for both prediction caches (in memory, and Redis at TEST_REDIS_URL), plus what
 * only one of them does: the memory bound, Redis key prefixes, expiry and a Redis that is down.
 * Every Redis test works under its own key prefix and removes its keys afterwards.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { AppError } from '../../src/platform/errors.ts';
import { MemoryPredictionCache, RedisPredictionCache, Sightings, cacheKey, cacheSeed, rowHash, type PredictionCache } from '../../src/serving/cache.ts';
import { redisKeysUnder, TEST_REDIS_URL } from '../helper.ts';
import { sleep } from './harness.ts';

interface CacheOptions {
  readonly maxEntries?: number;
  readonly ttlSeconds?: number;
}

interface Backend {
  readonly name: string;
  /** A fresh, empty cache. */
  make(options?: CacheOptions): PredictionCache;
  /** A TTL this backend supports and how long to wait for it to pass. */
  readonly shortTtl: { readonly seconds: number; readonly waitMs: number };
}

let admin: Redis;
const prefixes: string[] = [];

/** Keys under a prefix (read straight from Redis, not through the cache). */
const keysUnder = (prefix: string): Promise<string[]> => redisKeysUnder(admin, prefix);

function uniquePrefix(): string {
  const prefix = `modelplane-test:cache:${randomUUID()}:`;
  prefixes.push(prefix);
  return prefix;
}

const memory: Backend = {
  name: 'memory',
  make: (o = {}) => new MemoryPredictionCache(o.maxEntries ?? 100, o.ttlSeconds ?? 0),
  // A second, as for Redis: with 50 ms a loaded machine let entries expire before the first read.
  shortTtl: { seconds: 1, waitMs: 1300 },
};

const redis: Backend = {
  name: 'redis',
  make: (o = {}) => new RedisPredictionCache(admin, o.ttlSeconds ?? 0, uniquePrefix()),
  // Redis expiry has whole seconds (EX).
  shortTtl: { seconds: 1, waitMs: 1300 },
};

before(async () => {
  admin = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  await admin.ping();
});

afterEach(async () => {
  for (const prefix of prefixes.splice(0)) {
    const keys = await keysUnder(prefix);
    if (keys.length > 0) await admin.unlink(...keys);
  }
});

after(async () => {
  await admin.quit();
});

for (const backend of [memory, redis]) {
  void describe(`prediction cache contract (${backend.name})`, () => {
    test('get answers what set stored, and undefined for a key never set', async () => {
      const cache = backend.make();
      assert.equal(await cache.get('absent'), undefined);
      cache.set('a', '"prediction":1');
      cache.set('b', '"prediction":"x"');
      await sleep(20); // Redis writes are fire-and-forget
      assert.equal(await cache.get('a'), '"prediction":1');
      assert.equal(await cache.get('b'), '"prediction":"x"');
      cache.set('a', '"prediction":2');
      await sleep(20);
      assert.equal(await cache.get('a'), '"prediction":2');
    });

    test('getMany answers in key order with undefined for misses; setMany stores every pair', async () => {
      const cache = backend.make();
      assert.deepEqual(await cache.getMany([]), []);
      cache.setMany(['k1', 'k2', 'k3'], ['one', 'two', 'three']);
      await sleep(20);
      assert.deepEqual(await cache.getMany(['k3', 'nope', 'k1', 'k2', 'k1']), ['three', undefined, 'one', 'two', 'one']);
      assert.equal(await cache.get('k2'), 'two');
      cache.setMany([], []);
    });

    test('keys and row hashes are exact float bits, the same for a row alone or inside a batch', () => {
      const rows = Float32Array.of(1, 2, 3, 4.5, -0, Number.NaN);
      const keys = [0, 1, 2].map((i) => cacheKey('m\u00001\u0000', rows.subarray(i * 2, i * 2 + 2)));
      assert.equal(new Set(keys).size, 3);
      // Exact float bits: 0 and -0 are different rows.
      assert.notEqual(cacheKey('t', Float32Array.of(0)), cacheKey('t', Float32Array.of(-0)));
      assert.notEqual(rowHash(1, Float32Array.of(0), 0, 1), rowHash(1, Float32Array.of(-0), 0, 1));
      // A view into a larger buffer keys and hashes only its own bytes.
      const view = new Float64Array([9, 9, 1, 2, 9]).subarray(2, 4);
      assert.equal(cacheKey('t', view), cacheKey('t', Float64Array.of(1, 2)));
      assert.equal(rowHash(7, view, 0, 2), rowHash(7, Float64Array.of(1, 2), 0, 1 * 2));
      assert.equal(rowHash(7, rows, 1, 2), rowHash(7, Float32Array.of(3, 4.5), 0, 2));
      // The seed (the model version) is part of the hash; 0 is never returned.
      assert.notEqual(rowHash(cacheSeed('a'), rows, 0, 2), rowHash(cacheSeed('b'), rows, 0, 2));
      for (let i = 0; i < 1000; i++) assert.notEqual(rowHash(i, Float32Array.of(i), 0, 1), 0);
    });

    test('entries expire after the TTL', async () => {
      const cache = backend.make({ ttlSeconds: backend.shortTtl.seconds });
      cache.set('one', 'v1');
      cache.setMany(['many1', 'many2'], ['m1', 'm2']);
      await sleep(20);
      assert.deepEqual(await cache.getMany(['one', 'many1', 'many2']), ['v1', 'm1', 'm2']);
      await sleep(backend.shortTtl.waitMs);
      assert.deepEqual(await cache.getMany(['one', 'many1', 'many2']), [undefined, undefined, undefined]);
      assert.equal(await cache.get('one'), undefined);
    });

    test('without a TTL entries stay', async () => {
      const cache = backend.make({ ttlSeconds: 0 });
      cache.set('stay', 'v');
      await sleep(backend.shortTtl.waitMs / 4);
      assert.equal(await cache.get('stay'), 'v');
    });

    test('clear removes every entry and counts them', async () => {
      const cache = backend.make();
      cache.setMany(['x', 'y', 'z'], ['1', '2', '3']);
      await sleep(20);
      assert.equal(await cache.clear(), 3);
      assert.deepEqual(await cache.getMany(['x', 'y', 'z']), [undefined, undefined, undefined]);
      assert.equal(await cache.clear(), 0);
    });
  });
}

void describe('memory prediction cache', () => {
  test('holds at most maxEntries, evicting the least recently used', () => {
    const cache = new MemoryPredictionCache(3, 0);
    cache.setMany(['a', 'b', 'c'], ['1', '2', '3']);
    assert.equal(cache.get('a'), '1'); // a is now the most recent
    cache.set('d', '4');
    cache.setMany(['e'], ['5']);
    assert.equal(cache.size(), 3);
    assert.deepEqual(cache.getMany(['a', 'b', 'c', 'd', 'e']), ['1', undefined, undefined, '4', '5']);
  });

  test('admits a row the second time it is seen; clear() forgets the sightings too', async () => {
    const cache = new MemoryPredictionCache(10, 0);
    const h = rowHash(cacheSeed('m'), Float32Array.of(1, 2), 0, 2);
    assert.equal(cache.admits(h), false);
    assert.equal(cache.admits(h), true);
    assert.equal(cache.admits(h), true);
    await cache.clear();
    assert.equal(cache.admits(h), false);
  });

  test('PREDICTION_CACHE_ADMIT=always: every row is admitted', () => {
    const cache = new MemoryPredictionCache(10, 0, false);
    assert.equal(cache.admits(123), true);
  });

  test('sightings: a slot holds the latest hash that maps to it', () => {
    const s = new Sightings(4);
    assert.equal(s.seen(5), false);
    assert.equal(s.seen(5), true);
    // 21 = 5 + 16 lands in the same of 16 slots and pushes 5 out.
    assert.equal(s.seen(21), false);
    assert.equal(s.seen(5), false);
  });

  test('answers synchronously', () => {
    const cache = new MemoryPredictionCache(10, 0);
    cache.set('k', 'v');
    assert.equal(cache.get('k'), 'v');
    assert.ok(Array.isArray(cache.getMany(['k'])));
  });
});

void describe('redis prediction cache', () => {
  test('admits every row by default, rows seen twice when told to', () => {
    assert.equal(new RedisPredictionCache(admin, 0, uniquePrefix()).admits(42), true);
    const repeat = new RedisPredictionCache(admin, 0, uniquePrefix(), () => undefined, true);
    assert.equal(repeat.admits(42), false);
    assert.equal(repeat.admits(42), true);
  });

  test('keys live under the prefix and expire with SET EX', async () => {
    const prefix = uniquePrefix();
    const cache = new RedisPredictionCache(admin, 30, prefix);
    cache.set('one', 'v');
    cache.setMany(['two', 'three'], ['v2', 'v3']);
    await sleep(20);
    assert.deepEqual(await keysUnder(prefix), [`${prefix}one`, `${prefix}three`, `${prefix}two`]);
    for (const key of ['one', 'two', 'three']) {
      const ttl = await admin.ttl(prefix + key);
      assert.ok(ttl > 0 && ttl <= 30, `ttl of ${key}: ${ttl}`);
    }
    const forever = new RedisPredictionCache(admin, 0, prefix);
    forever.setMany(['four'], ['v4']);
    forever.set('five', 'v5');
    await sleep(20);
    assert.equal(await admin.ttl(`${prefix}four`), -1);
    assert.equal(await admin.ttl(`${prefix}five`), -1);
  });

  test('getMany is one MGET for all keys; setMany without a TTL is one MSET', async () => {
    const prefix = uniquePrefix();
    const monitor = await admin.monitor();
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(prefix))) seen.push(args);
    });
    try {
      const cache = new RedisPredictionCache(admin, 0, prefix);
      cache.setMany(['a', 'b', 'c'], ['1', '2', '3']);
      assert.deepEqual(await cache.getMany(['a', 'b', 'c', 'd']), ['1', '2', '3', undefined]);
      await sleep(50);
    } finally {
      monitor.disconnect();
    }
    assert.deepEqual(
      seen.map((args) => args[0]!.toLowerCase()),
      ['mset', 'mget'],
    );
    assert.deepEqual(seen[1]!.slice(1), ['a', 'b', 'c', 'd'].map((k) => prefix + k));
  });

  test('a fractional TTL is rounded up to whole seconds', async () => {
    const prefix = uniquePrefix();
    new RedisPredictionCache(admin, 0.2, prefix).set('k', 'v');
    await sleep(20);
    assert.equal(await admin.ttl(`${prefix}k`), 1);
  });

  test('clear counts and removes only its own prefix', async () => {
    const mine = new RedisPredictionCache(admin, 0, uniquePrefix());
    const othersPrefix = uniquePrefix();
    const others = new RedisPredictionCache(admin, 0, othersPrefix);
    mine.setMany(['a', 'b'], ['1', '2']);
    others.setMany(['a', 'b', 'c'], ['1', '2', '3']);
    // A key that merely starts like the prefix with glob characters in it is not matched.
    const globby = new RedisPredictionCache(admin, 0, `${othersPrefix}[x]*:`);
    prefixes.push(`${othersPrefix}[x]*:`);
    globby.set('g', '1');
    await sleep(20);
    assert.equal(await mine.clear(), 2);
    assert.deepEqual(await others.getMany(['a', 'b', 'c']), ['1', '2', '3']);
    assert.equal(await globby.clear(), 1);
    assert.deepEqual(await others.getMany(['a', 'b', 'c']), ['1', '2', '3']);
    assert.equal(await others.clear(), 3);
  });

  test('clear removes more keys than one SCAN page', async () => {
    const cache = new RedisPredictionCache(admin, 0, uniquePrefix());
    const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`);
    cache.setMany(keys, keys);
    await sleep(50);
    assert.equal(await cache.clear(), 2500);
  });

  test('a failing command is reported and the look-up misses', async () => {
    const prefix = uniquePrefix();
    const errors: unknown[] = [];
    const cache = new RedisPredictionCache(admin, 0, prefix, (err) => errors.push(err));
    await admin.hset(`${prefix}hash`, 'f', 'v'); // GET on a hash fails with WRONGTYPE
    assert.equal(await cache.get('hash'), undefined);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /WRONGTYPE/);
  });

  test('a connection closed while a look-up is in flight makes it miss', async () => {
    const client = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    await client.ping();
    const prefix = uniquePrefix();
    await admin.set(`${prefix}k`, 'v');
    const errors: unknown[] = [];
    const cache = new RedisPredictionCache(client, 0, prefix, (err) => errors.push(err));
    assert.equal(await cache.get('k'), 'v');
    const single = cache.get('k');
    const many = cache.getMany(['k', 'k']);
    // The connection drops (as on a network failure) before the replies arrive.
    client.stream.destroy();
    assert.equal(await single, undefined);
    assert.deepEqual(await many, [undefined, undefined]);
    assert.equal(errors.length, 2);
    // Disconnected for good: look-ups miss at once, writes are dropped, clear is a 503.
    assert.equal(await cache.get('k'), undefined);
    assert.doesNotThrow(() => cache.set('k', 'other'));
    assert.doesNotThrow(() => cache.setMany(['k'], ['other']));
    await assert.rejects(cache.clear(), (err: unknown) => err instanceof AppError && err.status === 503);
    assert.equal(await admin.get(`${prefix}k`), 'v');
  });

  test('a Redis that is down makes look-ups miss at once, without throwing', async () => {
    const port = await closedPort();
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 20, connectTimeout: 200 });
    client.on('error', () => undefined);
    try {
      const cache = new RedisPredictionCache(client, 60, uniquePrefix());
      await sleep(50);
      const t0 = performance.now();
      assert.equal(await cache.get('k'), undefined);
      assert.deepEqual(await cache.getMany(['a', 'b']), [undefined, undefined]);
      cache.set('k', 'v');
      cache.setMany(['a'], ['v']);
      assert.ok(performance.now() - t0 < 50, `look-ups waited ${performance.now() - t0} ms`);
      await assert.rejects(cache.clear(), (err: unknown) => err instanceof AppError && err.status === 503);
      // Nothing was queued for later: the offline queue stays empty.
      assert.equal((client as unknown as { offlineQueue: { length: number } }).offlineQueue.length, 0);
    } finally {
      client.disconnect();
    }
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
