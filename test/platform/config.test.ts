import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.ts';

describe('loadConfig', () => {
  test('defaults need no environment', () => {
    const c = loadConfig({});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8000);
    assert.equal(c.model.stage, 'Production');
    assert.equal(c.model.fallbackStage, 'Staging');
    assert.equal(c.maxBatchSize, 1000);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.apiKey, undefined);
    // Rate limiting is off unless configured: no default throttles a high-throughput client (#12).
    assert.equal(c.rateLimitPerMinute, 0);
    // Trained models: up to what onnxruntime reads.
    assert.equal(c.trainingMaxModelBytes, 2 ** 31 - 1);
    assert.equal(loadConfig({ TRAINING_MAX_MODEL_BYTES: '500000000' }).trainingMaxModelBytes, 500_000_000);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.model));
  });

  test('CLI overrides win over the environment', () => {
    const c = loadConfig({ API_PORT: '9000', API_HOST: '0.0.0.0' }, { port: 9100, host: '::1' });
    assert.equal(c.port, 9100);
    assert.equal(c.host, '::1');
  });

  const bad: Array<[Record<string, string>, string, RegExp]> = [
    [{ API_PORT: 'abc' }, 'API_PORT', /integer from 0 to 65535/],
    [{ API_PORT: '70000' }, 'API_PORT', /integer/],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /URL/],
    [{ DATABASE_URL: 'mysql://x@y/z' }, 'DATABASE_URL', /postgres/],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /redis/],
    [{ MODEL_STAGE: 'Prod' }, 'MODEL_STAGE', /one of None, Staging, Production, Archived/],
    [{ MAX_BATCH_SIZE: '0' }, 'MAX_BATCH_SIZE', /integer/],
    [{ ENABLE_PROMETHEUS: 'maybe' }, 'ENABLE_PROMETHEUS', /true or false/],
    [{ API_KEY: 'short' }, 'API_KEY', /at least 16/],
    [{ MODEL_DEVICE: 'tpu' }, 'MODEL_DEVICE', /cpu, cuda/],
    [{ PREDICTION_LOG_SAMPLE_RATE: '2' }, 'PREDICTION_LOG_SAMPLE_RATE', /number from 0 to 1/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of/],
    [{ PREDICTION_CACHE_SIZE: '-1' }, 'PREDICTION_CACHE_SIZE', /integer from 0/],
    [{ PREDICTION_CACHE_SIZE: 'lots' }, 'PREDICTION_CACHE_SIZE', /integer/],
    [{ PREDICTION_CACHE_TTL: '1.5' }, 'PREDICTION_CACHE_TTL', /integer from 0/],
    [{ PREDICTION_CACHE_ADMIT: 'sometimes' }, 'PREDICTION_CACHE_ADMIT', /repeat, always/],
    [{ BATCH_MAX_QUEUE_DELAY_US: '-5' }, 'BATCH_MAX_QUEUE_DELAY_US', /integer from 0 to 10000000/],
    [{ BATCH_MAX_QUEUE_DELAY_US: '20000000' }, 'BATCH_MAX_QUEUE_DELAY_US', /integer from 0 to 10000000/],
    [{ BATCH_MAX_QUEUE_ROWS: '0' }, 'BATCH_MAX_QUEUE_ROWS', /integer from 1/],
    [{ REDIS_COMMAND_TIMEOUT_MS: '0' }, 'REDIS_COMMAND_TIMEOUT_MS', /integer from 1 to 600000/],
    [{ REDIS_COMMAND_TIMEOUT_MS: '0.5s' }, 'REDIS_COMMAND_TIMEOUT_MS', /integer from 1 to 600000/],
    [{ REDIS_CONNECT_TIMEOUT_MS: '50' }, 'REDIS_CONNECT_TIMEOUT_MS', /integer from 100 to 600000/],
    [{ REDIS_CONNECT_TIMEOUT_MS: '1e9' }, 'REDIS_CONNECT_TIMEOUT_MS', /integer from 100 to 600000/],
    [{ PROMETHEUS_PORT: '65536' }, 'PROMETHEUS_PORT', /integer from 0 to 65535/],
    [{ TRAINING_MAX_MODEL_BYTES: '2147483648' }, 'TRAINING_MAX_MODEL_BYTES', /integer from 1024 to 2147483647/],
    [{ TRAINING_MAX_MODEL_BYTES: '100' }, 'TRAINING_MAX_MODEL_BYTES', /integer from 1024 to 2147483647/],
  ];
  for (const [env, variable, expected] of bad) {
    test(`rejects ${JSON.stringify(env)} naming ${variable}`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && expected.test(err.message) && err.message.includes(variable),
      );
    });
  }

  test('never echoes a database password in the error', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'mysql://user:s3cret@host/db' }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('s3cret'),
    );
  });

  test('composes REDIS_HOST/REDIS_PORT and the older S3_BUCKET_NAME + MODEL_KEY spelling', () => {
    const c = loadConfig({ REDIS_HOST: 'cache', REDIS_PORT: '6380', S3_BUCKET_NAME: 'models', MODEL_KEY: '/prod/model.onnx' });
    assert.equal(c.redisUrl, 'redis://cache:6380');
    assert.equal(c.model.path, 's3://models/prod/model.onnx');
  });

  test('MODEL_FALLBACK_STAGE=none disables the fallback', () => {
    assert.equal(loadConfig({ MODEL_FALLBACK_STAGE: 'none' }).model.fallbackStage, undefined);
    assert.equal(loadConfig({ MODEL_FALLBACK_STAGE: 'Archived' }).model.fallbackStage, 'Archived');
  });

  test('prediction cache and batching tunables: defaults and values', () => {
    const d = loadConfig({});
    // TTL and queue bound stay unset so serving applies the backend's and the model's defaults.
    assert.deepEqual(d.predictionCache, { size: 10_000 });
    assert.deepEqual(d.batching, { maxQueueDelayUs: 0 });
    assert.ok(Object.isFrozen(d.predictionCache) && Object.isFrozen(d.batching));
    const c = loadConfig({ PREDICTION_CACHE_SIZE: '0', PREDICTION_CACHE_TTL: '0', BATCH_MAX_QUEUE_DELAY_US: ' 250 ', BATCH_MAX_QUEUE_ROWS: '64' });
    assert.deepEqual(c.predictionCache, { size: 0, ttlSeconds: 0 });
    assert.deepEqual(c.batching, { maxQueueDelayUs: 250, maxQueueRows: 64 });
    assert.equal(loadConfig({ PREDICTION_CACHE_TTL: '' }).predictionCache.ttlSeconds, undefined);
    assert.equal(loadConfig({}).predictionCache.admit, undefined);
    assert.equal(loadConfig({ PREDICTION_CACHE_ADMIT: 'Always' }).predictionCache.admit, 'always');
  });

  test('Redis timeouts: 500 ms per command and 5 s per connection attempt unless set', () => {
    assert.deepEqual(loadConfig({}).redis, { commandTimeoutMs: 500, connectTimeoutMs: 5000 });
    assert.deepEqual(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '2000', REDIS_CONNECT_TIMEOUT_MS: '15000' }).redis, { commandTimeoutMs: 2000, connectTimeoutMs: 15_000 });
    assert.ok(Object.isFrozen(loadConfig({}).redis));
  });

  test('CORS_ORIGINS is a comma list', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }).corsOrigins, ['https://a.example', 'https://b.example']);
  });
});

