/**
 * Open Inference Protocol conformance over plain HTTP, as tritonclient.http sends it: no
 * Content-Type on infer bodies, `Inference-Header-Content-Length` with binary inputs,
 * `binary_data_output` when no outputs are named, errors read from `{"error"}`.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { buildServingApp, linearClassifier, linearRegressor, type ServingTestApp } from '../serving/harness.ts';

// Class 1 (label 20) when a > b; probabilities from a logistic of 5a - 5b.
const CLASSIFIER = linearClassifier(['a', 'b'], [10, 20], [[5, -5]]);
const REGRESSOR = linearRegressor(['x', 'y', 'z'], [1, 2, 3], 0.5);

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size: number };
}

/** Every field the protocol's answers (metadata, inference, errors) have, loosely. */
interface Body {
  error: string;
  id?: string;
  name: string;
  model_name: string;
  model_version: string;
  platform: string;
  versions: string[];
  extensions: string[];
  inputs: Tensor[];
  outputs: Tensor[];
}

interface Reply {
  status: number;
  headers: Headers;
  bytes: Buffer;
  json(): Body;
}

/** The JSON header of a binary answer and its binary section. */
function splitAnswer(r: Reply): { header: Body; binary: Buffer } {
  const n = Number(r.headers.get('inference-header-content-length'));
  return { header: JSON.parse(r.bytes.subarray(0, n).toString('utf8')) as Body, binary: r.bytes.subarray(n) };
}

