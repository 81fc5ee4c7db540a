/**
 * The Open Inference Protocol over the project's real registry, on SQLite and PostgreSQL: versions
 * uploaded and promoted through the native API answer on `/v2/models/{name}/infer`, aliases and
 * traffic splits route as on `/predict`, and a converter's model (skl2onnx iris) keeps its ONNX
 * output names.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import { HAS_SAMPLES, SAMPLES, linearClassifier } from '../serving/harness.ts';

const OLD = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [-10]);
const NEW = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [10]);

interface Answer {
  model_version: string;
  outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
  versions: string[];
  error: string;
}

for (const backend of await storeBackends()) {
  void describe(`KServe V2 over the registry on ${backend}`, { timeout: 180_000 }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(() => t.close());

    const upload = async (name: string, bytes: Uint8Array): Promise<number> => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/models/${name}/versions`,
        payload: Buffer.from(bytes),
        headers: { 'content-type': 'application/octet-stream', ...t.headers('train') },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ version: number }>().version;
    };
    const admin = async (method: 'POST' | 'PUT', url: string, payload: unknown): Promise<void> => {
      const res = await t.app.inject({ method, url, payload: payload as object, headers: t.headers('admin') });
      assert.ok(res.statusCode < 300, `${url}: ${res.body}`);
      await t.services.serving.service.settled();
    };
    const infer = async (url: string, data: number[][]): Promise<{ status: number; body: Answer }> => {
      const res = await t.app.inject({
        method: 'POST',
        url,
        payload: JSON.stringify({ inputs: [{ name: 'input', shape: [data.length, data[0]!.length], datatype: 'FP32', data }] }),
        headers: t.headers('predict'),
      });
      return { status: res.statusCode, body: res.json<Answer>() };
    };

    test('a version promoted natively answers; promotions, aliases and pinned versions route as on /predict', async () => {
      const v1 = await upload('churn', OLD);
      const none = await infer('/v2/models/churn/infer', [[0, 0]]);
      assert.equal(none.status, 503, JSON.stringify(none.body));
      assert.equal(typeof none.body.error, 'string');
      await admin('POST', '/models/transition', { name: 'churn', version: v1, stage: 'Production' });
      const first = await infer('/v2/models/churn/infer', [[0, 0]]);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.model_version, String(v1));
      assert.deepEqual(first.body.outputs[0], { name: 'label', datatype: 'BYTES', shape: [1], data: ['old'] });

      const v2 = await upload('churn', NEW);
      const meta = await t.app.inject({ url: '/v2/models/churn', headers: t.headers('predict') });
      assert.deepEqual(meta.json<Answer>().versions, [String(v1), String(v2)]);
      assert.equal((await infer(`/v2/models/churn/versions/${v2}/infer`, [[0, 0]])).body.outputs[0]!.data[0], 'new');
      await admin('POST', '/models/transition', { name: 'churn', version: v2, stage: 'Production', archive_existing_versions: true });
      const promoted = await infer('/v2/models/churn/infer', [[0, 0]]);
      assert.deepEqual([promoted.body.model_version, promoted.body.outputs[0]!.data[0]], [String(v2), 'new']);

      // A traffic split sends everything to v1: the protocol follows the route.
      await admin('PUT', '/models/churn/traffic', { routes: [{ version: v1, weight: 100 }] });
      const split = await infer('/v2/models/churn/infer', [[0, 0]]);
      assert.equal(split.body.model_version, String(v1));
      const native = await t.app.inject({ method: 'POST', url: '/predict?model=churn', payload: { a: 0, b: 0 }, headers: t.headers('predict') });
      assert.equal(native.json<{ model_version: string }>().model_version, String(v1));
    });

    test('a converter model (skl2onnx iris) answers with its ONNX output names', { skip: !HAS_SAMPLES }, async () => {
      const v = await upload('iris', readFileSync(path.join(SAMPLES, 'iris_rf_skl2onnx-1.11.2.onnx')));
      await admin('POST', '/models/transition', { name: 'iris', version: v, stage: 'Production' });
      const meta = await t.app.inject({ url: '/v2/models/iris', headers: t.headers('predict') });
      assert.equal(meta.statusCode, 200, meta.body);
      const m = meta.json<{ inputs: { name: string; shape: number[] }[]; outputs: { name: string; datatype: string; shape: number[] }[] }>();
      assert.deepEqual(m.inputs.map((i) => [i.name, i.shape]), [['float_input', [-1, 4]]]);
      assert.deepEqual(
        m.outputs.map((o) => [o.name, o.datatype, o.shape]),
        [
          ['output_label', 'INT64', [-1]],
          ['output_probability', 'FP32', [-1, 3]],
        ],
      );
      const rows = [
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.0, 5.2, 2.3],
      ];
      const r = await t.app.inject({
        method: 'POST',
        url: '/v2/models/iris/infer',
        payload: JSON.stringify({ inputs: [{ name: 'float_input', shape: [2, 4], datatype: 'FP32', data: rows }], outputs: [{ name: 'output_label' }] }),
        headers: t.headers('predict'),
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json<Answer>().outputs, [{ name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] }]);
    });
  });
}
