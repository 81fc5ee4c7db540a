/**
 * Tensors of the Open Inference Protocol: datatypes, shapes, and the elements of one input as JSON
 * `data` (flat or nested) or as raw bytes (the binary tensor extension: little-endian, BOOL one
 * byte, BYTES each element a 4-byte little-endian length then its bytes).
 */
import { AppError } from '../platform/errors.ts';

/** A 400 in the protocol's terms (the message is the whole error body). */
export function badInfer(message: string): AppError {
  return new AppError(400, 'bad_request', message);
}

export type Datatype = 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP32' | 'FP64' | 'BYTES';

/** Bytes per element of the fixed-size datatypes this server reads; BYTES has none. */
const ELEMENT_BYTES: Readonly<Record<Exclude<Datatype, 'BYTES'>, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP32: 4,
  FP64: 8,
};

/** Whether `name` is a datatype inputs may have here (FP16 and BF16 are not: the models compute in FP32/FP64). */
export function isDatatype(name: unknown): name is Datatype {
  return typeof name === 'string' && (name === 'BYTES' || Object.hasOwn(ELEMENT_BYTES, name));
}

/** One input's elements in row-major order. */
export type TensorElements =
  /** JSON `data`, flattened (values not yet checked against the datatype). */
  | { readonly kind: 'json'; readonly values: readonly unknown[] }
  /** Raw little-endian bytes of a fixed-size datatype, exactly `count * size` of them. */
  | { readonly kind: 'raw'; readonly bytes: Buffer }
  /** BYTES elements sent as binary, decoded. */
  | { readonly kind: 'strings'; readonly values: readonly string[] };

/** An input as the request gave it, checked for shape and element count. */
export interface InputTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly count: number;
  readonly elements: TensorElements;
}

/** Elements a shape holds; the shape must be an array of non-negative integers. */
export function elementCount(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || (d as number) < 0)) {
    throw badInfer(`${what}: shape must be an array of non-negative integers`);
  }
  let n = 1;
  for (const d of shape as number[]) n *= d;
  return n;
}

/** Flattens nested JSON `data` (any nesting) into row-major order. */
export function flatten(data: unknown, what: string): unknown[] {
  if (!Array.isArray(data)) throw badInfer(`${what}: data must be an array`);
  let nested = false;
  for (const v of data) {
    if (Array.isArray(v)) {
      nested = true;
      break;
    }
  }
  if (!nested) return data;
  const out: unknown[] = [];
  const walk = (v: unknown[]): void => {
    for (const e of v) {
      if (Array.isArray(e)) walk(e);
      else out.push(e);
    }
  };
  walk(data);
  return out;
}

/** Bytes one element of a fixed-size datatype takes; `undefined` for BYTES. */
export function elementBytes(datatype: Datatype): number | undefined {
  return datatype === 'BYTES' ? undefined : ELEMENT_BYTES[datatype];
}

/** The BYTES elements of a binary input: each a 4-byte little-endian length, then the bytes (UTF-8). */
export function decodeBytesElements(bytes: Buffer, count: number, what: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) throw badInfer(`${what}: BYTES data ends inside an element's 4-byte length`);
    const len = bytes.readUInt32LE(at);
    at += 4;
    if (at + len > bytes.length) throw badInfer(`${what}: BYTES element ${out.length} is longer than the data left`);
    out.push(bytes.toString('utf8', at, at + len));
    at += len;
  }
  if (out.length !== count) throw badInfer(`${what}: the binary data holds ${out.length} BYTES elements but the shape has ${count}`);
  return out;
}

/**
 * Element `i` of a raw fixed-size tensor as a number (INT64/UINT64 through BigInt; BOOL as 0/1).
 * Integers beyond 2^53 lose precision, as they do in the float tensors the models read.
 */
export function rawElement(bytes: Buffer, datatype: Datatype, i: number): number {
  switch (datatype) {
    case 'FP32':
      return bytes.readFloatLE(i * 4);
    case 'FP64':
      return bytes.readDoubleLE(i * 8);
    case 'INT32':
      return bytes.readInt32LE(i * 4);
    case 'INT64':
      return Number(bytes.readBigInt64LE(i * 8));
    case 'BOOL':
      return bytes[i] === 0 ? 0 : 1;
    case 'UINT8':
      return bytes[i]!;
    case 'INT8':
      return bytes.readInt8(i);
    case 'UINT16':
      return bytes.readUInt16LE(i * 2);
    case 'INT16':
      return bytes.readInt16LE(i * 2);
    case 'UINT32':
      return bytes.readUInt32LE(i * 4);
    case 'UINT64':
      return Number(bytes.readBigUInt64LE(i * 8));
    default:
      throw new Error(`no raw reader for ${datatype}`);
  }
}

/**
 * Why JSON element `v` does not fit `datatype`, or `undefined` when it does: FP* take numbers,
 * integer types whole numbers, BOOL booleans, BYTES strings.
 */
export function jsonMismatch(v: unknown, datatype: Datatype): string | undefined {
  switch (datatype) {
    case 'BYTES':
      return typeof v === 'string' ? undefined : `${describe(v)} is not a BYTES element (a string)`;
    case 'BOOL':
      return typeof v === 'boolean' ? undefined : `${describe(v)} is not a BOOL element (true or false)`;
    case 'FP32':
    case 'FP64':
      return typeof v === 'number' ? undefined : `${describe(v)} is not a ${datatype} element (a number)`;
    default:
      return typeof v === 'number' && Number.isInteger(v) ? undefined : `${describe(v)} is not an ${datatype} element (a whole number)`;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}
