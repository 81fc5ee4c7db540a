/**
 * Protobuf wire-level editing of serialized ONNX models, for models too large to decode into
 * JavaScript objects.
 *
 * Decoding a tree ensemble of two million nodes with protobufjs makes tens of millions of numbers,
 * `Long` objects and byte arrays (gigabytes of heap) only to look at the graph's inputs, outputs
 * and a few small nodes. Here the large attributes of the top-level graph's nodes are instead cut
 * out as byte ranges (no copy), the small remainder is decoded and rewritten as usual, and the
 * ranges are put back into their nodes when the model is written again. The exporter uses the same
 * splice to write its tree attributes straight into the one buffer of exactly the final size.
 *
 * Field numbers (onnx.proto): ModelProto.graph = 7, GraphProto.node = 1, NodeProto.attribute = 5;
 * AttributeProto: name = 1, f = 2, i = 3, s = 4, t = 5, g = 6, floats = 7, ints = 8, strings = 9,
 * tensors = 10, graphs = 11, type = 20, sparse_tensor = 22, sparse_tensors = 23; TensorProto:
 * external_data = 13, data_location = 14.
 */
import { ModelTooLargeError } from './errors.ts';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const NODE_ATTRIBUTE = 5;

/** Bytes written by a function once their exact count is known (the big tree attributes). */
export interface ChunkWriter {
  readonly byteLength: number;
  /** Writes exactly `byteLength` bytes at `offset`. */
  write(out: Uint8Array, offset: number): void;
}

/** A piece of output: bytes to copy, or a writer. */
export type Piece = Uint8Array | ChunkWriter;

function pieceLength(p: Piece): number {
  return p instanceof Uint8Array ? p.length : p.byteLength;
}

/** Bytes a varint encoding of the non-negative integer `v` (below 2^53) takes. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes the non-negative integer `v` (below 2^53) as a varint at `pos`; returns the next position. */
export function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    out[pos++] = (v & 127) | 128;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** Cursor over protobuf bytes. Throws on truncated input. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new RangeError('truncated protobuf varint');
      const b = this.buf[this.pos++]!;
      result += (b & 127) * scale;
      if (b < 128) return result;
      scale *= 128;
      if (scale > 2 ** 63) throw new RangeError('protobuf varint is too long');
    }
  }

  /** Skips the value of a field of the given wire type. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_I32:
        this.pos += 4;
        break;
      case WIRE_LEN:
        this.pos += this.varint();
        break;
      default:
        throw new RangeError(`unsupported protobuf wire type ${wire}`);
    }
    if (this.pos > this.end) throw new RangeError('truncated protobuf field');
  }
}

/** One field of a message: number, wire type and byte ranges (`start` = tag start; payload for LEN). */
interface Field {
  readonly field: number;
  readonly wire: number;
  readonly start: number;
  readonly payloadStart: number;
  readonly end: number;
}

function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  const r = new Reader(buf, start, end);
  while (r.pos < end) {
    const s = r.pos;
    const key = r.varint();
    const wire = key & 7;
    const field = Math.floor(key / 8);
    let payloadStart = r.pos;
    if (wire === WIRE_LEN) {
      const len = r.varint();
      payloadStart = r.pos;
      r.pos += len;
      if (r.pos > end) throw new RangeError('truncated protobuf field');
    } else {
      r.skip(wire);
    }
    yield { field, wire, start: s, payloadStart, end: r.pos };
  }
}

/** Tag + length header of a LEN field. */
function lenHeader(field: number, length: number): Uint8Array {
  const key = field * 8 + WIRE_LEN;
  const out = new Uint8Array(varintSize(key) + varintSize(length));
  writeVarint(out, writeVarint(out, 0, key), length);
  return out;
}

/** Total length of pieces. */
function piecesLength(pieces: readonly Piece[]): number {
  let n = 0;
  for (const p of pieces) n += pieceLength(p);
  return n;
}

/**
 * Rebuilds a serialized ModelProto with some nodes of its top-level graph replaced. `edit` gets
 * each node's index and payload bytes and returns the new payload as pieces, or `null` to keep it.
 * Everything else is copied byte for byte. The result is allocated once, at its exact size.
 * @throws ModelTooLargeError when that size is over `maxBytes` (nothing is allocated)
 */
