/**
 * Per-model serving tunables from registered-model tags, and the server-wide batching and cache
 * variables: parsing, what a loaded model ends up with, the warning for a bad tag, and that the
 * queue delay a tag sets is really applied.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { createArtifactStore } from '../../src/artifacts/index.ts';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { onnxRuntime } from '../../src/onnx/runtime.ts';
import { MAX_BATCH_SIZE_TAG, MAX_QUEUE_DELAY_TAG, ServingService, tunablesFromTags, type IgnoredTag } from '../../src/serving/index.ts';
import { LoadedModel, runRows } from '../../src/serving/loaded-model.ts';
import { ServingMetrics } from '../../src/serving/metrics.ts';
import { buildTestApp, type TestApp } from '../helper.ts';
import { buildServingApp, linearRegressor, MemoryRegistry } from './harness.ts';

const MODEL = linearRegressor(['a', 'b'], [2, 3], 1);

void describe('tunablesFromTags', () => {
  const parse = (tags: Record<string, string> | undefined) => {
    const ignored: IgnoredTag[] = [];
    return { tunables: tunablesFromTags(tags, (i) => ignored.push(i)), ignored };
  };

  test('reads both tags, allowing surrounding spaces; other tags are not its business', () => {
    assert.deepEqual(parse({ [MAX_QUEUE_DELAY_TAG]: ' 500 ', [MAX_BATCH_SIZE_TAG]: '64', team: 'fraud', 'modelplane.other': 'x' }), {
      tunables: { maxQueueDelayUs: 500, maxBatchRows: 64 },
      ignored: [],
    });
    assert.deepEqual(parse({ [MAX_QUEUE_DELAY_TAG]: '0' }).tunables, { maxQueueDelayUs: 0 });
    assert.deepEqual(parse(undefined), { tunables: {}, ignored: [] });
    assert.deepEqual(parse({}), { tunables: {}, ignored: [] });
  });

  test('a value that is not a whole number in range is reported and left out', () => {
    for (const value of ['soon', '', '1.5', '-1', '1e3', '0x10', '10000001']) {
      const { tunables, ignored } = parse({ [MAX_QUEUE_DELAY_TAG]: value });
      assert.deepEqual(tunables, {}, value);
      assert.deepEqual(ignored, [{ tag: MAX_QUEUE_DELAY_TAG, value, expected: 'an integer from 0 to 10000000' }]);
    }
    const { tunables, ignored } = parse({ [MAX_BATCH_SIZE_TAG]: '0', [MAX_QUEUE_DELAY_TAG]: '20' });
    assert.deepEqual(tunables, { maxQueueDelayUs: 20 });
    assert.deepEqual(ignored, [{ tag: MAX_BATCH_SIZE_TAG, value: '0', expected: 'an integer from 1 to 100000' }]);
  });
});

void describe('serving service with registered-model tags', () => {
  let dir: string;
  let artifacts: ArtifactStore;
  let registry: MemoryRegistry;
  let service: ServingService;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-tunables-'));
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'warn', MAX_BATCH_SIZE: '100' });
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger(config, { destination });
    artifacts = await createArtifactStore(undefined, dir);
    registry = new MemoryRegistry(artifacts);
    for (const name of ['tagged', 'typo', 'plain']) await registry.register(name, MODEL, {}, 'Production');
    registry.setModelTags('tagged', { [MAX_QUEUE_DELAY_TAG]: '250000', [MAX_BATCH_SIZE_TAG]: '1000' });
    registry.setModelTags('typo', { [MAX_QUEUE_DELAY_TAG]: 'soon', [MAX_BATCH_SIZE_TAG]: '0' });
    service = new ServingService(
      { config, log, artifacts, onnx: onnxRuntime, metrics: new ServingMetrics(new Registry()), registry, file: undefined },
      { maxQueueDelayUs: 100, pollMs: 60_000, sweepMs: 60_000 },
    );
    await service.start();
  });
  after(async () => {
    await service.close();
    await artifacts.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const load = async (name: string): Promise<LoadedModel> => {
    const picked = service.pick({ model: name });
    return picked instanceof LoadedModel ? picked : await picked;
  };

  test('tags override the server-wide settings; the queue bound follows the model batch size', async () => {
    assert.deepEqual(service.batchingOf(await load('tagged')), { maxBatchRows: 1000, maxQueueRows: 8000, maxQueueDelayUs: 250_000 });
    assert.deepEqual(service.batchingOf(await load('plain')), { maxBatchRows: 100, maxQueueRows: 4096, maxQueueDelayUs: 100 });
  });

  test('a bad tag is logged as a warning and ignored; the model still serves', async () => {
    const m = await load('typo');
    assert.deepEqual(service.batchingOf(m), { maxBatchRows: 100, maxQueueRows: 4096, maxQueueDelayUs: 100 });
    const warnings = logLines.filter((l) => l['level'] === 40 && l['model'] === 'typo');
    assert.deepEqual(
      warnings.map((w) => [w['tag'], w['value']]),
      [
        [MAX_QUEUE_DELAY_TAG, 'soon'],
        [MAX_BATCH_SIZE_TAG, '0'],
      ],
    );
    assert.match(String(warnings[0]!['msg']), /modelplane\.max_queue_delay_us.*integer from 0 to 10000000/);
    const slice = await runRows(m, Float32Array.of(1, 2), 1);
    assert.equal(slice.outputs.values?.[slice.offset], 9);
  });

  test('the queue delay a tag sets holds a lone request that long', async () => {
    const m = await load('tagged');
    const t0 = performance.now();
    const slice = await runRows(m, Float32Array.of(1, 1), 1);
    const waited = performance.now() - t0;
    assert.equal(slice.outputs.values?.[slice.offset], 6);
    assert.ok(waited >= 240, `answered after ${waited} ms`);
  });
});

void describe('serving tunables from the environment', () => {
  test('BATCH_* and PREDICTION_CACHE_SIZE reach serving; options given in code win', async () => {
    const t = await buildServingApp({
      env: { MODEL_NAME: 'm', BATCH_MAX_QUEUE_DELAY_US: '1500', BATCH_MAX_QUEUE_ROWS: '64', PREDICTION_CACHE_SIZE: '2', PREDICTION_CACHE_ADMIT: 'always' },
      seed: async (r) => void (await r.register('m', MODEL, {}, 'Production')),
    });
    try {
      const m = t.serving.service.defaultModel!;
      assert.deepEqual(t.serving.service.batchingOf(m), { maxBatchRows: 1000, maxQueueRows: 64, maxQueueDelayUs: 1500 });
      for (const a of [1, 2, 3]) {
        const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { features: [a, 0] }, headers: t.headers('predict') });
        assert.equal(res.statusCode, 200, res.body);
      }
      assert.equal(t.serving.cache?.size(), 2);
    } finally {
      await t.close();
    }
    const coded = await buildServingApp({
      env: { MODEL_NAME: 'm', BATCH_MAX_QUEUE_DELAY_US: '1500', PREDICTION_CACHE_SIZE: '0' },
      seed: async (r) => void (await r.register('m', MODEL, {}, 'Production')),
      serving: { maxQueueDelayUs: 10 },
      cache: { entries: 5 },
    });
    try {
      assert.equal(coded.serving.service.batchingOf(coded.serving.service.defaultModel!)?.maxQueueDelayUs, 10);
      assert.equal(coded.serving.cache?.kind, 'memory');
    } finally {
      await coded.close();
    }
  });

  test('PREDICTION_CACHE_SIZE=0 turns the cache off', async () => {
    const t = await buildServingApp({ env: { MODEL_NAME: 'm', PREDICTION_CACHE_SIZE: '0' }, seed: async (r) => void (await r.register('m', MODEL, {}, 'Production')) });
    try {
      assert.equal(t.serving.cache, undefined);
      for (let i = 0; i < 2; i++) {
        const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { features: [1, 2] }, headers: t.headers('predict') });
        assert.equal(res.json<{ cached: boolean }>().cached, false);
      }
      const health = await t.app.inject({ url: '/health/model', headers: t.headers('read') });
      assert.deepEqual(health.json<{ cache: unknown }>().cache, { enabled: false });
    } finally {
      await t.close();
    }
  });
});

void describe('registered-model tags through the real registry', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PER_MINUTE: '0' } });
  });
  after(() => t.close());

  const register = async (name: string, tags: Record<string, string>): Promise<void> => {
    const created = await t.app.inject({ method: 'POST', url: '/models', payload: { name }, headers: t.headers('train') });
    assert.equal(created.statusCode, 201, created.body);
    // Set afterwards, as an MLflow user would on an existing model.
    const patched = await t.app.inject({ method: 'PATCH', url: `/models/${name}`, payload: { tags }, headers: t.headers('train') });
    assert.equal(patched.statusCode, 200, patched.body);
    const uploaded = await t.app.inject({
      method: 'POST',
      url: `/models/${name}/versions`,
      payload: Buffer.from(MODEL),
      headers: { 'content-type': 'application/octet-stream', ...t.headers('train') },
    });
    assert.equal(uploaded.statusCode, 201, uploaded.body);
    const moved = await t.app.inject({ method: 'POST', url: '/models/transition', payload: { name, version: 1, stage: 'Production' }, headers: t.headers('admin') });
    assert.equal(moved.statusCode, 200, moved.body);
  };

  const predict = (name: string) => t.app.inject({ method: 'POST', url: `/models/${name}/predict`, payload: { features: [1, 2] }, headers: t.headers('predict') });

  test('a queue delay tag on the registered model applies to its loaded version', async () => {
    await register('delayed', { [MAX_QUEUE_DELAY_TAG]: '200000', [MAX_BATCH_SIZE_TAG]: '16' });
    const t0 = performance.now();
    const res = await predict('delayed');
    const waited = performance.now() - t0;
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ prediction: number }>().prediction, 9);
    assert.ok(waited >= 190, `answered after ${waited} ms`);
    const service = t.services.serving.service;
    const m = service.loadedModels().find((l) => l.identity.name === 'delayed')!;
    assert.deepEqual(service.batchingOf(m), { maxBatchRows: 16, maxQueueRows: 4096, maxQueueDelayUs: 200_000 });
    assert.deepEqual((await t.services.registry.reader.resolve('delayed', {}))?.modelTags, { [MAX_QUEUE_DELAY_TAG]: '200000', [MAX_BATCH_SIZE_TAG]: '16' });
  });

  test('a bad tag value does not break serving', async () => {
    await register('typo', { [MAX_QUEUE_DELAY_TAG]: 'fast please' });
    const res = await predict('typo');
    assert.equal(res.statusCode, 200, res.body);
    const service = t.services.serving.service;
    const m = service.loadedModels().find((l) => l.identity.name === 'typo')!;
    assert.equal(service.batchingOf(m)?.maxQueueDelayUs, 0);
  });
});
