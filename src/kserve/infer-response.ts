/**
 * The outputs a model answers with on the Open Inference Protocol, and the answer itself (JSON,
 * or JSON header plus binary data). The outputs carry the ONNX output names of the model's
 * signature: a classifier's label tensor `[N]` and, when it has one, its probability tensor
 * `[N, C]`; a regressor's value tensor `[N, W]`. Labels and probabilities are those of the native
 * API: the label of a classifier with probabilities is the most probable class (first on ties).
 */
import { labelOnlyJson, num, predictedColumn, type LoadedModel } from '../serving/loaded-model.ts';
import type { RawOutputs } from '../serving/runtime.ts';
import type { RequestedOutput } from './infer-request.ts';
import { badInfer } from './tensors.ts';

export type OutputKind = 'label' | 'probabilities' | 'values';

/** One output tensor a model has. */
export interface OutputSpec {
  readonly name: string;
  readonly kind: OutputKind;
  readonly datatype: 'INT64' | 'BYTES' | 'FP32' | 'FP64';
}

/** The datatype of a classifier's labels: BYTES for strings, INT64 for whole numbers, else FP64. */
function labelDatatype(model: LoadedModel): OutputSpec['datatype'] {
  const classes = model.classes;
  if (classes !== null) {
    if (classes.some((c) => typeof c === 'string')) return 'BYTES';
    return classes.every((c) => Number.isInteger(c)) ? 'INT64' : 'FP64';
  }
  const t = model.signature.labelType;
  return t === 'string' ? 'BYTES' : t === 'float' ? 'FP64' : 'INT64';
}

/** The output tensors of a model, in the order answers list them. */
export function modelOutputs(model: LoadedModel): OutputSpec[] {
  const sig = model.signature;
  const float = model.double ? 'FP64' : 'FP32';
  if (!model.isClassifier) return [{ name: sig.outputs.value ?? 'variable', kind: 'values', datatype: float }];
  const out: OutputSpec[] = [{ name: sig.outputs.label ?? 'label', kind: 'label', datatype: labelDatatype(model) }];
  if (sig.outputs.probabilities !== undefined) out.push({ name: sig.outputs.probabilities, kind: 'probabilities', datatype: float });
  return out;
}

/** An output to write: which one, and whether as binary data. */
export interface ChosenOutput {
  readonly spec: OutputSpec;
  readonly binary: boolean;
}

/**
 * The outputs an answer carries: those requested, in request order, or every output.
 * @throws AppError 400 for an output the model does not have
 */
export function chooseOutputs(model: LoadedModel, requested: readonly RequestedOutput[] | undefined, binaryByDefault: boolean): ChosenOutput[] {
  const all = modelOutputs(model);
  if (requested === undefined || requested.length === 0) return all.map((spec) => ({ spec, binary: binaryByDefault }));
  return requested.map((r) => {
    const spec = all.find((o) => o.name === r.name);
    if (spec === undefined) throw badInfer(`unknown output '${r.name}' of model '${model.identity.name}'; its outputs are ${all.map((o) => o.name).join(', ')}`);
    return { spec, binary: r.binary || binaryByDefault };
  });
}

/** Columns per row of the probability or value tensor. */
function widthOf(outputs: RawOutputs): number {
  return outputs.probabilities !== null || outputs.values !== null ? outputs.width : 1;
}

/** The answer to send: JSON text, or a JSON header followed by binary tensors. */
export type InferAnswer = { readonly json: string } | { readonly header: string; readonly body: Buffer };

/**
 * Writes the answer for rows `offset .. offset + rows` of `outputs`.
 * @param id the request's `id`, echoed when given
 */
