import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildServingApp, linearClassifier, type ServingTestApp } from './harness.ts';

// Class 1 when a > b.
const MODEL = linearClassifier(['a', 'b'], [10, 20], [[5, -5]]);

void describe('POST /invocations (MLflow scoring)', () => {
  let t: ServingTestApp;
  before(async () => {
    t = await buildServingApp({ env: { MODEL_NAME: 'm' }, seed: async (r) => void (await r.register('m', MODEL, {}, 'Production')) });
  });
  after(() => t.close());

  const invoke = (payload: unknown, contentType = 'application/json') =>
    t.app.inject({
      method: 'POST',
      url: '/invocations',
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      headers: { ...t.headers('predict'), 'content-type': contentType },
    });

  test('every MLflow input format gives the labels in order', async () => {
    const bodies = [
      { dataframe_split: { columns: ['b', 'a'], data: [[0, 1], [1, 0]] } },
      { dataframe_split: { data: [[1, 0], [0, 1]] } },
      { dataframe_records: [{ a: 1, b: 0 }, { a: 0, b: 1 }] },
      { instances: [[1, 0], [0, 1]] },
      { instances: [{ a: 1, b: 0 }, { a: 0, b: 1 }] },
      { inputs: [[1, 0], [0, 1]] },
      { inputs: { a: [1, 0], b: [0, 1] }, params: { ignored: true } },
    ];
    for (const body of bodies) {
      const res = await invoke(body);
      assert.equal(res.statusCode, 200, `${JSON.stringify(body)} -> ${res.body}`);
      assert.deepEqual(res.json(), { predictions: [20, 10] });
    }
    const csv = await invoke('b,a\n0,1\n1,0\n', 'text/csv');
    assert.equal(csv.statusCode, 200, csv.body);
    assert.deepEqual(csv.json(), { predictions: [20, 10] });
  });

  test('errors use MLflow shape; other content types are 415', async () => {
    const cases: [unknown, string][] = [
      [{ dataframe_records: [{ a: 1 }] }, 'b'],
      [{ instances: [[1, 0]], inputs: [[1, 0]] }, 'exactly one'],
      [{ records: [[1, 0]] }, 'exactly one'],
      [{ dataframe_split: { columns: ['a', 'zzz'], data: [[1, 2]] } }, 'zzz'],
      [{ inputs: [[1, Number.NaN]] }, 'finite'],
    ];
    for (const [body, text] of cases) {
      const res = await invoke(body);
      assert.equal(res.statusCode, 400, res.body);
      const j = res.json<{ error_code: string; message: string }>();
      assert.equal(j.error_code, 'BAD_REQUEST');
      assert.ok(j.message.includes(text), j.message);
    }
    const csv = await invoke('a,b\n1,x\n', 'text/csv');
    assert.equal(csv.statusCode, 400);
    assert.equal(csv.json<{ error_code: string }>().error_code, 'BAD_REQUEST');
    const other = await invoke('a=1', 'application/x-www-form-urlencoded');
    assert.equal(other.statusCode, 415);
    assert.equal(other.json<{ error_code: string }>().error_code, 'BAD_REQUEST');
    const noKey = await t.app.inject({ method: 'POST', url: '/invocations', payload: { instances: [[1, 0]] } });
    assert.equal(noKey.statusCode, 401);
    assert.equal(noKey.json<{ error_code: string }>().error_code, 'UNAUTHENTICATED');
  });
});
