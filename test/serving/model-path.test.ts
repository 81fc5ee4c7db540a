import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { HAS_SAMPLES, SAMPLES, buildServingApp, linearClassifier, sleep } from './harness.ts';

const A = linearClassifier(['a', 'b'], ['first', 'second'], [[0, 0]], [-10]);
const B = linearClassifier(['a', 'b'], ['first', 'second'], [[0, 0]], [10]);

void describe('single-file mode (MODEL_PATH)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-model-path-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('serves the file, and reloads it when it changes, without failed requests', async () => {
    const file = path.join(dir, 'churn.onnx');
    writeFileSync(file, A);
    const t = await buildServingApp({ env: { MODEL_PATH: file, MODEL_CACHE_TTL: '0.2' } });
    try {
      assert.equal((await t.app.inject({ url: '/ready' })).statusCode, 200);
      const predict = async () => {
        const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { a: 1, b: 2 }, headers: t.headers('predict') });
        assert.equal(res.statusCode, 200, res.body);
        return res.json<{ prediction: string; model_name: string; model_version: string; stage: null }>();
      };
      const first = await predict();
      assert.deepEqual([first.prediction, first.model_name, first.model_version, first.stage], ['first', 'churn', 'file:1', null]);
      // Atomic replace, as deployment tools do.
      writeFileSync(`${file}.tmp`, B);
      renameSync(`${file}.tmp`, file);
      let last = first;
      for (let i = 0; i < 100 && last.prediction === 'first'; i++) {
        await sleep(20);
        last = await predict();
      }
      assert.deepEqual([last.prediction, last.model_version], ['second', 'file:2']);
      const reload = await t.app.inject({ method: 'POST', url: '/model/reload', headers: t.headers('admin') });
      assert.equal(reload.statusCode, 200, reload.body);
      assert.equal((await predict()).model_version, 'file:3');
      // ?model= needs a registry entry; a version selector without ?model= is refused in file mode.
      const sel = await t.app.inject({ method: 'POST', url: '/predict?version=1', payload: { a: 1, b: 2 }, headers: t.headers('predict') });
      assert.equal(sel.statusCode, 400);
    } finally {
      await t.close();
    }
  });

  test('an unreadable MODEL_PATH fails at start', async () => {
    await assert.rejects(buildServingApp({ env: { MODEL_PATH: path.join(dir, 'missing.onnx') } }), /MODEL_PATH .*missing\.onnx cannot be read/);
    const junk = path.join(dir, 'junk.onnx');
    writeFileSync(junk, 'not a model');
    await assert.rejects(buildServingApp({ env: { MODEL_PATH: junk } }));
  });

  test('a fixed-batch model with string labels answers a batch in order', { skip: !HAS_SAMPLES }, async () => {
    const file = path.join(dir, 'gb.onnx');
    const source = path.join(SAMPLES, 'SklearnBinGradientBoostingClassifier.model.onnx');
    if (!existsSync(source)) return;
    copyFileSync(source, file);
    const t = await buildServingApp({ env: { MODEL_PATH: file } });
    try {
      const res = await t.app.inject({ method: 'POST', url: '/predict/batch', payload: { features_list: [[0, 1], [1, 1], [2, 0]] }, headers: t.headers('predict') });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(
        res.json<{ predictions: { prediction: string }[] }>().predictions.map((p) => p.prediction),
        ['A', 'B', 'A'],
      );
    } finally {
      await t.close();
    }
  });
});
