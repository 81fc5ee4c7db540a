/**
 * Shared test helpers: building small ONNX models by hand and running bytes in onnxruntime with
 * fixed-batch splitting.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type AttributeValue } from '../../src/onnx/graph-builder.ts';
import type { ModelProto, OperatorSetIdProto, ValueInfoProto } from '../../src/onnx/proto.ts';

/** The project's sibling `../shared` folder (sample models and datasets), which may be absent. */
export const SHARED = path.resolve(import.meta.dirname, '../../../shared');

/** A tensor value info; string dims are symbolic, `null` leaves a dim unknown. */
export function tensorValue(name: string, elemType: number, dims: readonly (number | string | null)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** The type skl2onnx gives a ZipMap output: sequence of map(key -> float). */
export function zipMapValue(name: string, keyType: number): ValueInfoProto {
  return {
    name,
    type: { sequenceType: { elemType: { mapType: { keyType, valueType: { tensorType: { elemType: 1 } } } } } },
  };
}

/** Wraps a builder's nodes into a model. */
export function buildModel(
  g: GraphBuilder,
  inputs: ValueInfoProto[],
  outputs: ValueInfoProto[],
  options: { opsets?: OperatorSetIdProto[]; irVersion?: number; metadata?: Record<string, string> } = {},
): ModelProto {
  return {
    irVersion: options.irVersion ?? 8,
    producerName: 'test',
    producerVersion: '0',
    opsetImport: options.opsets ?? [
      { domain: '', version: 15 },
      { domain: 'ai.onnx.ml', version: 3 },
    ],
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: { name: 'test', node: g.nodes, initializer: g.initializers, input: inputs, output: outputs },
  };
}

/**
 * A skl2onnx-like multinomial logistic classifier: LinearClassifier (labels, probabilities) ->
 * ZipMap, input `x` float [N, 2]. Class scores are `coefficients . x + intercepts`, softmaxed.
 */
export function linearZipMapModel(labels: readonly (number | string)[]): ModelProto {
  const strings = labels.every((l) => typeof l === 'string');
  const g = new GraphBuilder(['x', 'output_label', 'output_probability']);
  const labelAttr: Record<string, AttributeValue> = strings
    ? { classlabels_strings: { strings: labels } }
    : { classlabels_ints: { ints: labels as number[] } };
  const c = labels.length;
  const coefficients: number[] = [];
  const intercepts: number[] = [];
  for (let k = 0; k < c; k++) {
    coefficients.push(k - 1, 0.5 * k);
    intercepts.push(0.1 * k);
  }
  g.node(
    'LinearClassifier',
    ['x'],
    {
      ...labelAttr,
      coefficients: { floats: coefficients },
      intercepts: { floats: intercepts },
      multi_class: { int: 1 },
      post_transform: { string: 'SOFTMAX' },
    },
    { domain: 'ai.onnx.ml', outputs: ['label', 'probs'] },
  );
  g.node('Identity', ['label'], {}, { output: 'output_label' });
  const zipLabels: Record<string, AttributeValue> = strings ? { classlabels_strings: { strings: labels } } : { classlabels_int64s: { ints: labels as number[] } };
  g.node('ZipMap', ['probs'], zipLabels, { domain: 'ai.onnx.ml', output: 'output_probability' });
  return buildModel(
    g,
    [tensorValue('x', 1, ['N', 2])],
    [tensorValue('output_label', strings ? 8 : 7, ['N']), zipMapValue('output_probability', strings ? 8 : 7)],
  );
}

/** Softmax probabilities that {@link linearZipMapModel} computes for one row. */
export function linearZipMapExpected(c: number, x0: number, x1: number): number[] {
  const scores = Array.from({ length: c }, (_, k) => (k - 1) * x0 + 0.5 * k * x1 + 0.1 * k);
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export interface RunResult {
  /** Output values in row order, BigInt converted to numbers. */
  readonly data: (number | string)[];
  readonly dims: readonly number[];
}

/**
 * Runs `rows x cols` float32 data through a model, in chunks of `fixedBatch` rows when the model
 * needs that, and concatenates every output along the first axis.
 */
export async function runModel(
  bytes: Uint8Array,
  inputName: string,
  data: Float32Array,
  rows: number,
  cols: number,
  fixedBatch: number | null,
  rank: 1 | 2 = 2,
): Promise<Record<string, RunResult>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const chunk = fixedBatch ?? rows;
    const collected: Record<string, { data: (number | string)[]; dims: number[] }> = {};
    for (let start = 0; start < rows; start += chunk) {
      const n = Math.min(chunk, rows - start);
      if (fixedBatch !== null && n !== fixedBatch) throw new Error('rows do not fill the fixed batch');
      const slice = data.subarray(start * cols, (start + n) * cols);
      const dims = rank === 1 ? [cols] : [n, cols];
      const out = await session.run({ [inputName]: new ort.Tensor('float32', slice, dims) });
      for (const [name, t] of Object.entries(out)) {
        const values = Array.from(t.data as ArrayLike<number | bigint | string>, (v) => (typeof v === 'bigint' ? Number(v) : v));
        const entry = (collected[name] ??= { data: [], dims: [0, ...t.dims.slice(1)] });
        entry.data.push(...values);
        entry.dims[0] = (entry.dims[0] ?? 0) + (t.dims[0] ?? 1);
      }
    }
    return collected;
  } finally {
    await session.release();
  }
}

/** Largest absolute difference between two equally long numeric sequences. */
export function maxAbsDiff(a: ArrayLike<number | string>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(Number(a[i]) - b[i]!);
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    worst = Math.max(worst, d);
  }
  return worst;
}