export function editGraphNodes(model: Uint8Array, edit: (index: number, node: Uint8Array) => Piece[] | null, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
  const modelPieces: Piece[] = [];
  let graphs = 0;
  for (const mf of fields(model, 0, model.length)) {
    if (mf.field !== MODEL_GRAPH || mf.wire !== WIRE_LEN) {
      modelPieces.push(model.subarray(mf.start, mf.end));
      continue;
    }
    graphs++;
    const graphPieces: Piece[] = [];
    let index = 0;
    for (const gf of fields(model, mf.payloadStart, mf.end)) {
      if (gf.field !== GRAPH_NODE || gf.wire !== WIRE_LEN) {
        graphPieces.push(model.subarray(gf.start, gf.end));
        continue;
      }
      const replaced = edit(index++, model.subarray(gf.payloadStart, gf.end));
      if (replaced === null) graphPieces.push(model.subarray(gf.start, gf.end));
      else graphPieces.push(lenHeader(GRAPH_NODE, piecesLength(replaced)), ...replaced);
    }
    modelPieces.push(lenHeader(MODEL_GRAPH, piecesLength(graphPieces)), ...graphPieces);
  }
  if (graphs > 1) throw new RangeError('the model holds more than one graph field');
  const size = piecesLength(modelPieces);
  if (size > maxBytes) throw new ModelTooLargeError(size, maxBytes);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const p of modelPieces) {
    if (p instanceof Uint8Array) out.set(p, pos);
    else p.write(out, pos);
    pos += pieceLength(p);
  }
  return out;
}

/** An AttributeProto as a node field (tag + length + payload), from a writer of the payload. */
export function attributeField(payload: ChunkWriter): Piece[] {
  return [lenHeader(NODE_ATTRIBUTE, payload.byteLength), payload];
}

/** Large attributes cut out of a model's nodes, by node index (payload bytes, views of the input). */
export type DetachedAttributes = ReadonlyMap<number, readonly Uint8Array[]>;

/**
 * Whether an attribute payload may be detached: plain lists and self-contained tensors only. Graph
 * attributes stay (their nodes are validated), and so do class labels (signature inference reads
 * them) and tensors whose data lives in an external file (validation refuses those).
 */
function detachable(attr: Uint8Array): boolean {
  let type = 0;
  for (const f of fields(attr, 0, attr.length)) {
    if (f.field === 1 && f.wire === WIRE_LEN) {
      const name = new TextDecoder().decode(attr.subarray(f.payloadStart, f.end));
      if (name.startsWith('classlabels')) return false;
    } else if (f.field === 20 && f.wire === WIRE_VARINT) {
      type = new Reader(attr, f.payloadStart, f.end).varint();
    } else if (f.field === 6 || f.field === 11 || f.field === 10 || f.field === 22 || f.field === 23) {
      return false;
    } else if (f.field === 5 && f.wire === WIRE_LEN) {
      for (const tf of fields(attr, f.payloadStart, f.end)) {
        if (tf.field === 13) return false;
        if (tf.field === 14 && new Reader(attr, tf.payloadStart, tf.end).varint() !== 0) return false;
      }
    }
  }
  // FLOATS, INTS, STRINGS, TENSOR.
  return type === 6 || type === 7 || type === 8 || type === 4;
}

/**
 * Cuts attributes of at least `minBytes` out of the top-level graph's nodes (see
 * {@link detachable} for which). Returns the small remaining model and the detached payloads.
 * When nothing is that large, the input is returned as it is.
 */
export function detachLargeAttributes(model: Uint8Array, minBytes = 256 * 1024): { skeleton: Uint8Array; detached: DetachedAttributes } {
  if (model.length < minBytes) return { skeleton: model, detached: new Map() };
  const detached = new Map<number, Uint8Array[]>();
  const skeleton = editGraphNodes(model, (index, node) => {
    if (node.length < minBytes) return null;
    const kept: Piece[] = [];
    const cut: Uint8Array[] = [];
    for (const f of fields(node, 0, node.length)) {
      const isAttr = f.field === NODE_ATTRIBUTE && f.wire === WIRE_LEN;
      if (isAttr && f.end - f.payloadStart >= minBytes && detachable(node.subarray(f.payloadStart, f.end))) {
        cut.push(node.subarray(f.payloadStart, f.end));
      } else {
        kept.push(node.subarray(f.start, f.end));
      }
    }
    if (cut.length === 0) return null;
    detached.set(index, cut);
    return kept;
  });
  return detached.size === 0 ? { skeleton: model, detached } : { skeleton, detached };
}

/** Puts attributes detached by {@link detachLargeAttributes} back, appended to their nodes. */
export function reattachAttributes(skeleton: Uint8Array, detached: DetachedAttributes): Uint8Array {
  if (detached.size === 0) return skeleton;
  let seen = 0;
  const out = editGraphNodes(skeleton, (index, node) => {
    const extra = detached.get(index);
    if (extra === undefined) return null;
    seen++;
    const pieces: Piece[] = [node];
    for (const a of extra) pieces.push(lenHeader(NODE_ATTRIBUTE, a.length), a);
    return pieces;
  });
  if (seen !== detached.size) throw new RangeError('the rewritten model lost nodes whose attributes were detached');
  return out;
}
