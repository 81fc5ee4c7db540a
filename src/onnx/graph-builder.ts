/**
 * A small helper for building ONNX graphs in code: unique tensor names, typed constants stored as
 * initializers, and attribute constructors. Used by the exporters and by tests.
 */
import { AttrType, DataType, encodeUtf8, type AttributeProto, type NodeProto, type TensorProto } from './proto.ts';

/** Attribute value forms accepted by {@link GraphBuilder.node}. */
export type AttributeValue =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly string: string }
  | { readonly ints: readonly number[] }
  | { readonly floats: ArrayLike<number> }
  | { readonly strings: readonly string[] }
  | { readonly tensor: TensorProto };

/** Builds one ONNX attribute. */
export function makeAttribute(name: string, value: AttributeValue): AttributeProto {
  if ('int' in value) return { name, type: AttrType.INT, i: value.int };
  if ('float' in value) return { name, type: AttrType.FLOAT, f: value.float };
  if ('string' in value) return { name, type: AttrType.STRING, s: encodeUtf8(value.string) };
  if ('ints' in value) return { name, type: AttrType.INTS, ints: [...value.ints] };
  if ('floats' in value) return { name, type: AttrType.FLOATS, floats: Array.from(value.floats) };
  if ('strings' in value) return { name, type: AttrType.STRINGS, strings: value.strings.map((s) => encodeUtf8(s)) };
  return { name, type: AttrType.TENSOR, t: value.tensor };
}

/** A float32 tensor; values are stored little-endian in `raw_data` (compact, exact float32). */
export function floatTensor(name: string, values: ArrayLike<number>, dims: readonly number[]): TensorProto {
  const f32 = Float32Array.from(values);
  return { name, dataType: DataType.FLOAT, dims: [...dims], rawData: littleEndianBytes(f32) };
}

/** An int64 tensor (values must be safe integers). */
export function int64Tensor(name: string, values: ArrayLike<number>, dims: readonly number[]): TensorProto {
  const i64 = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) i64[i] = BigInt(values[i]!);
  return { name, dataType: DataType.INT64, dims: [...dims], rawData: littleEndianBytes(i64) };
}

/** A string tensor (UTF-8). */
export function stringTensor(name: string, values: readonly string[], dims: readonly number[]): TensorProto {
  return { name, dataType: DataType.STRING, dims: [...dims], stringData: values.map((s) => encodeUtf8(s)) };
}

/** Bytes of a typed array in little-endian order, as ONNX `raw_data` requires. */
function littleEndianBytes(a: Float32Array | BigInt64Array): Uint8Array {
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  if (a instanceof Float32Array) for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i]!, true);
  else for (let i = 0; i < a.length; i++) view.setBigInt64(i * 8, a[i]!, true);
  return out;
}

/** Accumulates nodes and initializers with unique names. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();

  /** Reserves names that must not be generated (graph inputs and outputs). */
  constructor(reserved: readonly string[] = []) {
    for (const r of reserved) this.used.add(r);
  }

  /** A fresh tensor name starting with `base`. */
  name(base: string): string {
    let candidate = base;
    for (let i = 1; this.used.has(candidate); i++) candidate = `${base}_${i}`;
    this.used.add(candidate);
    return candidate;
  }

  /** Adds a float32 constant and returns its name. */
  floatConst(base: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const name = this.name(base);
    this.initializers.push(floatTensor(name, values, dims));
    return name;
  }

  /** Adds an int64 constant and returns its name. */
  int64Const(base: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const name = this.name(base);
    this.initializers.push(int64Tensor(name, values, dims));
    return name;
  }

  /** Adds a string constant and returns its name. */
  stringConst(base: string, values: readonly string[], dims: readonly number[]): string {
    const name = this.name(base);
    this.initializers.push(stringTensor(name, values, dims));
    return name;
  }

  /**
   * Adds a node and returns its (first) output's name. `output` names a single output explicitly
   * (graph outputs), `outputs` names several; otherwise one fresh name from the op type is used.
   */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: { domain?: string; output?: string; outputs?: readonly string[] } = {},
  ): string {
    const outputs = options.outputs ?? [options.output ?? this.name(opType.toLowerCase())];
    for (const o of outputs) this.used.add(o);
    this.nodes.push({
      name: this.name(`${opType}_node`),
      opType,
      domain: options.domain ?? '',
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([k, v]) => makeAttribute(k, v)),
    });
    return outputs[0] ?? '';
  }
}
