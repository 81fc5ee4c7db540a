/**
 * Small ONNX models and request helpers for the registry tests. Models are made with the
 * project's own exporter from hand-written linear models, so the tests need nothing from outside.
 */
import { exportModel } from '../../src/onnx/export.ts';
import { parseModel, serializeModel } from '../../src/onnx/model-file.ts';
import { onnx } from '../../src/onnx/proto.ts';
import type { ColumnTransform, LinearModel } from '../../src/ml/types.ts';

function numeric(name: string): ColumnTransform {
  return { name, kind: 'numeric', fill: 0, offset: 0, scale: 1, categories: [], oneHot: false };
}

/** A binary logistic classifier over features `a`, `b` with string labels `no`/`yes`. */
export function classifierOnnx(): Uint8Array {
  const model: LinearModel = {
    kind: 'linear',
    task: 'classification',
    nFeatures: 2,
    nTargets: 1,
    coefficients: Float64Array.of(1.5, -0.5),
    intercepts: Float64Array.of(0.25),
    postTransform: 'logistic',
    nClasses: 2,
  };
  return exportModel(model, { columns: [numeric('a'), numeric('b')] }, { featureNames: ['a', 'b'], classLabels: ['no', 'yes'], producerVersion: 'test' });
}

/** A linear regressor over three features `x0..x2`. */
export function regressorOnnx(): Uint8Array {
  const model: LinearModel = {
    kind: 'linear',
    task: 'regression',
    nFeatures: 3,
    nTargets: 1,
    coefficients: Float64Array.of(1, 2, 3),
    intercepts: Float64Array.of(0.5),
    postTransform: 'none',
    nClasses: 0,
  };
  const names = ['x0', 'x1', 'x2'];
  return exportModel(model, { columns: names.map(numeric) }, { featureNames: names, classLabels: null, producerVersion: 'test' });
}

/** The classifier with its first initializer moved to an external file. */
export function externalDataOnnx(): Uint8Array {
  const m = parseModel(classifierOnnx());
  const t = m.graph!.initializer![0]!;
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [{ key: 'location', value: 'weights.bin' }];
  t.rawData = new Uint8Array(0);
  t.floatData = [];
  return serializeModel(m);
}

/** Structurally valid, but uses an operator onnxruntime does not know. */
export function unknownOpOnnx(): Uint8Array {
  const m = parseModel(regressorOnnx());
  const node = m.graph!.node!.at(-1)!;
  node.opType = 'Frobnicate';
  return serializeModel(m);
}

/** A multipart/form-data body with text fields and one file. */
export function multipart(fields: Record<string, string>, file?: { field?: string; bytes: Uint8Array; filename?: string }): {
  payload: Buffer;
  headers: Record<string, string>;
} {
  const boundary = `----modelplane${Math.random().toString(16).slice(2)}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  if (file !== undefined) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.field ?? 'file'}"; filename="${file.filename ?? 'model.onnx'}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      Buffer.from(file.bytes),
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
