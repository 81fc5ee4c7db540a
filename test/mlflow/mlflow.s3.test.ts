/**
 * The MLflow artifact proxy on the S3 artifact store (a real S3-protocol server, s3rver, in a
 * child process): a file larger than the JSON body limit is uploaded and downloaded through
 * `/api/2.0/mlflow-artifacts` as a stream, listed, and an ONNX file logged there is registered
 * through MLflow and serves on `/predict`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startS3rver, type S3rverInstance } from '../artifacts/s3rver-harness.ts';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx } from '../registry/fixtures.ts';
import { call } from './client.ts';

const BUCKET = 'mlflow-proxy';

describe('MLflow artifact proxy on S3', { timeout: 300_000 }, () => {
  let s3: S3rverInstance | undefined;
  let t: TestApp | undefined;

  before(async () => {
    s3 = await startS3rver([BUCKET]);
    // The AWS SDK's default credential chain reads these; s3rver checks signatures against them.
    process.env['AWS_ACCESS_KEY_ID'] = s3.credentials.accessKeyId;
    process.env['AWS_SECRET_ACCESS_KEY'] = s3.credentials.secretAccessKey;
    t = await buildTestApp({
      env: { ARTIFACT_ROOT: `s3://${BUCKET}/mp`, S3_ENDPOINT_URL: s3.endpoint, S3_FORCE_PATH_STYLE: 'true', AWS_REGION: 'us-east-1', BODY_LIMIT_BYTES: '1048576' },
    });
  });
  after(async () => {
    await t?.close();
    await s3?.stop();
  });

  test('upload, list and download stream through the proxy; a version registered from the run serves', async () => {
    const app = t!.app;
    const train = { bearer: t!.keys.train };
    const exp = (await call(app, train, 'POST', 'experiments/create', { name: 's3-exp' })).body['experiment_id'];
    const runId = ((await call(app, train, 'POST', 'runs/create', { experiment_id: exp })).body['run'] as { info: { run_id: string } }).info.run_id;
    const base = `/api/2.0/mlflow-artifacts/artifacts/runs/${runId}/artifacts`;
    const auth = { authorization: `Bearer ${t!.keys.train}` };

    // Three times the JSON body limit: uploads are streamed, not parsed.
    const big = randomBytes(3 * 1024 * 1024);
    const up = await app.inject({ method: 'PUT', url: `${base}/data/big.bin`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: big });
    assert.equal(up.statusCode, 200, up.body);
    const onnx = Buffer.from(classifierOnnx());
    assert.equal((await app.inject({ method: 'PUT', url: `${base}/model/model.onnx`, headers: auth, payload: onnx })).statusCode, 200);

    const listed = await app.inject({ url: `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`runs/${runId}/artifacts`)}`, headers: auth });
    assert.deepEqual(listed.json(), { files: [{ path: 'data', is_dir: true }, { path: 'model', is_dir: true }] });
    const down = await app.inject({ url: `${base}/data/big.bin`, headers: auth });
    assert.equal(down.statusCode, 200);
    assert.ok(down.rawPayload.equals(big));

    await call(app, train, 'POST', 'registered-models/create', { name: 's3-model' });
    const created = await call(app, train, 'POST', 'model-versions/create', { name: 's3-model', source: `mlflow-artifacts:/runs/${runId}/artifacts/model`, run_id: runId });
    assert.equal(created.status, 200, created.text);
    const predicted = await app.inject({ method: 'POST', url: '/predict?model=s3-model&version=1', headers: t!.headers('predict'), payload: { a: 0.5, b: 1 } });
    assert.equal(predicted.statusCode, 200, predicted.body);

    const removed = await app.inject({ method: 'DELETE', url: `${base}/data`, headers: auth });
    assert.equal(removed.statusCode, 200, removed.body);
    const after = await app.inject({ url: `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`runs/${runId}/artifacts`)}`, headers: auth });
    assert.deepEqual(after.json(), { files: [{ path: 'model', is_dir: true }] });
  });
});