void describe('Open Inference Protocol (KServe V2 REST)', { timeout: 120_000 }, () => {
  let t: ServingTestApp;
  let base: string;
  let key: string;

  before(async () => {
    t = await buildServingApp({
      env: { MODEL_NAME: 'clf' },
      seed: async (r) => {
        await r.register('clf', CLASSIFIER, {}, 'Production');
        await r.register('reg', REGRESSOR, {}, 'Production');
        await r.register('reg', linearRegressor(['x', 'y', 'z'], [0, 0, 0], 7), {}, 'Staging');
      },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    key = t.keys.predict;
  });
  after(() => t.close());

  /** A request as tritonclient.http makes it: raw bytes, no Content-Type unless given. */
  async function call(method: 'GET' | 'POST', url: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { 'x-api-key': key, ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? Buffer.from(body) : body }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) as Body };
  }

  const infer = (url: string, request: unknown, headers: Record<string, string> = {}) => call('POST', url, JSON.stringify(request), headers);

  /** A binary request: JSON header then the inputs' bytes, Inference-Header-Content-Length set. */
  function binaryRequest(request: unknown, ...tensors: Buffer[]): { body: Buffer; headers: Record<string, string> } {
    const header = Buffer.from(JSON.stringify(request));
    return { body: Buffer.concat([header, ...tensors]), headers: { 'Inference-Header-Content-Length': String(header.length) } };
  }

  test('server metadata, liveness and readiness; the status code is the signal', async () => {
    const meta = await call('GET', '/v2');
    assert.equal(meta.status, 200);
    assert.equal(meta.json().name, 'modelplane');
    assert.ok(meta.json().extensions.includes('binary_tensor_data'));
    assert.equal((await call('GET', '/v2/health/live')).status, 200);
    assert.equal((await call('GET', '/v2/health/ready')).status, 200);
  });

  test('model metadata: platform, versions, inputs and outputs with datatypes and shapes', async () => {
    const clf = await call('GET', '/v2/models/clf');
    assert.equal(clf.status, 200, clf.bytes.toString());
    const m = clf.json();
    assert.equal(m.name, 'clf');
    assert.equal(m.platform, 'onnx_onnxv1');
    assert.deepEqual(m.versions, ['1']);
    assert.equal(m.inputs.length, 1);
    assert.equal(m.inputs[0]!.datatype, 'FP32');
    assert.deepEqual(m.inputs[0]!.shape, [-1, 2]);
    assert.deepEqual(
      m.outputs.map((o) => [o.datatype, o.shape]),
      [
        ['INT64', [-1]],
        ['FP32', [-1, 2]],
      ],
    );
    const reg = await call('GET', '/v2/models/reg/versions/2');
    assert.equal(reg.status, 200, reg.bytes.toString());
    assert.equal(reg.json().outputs.length, 1);
    assert.deepEqual(reg.json().outputs[0]!.shape, [-1, 1]);
    assert.equal((await call('GET', '/v2/models/clf/ready')).status, 200);
    assert.equal((await call('GET', '/v2/models/reg/versions/2/ready')).status, 200);
    for (const url of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/clf/versions/9', '/v2/models/clf/versions/9/ready', '/v2/models/clf/versions/abc/ready']) {
      const r = await call('GET', url);
      assert.equal(r.status, 404, url);
      assert.equal(typeof r.json().error, 'string');
    }
  });

  test('JSON infer: id echoed, flat or nested data, labels and probabilities as /predict gives them', async () => {
    const rows = [
      [3, 1],
      [0, 2],
    ];
    const flat = await infer('/v2/models/clf/infer', { id: 'req-1', inputs: [{ name: 'input', shape: [2, 2], datatype: 'FP32', data: rows.flat() }] });
    assert.equal(flat.status, 200, flat.bytes.toString());
    const a = flat.json();
    assert.equal(a.id, 'req-1');
    assert.equal(a.model_name, 'clf');
    assert.equal(a.model_version, '1');
    const nested = await infer('/v2/models/clf/infer', { inputs: [{ name: 'input', shape: [2, 2], datatype: 'FP64', data: rows }] });
    assert.equal(nested.status, 200, nested.bytes.toString());
    assert.equal(nested.json().id, undefined);
    assert.deepEqual(nested.json().outputs, a.outputs);
    const [label, probs] = a.outputs as [Tensor, Tensor];
    assert.deepEqual(label.shape, [2]);
    assert.equal(label.datatype, 'INT64');
    assert.deepEqual(label.data, [20, 10]);
    assert.deepEqual(probs.shape, [2, 2]);
    // The native answer for the same rows.
    const native = await t.app.inject({ method: 'POST', url: '/predict/batch', headers: t.headers('predict'), payload: { features_list: rows } });
    const predictions = native.json<{ predictions: { prediction: number; probability: number[] }[] }>().predictions;
    assert.deepEqual(label.data, predictions.map((p) => p.prediction));
    assert.deepEqual(probs.data, predictions.flatMap((p) => p.probability));
  });

  test('columnar inputs (one per feature, shape [N]) in any order, INT and BOOL datatypes', async () => {
    const r = await infer('/v2/models/clf/infer', {
      inputs: [
        { name: 'b', shape: [2], datatype: 'INT32', data: [1, 2] },
        { name: 'a', shape: [2], datatype: 'INT64', data: [3, 0] },
      ],
      outputs: [{ name: 'label' }],
    });
    assert.equal(r.status, 200, r.bytes.toString());
    assert.deepEqual(r.json().outputs, [{ name: 'label', datatype: 'INT64', shape: [2], data: [20, 10] }]);
    const bools = await infer('/v2/models/clf/infer', {
      inputs: [
        { name: 'a', shape: [1], datatype: 'BOOL', data: [true] },
        { name: 'b', shape: [1], datatype: 'BOOL', data: [false] },
      ],
    });
    assert.equal(bools.status, 200, bools.bytes.toString());
    assert.deepEqual(bools.json().outputs[0]!.data, [20]);
  });

  test('binary tensors in and out, as tritonclient sends them (no Content-Type)', async () => {
    const rows = new Float32Array([3, 1, 0, 2, 5, 5]);
    // tritonclient names no outputs and sets binary_data_output.
    const { body, headers } = binaryRequest(
      { inputs: [{ name: 'input', shape: [3, 2], datatype: 'FP32', parameters: { binary_data_size: rows.byteLength } }], parameters: { binary_data_output: true } },
      Buffer.from(rows.buffer),
    );
    const r = await call('POST', '/v2/models/clf/infer', body, headers);
    assert.equal(r.status, 200, r.bytes.toString());
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    const { header, binary } = splitAnswer(r);
    const [label, probs] = header.outputs as [Tensor, Tensor];
    assert.equal(label.parameters!.binary_data_size, 24);
    assert.equal(probs.parameters!.binary_data_size, 24);
    assert.equal(binary.length, 48);
    assert.deepEqual([...new BigInt64Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + 24))], [20n, 10n, 10n]);
    const p = new Float32Array(binary.buffer.slice(binary.byteOffset + 24, binary.byteOffset + 48));
    const json = await infer('/v2/models/clf/infer', { inputs: [{ name: 'input', shape: [3, 2], datatype: 'FP32', data: [...rows] }] });
    assert.deepEqual([...p], json.json().outputs[1]!.data);

    // One output binary, the other JSON; the request's inputs mixing JSON and binary.
    const cols = binaryRequest(
      {
        inputs: [
          { name: 'a', shape: [3], datatype: 'FP64', parameters: { binary_data_size: 24 } },
          { name: 'b', shape: [3], datatype: 'FP32', data: [1, 2, 5] },
        ],
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label', parameters: { binary_data: false } }],
      },
      Buffer.from(new Float64Array([3, 0, 5]).buffer),
    );
    const mixed = await call('POST', '/v2/models/clf/infer', cols.body, cols.headers);
    assert.equal(mixed.status, 200, mixed.bytes.toString());
    const split = splitAnswer(mixed);
    assert.deepEqual(
      split.header.outputs.map((o) => o.name),
      ['probabilities', 'label'],
    );
    assert.deepEqual(split.header.outputs[1]!.data, [20, 10, 10]);
    assert.equal(split.binary.length, 24);
  });

  test('gzip request bodies (tritonclient request_compression_algorithm)', async () => {
    const r = await call('POST', '/v2/models/clf/infer', gzipSync(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [3, 1] }] })), {
      'Content-Encoding': 'gzip',
    });
    assert.equal(r.status, 200, r.bytes.toString());
    assert.deepEqual(r.json().outputs[0]!.data, [20]);
  });

  test('version omitted follows the serving route; versions and stages as on /predict', async () => {
    const prod = await infer('/v2/models/reg/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] });
    assert.equal(prod.status, 200, prod.bytes.toString());
    assert.equal(prod.json().model_version, '1');
    assert.deepEqual(prod.json().outputs, [{ name: 'variable', datatype: 'FP32', shape: [1, 1], data: [6.5] }]);
    const v2 = await infer('/v2/models/reg/versions/2/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] });
    assert.equal(v2.json().model_version, '2');
    assert.deepEqual(v2.json().outputs[0]!.data, [7]);
    // Promoted natively: the route moves.
    t.registry.transition('reg', 2, 'Production');
    await t.serving.service.settled();
    const moved = await infer('/v2/models/reg/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] });
    assert.equal(moved.json().model_version, '2');
  });

  test('errors: {"error"} with 400 for bad requests, 404 unknown model or version, 401 without a key', async () => {
    const ok = { name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] };
    const cases: [unknown, string][] = [
      [{ inputs: [{ ...ok, shape: [2, 2] }] }, 'shape'],
      [{ inputs: [{ ...ok, datatype: 'FP16' }] }, 'datatype'],
      [{ inputs: [{ ...ok, data: [1, 'x'] }] }, 'FP32'],
      [{ inputs: [{ ...ok, shape: [1, 3], data: [1, 2, 3] }] }, 'feature'],
      [{ inputs: [{ name: 'a', shape: [1], datatype: 'FP32', data: [1] }] }, 'missing features: b'],
      [{ inputs: [{ name: 'a', shape: [1], datatype: 'FP32', data: [1] }, { name: 'zz', shape: [1], datatype: 'FP32', data: [1] }] }, "'zz'"],
      [{ inputs: [ok], outputs: [{ name: 'nope' }] }, "unknown output 'nope'"],
      [{ inputs: [ok], id: 5 }, 'id'],
      [{ inputs: [] }, 'inputs'],
      [{ inputs: [{ ...ok, parameters: { binary_data_size: 8 }, data: undefined }] }, 'Inference-Header-Content-Length'],
      [{ inputs: [ok], outputs: [{ name: 'label', parameters: { classification: 2 } }] }, 'classification'],
    ];
    for (const [request, text] of cases) {
      const r = await infer('/v2/models/clf/infer', request);
      assert.equal(r.status, 400, `${JSON.stringify(request)} -> ${r.bytes.toString()}`);
      const body = r.json();
      assert.deepEqual(Object.keys(body), ['error']);
      assert.ok(body.error.includes(text), `${body.error} should mention ${text}`);
    }
    const bad = await call('POST', '/v2/models/clf/infer', '{"inputs": [', {});
    assert.equal(bad.status, 400);
    assert.ok(bad.json().error.includes('JSON'));
    const short = binaryRequest({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, Buffer.alloc(4));
    const s = await call('POST', '/v2/models/clf/infer', short.body, short.headers);
    assert.equal(s.status, 400);
    const extra = binaryRequest({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, Buffer.alloc(12));
    assert.equal((await call('POST', '/v2/models/clf/infer', extra.body, extra.headers)).status, 400);
    const nan = binaryRequest({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, Buffer.from(new Float32Array([1, Number.NaN]).buffer));
    const n = await call('POST', '/v2/models/clf/infer', nan.body, nan.headers);
    assert.equal(n.status, 400);
    assert.ok(n.json().error.includes('finite'), n.json().error);
    for (const url of ['/v2/models/nope/infer', '/v2/models/clf/versions/7/infer']) {
      const r = await infer(url, { inputs: [ok] });
      assert.equal(r.status, 404, url);
      assert.equal(typeof r.json().error, 'string');
    }
    const noKey = await fetch(`${base}/v2/models/clf/infer`, { method: 'POST', body: JSON.stringify({ inputs: [ok] }) });
    assert.equal(noKey.status, 401);
    assert.equal(typeof ((await noKey.json()) as { error: unknown }).error, 'string');
  });

  test('a model with no servable version answers 503 on infer and ready', async () => {
    await t.registry.register('later', CLASSIFIER, {}, 'None');
    const r = await infer('/v2/models/later/infer', { inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] });
    assert.equal(r.status, 503, r.bytes.toString());
    assert.equal(typeof r.json().error, 'string');
    assert.equal((await call('GET', '/v2/models/later/ready')).status, 503);
  });

  test('the other routes keep their JSON parser and error shape', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/predict', headers: t.headers('predict'), payload: { features: [3, 1] } });
    assert.equal(r.statusCode, 200);
    const bad = await t.app.inject({ method: 'POST', url: '/predict', headers: { ...t.headers('predict'), 'content-type': 'application/json' }, payload: '{' });
    assert.equal(bad.statusCode, 400);
    assert.equal(typeof bad.json<{ request_id: string }>().request_id, 'string');
  });
});