describe('the settings the README documents', () => {
  const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5));

  test('every variable of the schema is in the README\'s configuration section', () => {
    const missing = Object.keys(EnvSchema.properties).filter((name) => !table.includes(name));
    assert.deepEqual(missing, []);
  });

  test('every variable the configuration table names is read by the schema', () => {
    const named = [...table.matchAll(/`([A-Z][A-Z0-9_]{2,})`/g)].map((m) => m[1]!).filter((n) => !['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'NODE_OPTIONS'].includes(n));
    const unknown = [...new Set(named)].filter((n) => !(n in EnvSchema.properties));
    assert.deepEqual(unknown, []);
  });
});

describe('settings with behaviour of their own', () => {
  test('LOG_FORMAT: json, pretty, and auto (readable on a terminal, never in CI)', () => {
    assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logPretty, false);
    assert.equal(loadConfig({ LOG_FORMAT: 'pretty' }).logPretty, true);
    assert.equal(loadConfig({ LOG_FORMAT: 'auto', CI: 'true' }).logPretty, false);
    assert.throws(() => loadConfig({ LOG_FORMAT: 'xml' }), (err: unknown) => err instanceof ConfigError && err.variable === 'LOG_FORMAT');
  });

  test('the CLI key: MODELPLANE_API_KEY, else API_KEY; secrets never echoed', () => {
    assert.equal(loadConfig({ MODELPLANE_API_KEY: 'k'.repeat(20), API_KEY: 'a'.repeat(20) }).cliApiKey, 'k'.repeat(20));
    assert.equal(loadConfig({ API_KEY: 'a'.repeat(20) }).cliApiKey, 'a'.repeat(20));
    assert.throws(
      () => loadConfig({ API_KEY: 'tooshort-secret' }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('tooshort-secret'),
    );
  });

  test('serve --demo names a default model that MODEL_NAME still overrides', () => {
    assert.equal(loadConfig({}, { defaultModelName: 'iris-demo' }).model.name, 'iris-demo');
    assert.equal(loadConfig({ MODEL_NAME: 'mine' }, { defaultModelName: 'iris-demo' }).model.name, 'mine');
  });
});