export function inferAnswer(model: LoadedModel, outputs: RawOutputs, offset: number, rows: number, chosen: readonly ChosenOutput[], id: string | undefined): InferAnswer {
  const identity = model.identity;
  let text = `{"model_name":${JSON.stringify(identity.name)},"model_version":${JSON.stringify(identity.version)}`;
  if (id !== undefined) text += `,"id":${JSON.stringify(id)}`;
  text += ',"outputs":[';
  const buffers: Buffer[] = [];
  for (let k = 0; k < chosen.length; k++) {
    const { spec, binary } = chosen[k]!;
    const width = spec.kind === 'label' ? 1 : widthOf(outputs);
    const shape = spec.kind === 'label' ? `[${rows}]` : `[${rows},${width}]`;
    text += `${k === 0 ? '' : ','}{"name":${JSON.stringify(spec.name)},"datatype":"${spec.datatype}","shape":${shape},`;
    if (binary) {
      const bytes = spec.kind === 'label' ? labelBytes(model, spec, outputs, offset, rows) : floatBytes(spec, outputs, offset, rows, width);
      buffers.push(bytes);
      text += `"parameters":{"binary_data_size":${bytes.length}}}`;
    } else {
      text += `"data":[${spec.kind === 'label' ? labelText(model, outputs, offset, rows) : floatText(spec, outputs, offset, rows, width)}]}`;
    }
  }
  text += ']}';
  if (buffers.length === 0) return { json: text };
  const header = Buffer.from(text, 'utf8');
  return { header: text, body: Buffer.concat([header, ...buffers]) };
}

/** The numbers of a probability or value output, row-major. */
function floatSource(spec: OutputSpec, outputs: RawOutputs): ArrayLike<number> {
  const src = spec.kind === 'probabilities' ? outputs.probabilities : outputs.values;
  if (src === null) throw new Error(`the model's run produced no ${spec.kind}`);
  return src;
}

function floatText(spec: OutputSpec, outputs: RawOutputs, offset: number, rows: number, width: number): string {
  const src = floatSource(spec, outputs);
  const from = offset * width;
  const n = rows * width;
  let s = '';
  for (let i = 0; i < n; i++) s += (i === 0 ? '' : ',') + num(src[from + i]!);
  return s;
}

/** FP32 or FP64 little-endian bytes; a typed array of the same type is sent without a copy. */
function floatBytes(spec: OutputSpec, outputs: RawOutputs, offset: number, rows: number, width: number): Buffer {
  const src = floatSource(spec, outputs);
  const from = offset * width;
  const n = rows * width;
  const Kind = spec.datatype === 'FP64' ? Float64Array : Float32Array;
  if (src instanceof Kind) return Buffer.from(src.buffer, src.byteOffset + from * Kind.BYTES_PER_ELEMENT, n * Kind.BYTES_PER_ELEMENT);
  const out = new Kind(n);
  for (let i = 0; i < n; i++) out[i] = src[from + i]!;
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** The label of row `row`: the most probable class (or its column), else the label output. */
function labelOf(model: LoadedModel, outputs: RawOutputs, row: number): number | bigint | string {
  if (outputs.probabilities !== null) {
    const best = predictedColumn(outputs, row);
    return model.classes?.[best] ?? best;
  }
  if (outputs.labels !== null) return outputs.labels[row]!;
  throw new Error("the model's run produced no labels");
}

function labelText(model: LoadedModel, outputs: RawOutputs, offset: number, rows: number): string {
  let s = '';
  for (let i = 0; i < rows; i++) s += (i === 0 ? '' : ',') + labelOnlyJson(model, outputs, offset + i);
  return s;
}

function labelBytes(model: LoadedModel, spec: OutputSpec, outputs: RawOutputs, offset: number, rows: number): Buffer {
  if (spec.datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (let i = 0; i < rows; i++) {
      const text = Buffer.from(String(labelOf(model, outputs, offset + i)), 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(text.length, 0);
      parts.push(len, text);
    }
    return Buffer.concat(parts);
  }
  if (spec.datatype === 'INT64') {
    const out = new BigInt64Array(rows);
    for (let i = 0; i < rows; i++) {
      const v = labelOf(model, outputs, offset + i);
      out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    }
    return Buffer.from(out.buffer);
  }
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = Number(labelOf(model, outputs, offset + i));
  return Buffer.from(out.buffer);
}
