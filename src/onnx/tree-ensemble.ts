/**
 * The ai.onnx.ml `TreeEnsemble` operator (opset 5) for a fitted tree ensemble, written straight
 * from the model's typed arrays into protobuf bytes of exactly known size.
 *
 * Why opset 5 and not `TreeEnsembleRegressor` (opset 3): the older operator lists every node in
 * nine parallel attributes, leaves included, with each node's mode as a string ("BRANCH_LEQ");
 * for a 2-million-node forest that is about 60 MB of protobuf, and onnxruntime materialises one
 * string object and several int64 slots per node while loading it. `TreeEnsemble` describes
 * interior nodes (`nodes_*`) and leaves (`leaf_*`) separately, keeps modes, split values and leaf
 * weights in tensors, and onnxruntime drops these attributes once its kernel is built. Integer
 * lists are written packed, which protobuf parsers accept for any repeated scalar field.
 *
 * Leaves: a v5 leaf adds one weight to one target. A leaf of our models may hold several nonzero
 * outputs (class probabilities of an impure forest leaf), so a tree whose leaves hold at most `c`
 * nonzero outputs is written `c` times: copy `j` gives every leaf its `j`-th nonzero output (or a
 * weight of 0). Fully grown classification trees have pure leaves, so they are written once;
 * regression trees and boosted trees (one output per tree) always are. Averaging over trees is
 * folded into the weights (aggregate SUM); base values are left to an `Add` after the operator.
 */
import type { Tree, TreeEnsembleModel } from '../ml/types.ts';
import { InvalidModelError } from './errors.ts';
import { varintSize, writeVarint, type ChunkWriter } from './wire.ts';

/** The operator's attributes as flat arrays (what {@link treeEnsembleAttributes} writes). */
export interface TreeEnsembleArrays {
  readonly nTargets: number;
  /** Index into the `nodes_*` arrays of each (copy of a) tree's root. */
  readonly treeRoots: Int32Array;
  readonly featureIds: Int32Array;
  /** Float32 split values (`x <= split` goes to the true branch). */
  readonly splits: Float32Array;
  readonly trueIds: Int32Array;
  readonly trueLeafs: Uint8Array;
  readonly falseIds: Int32Array;
  readonly falseLeafs: Uint8Array;
  readonly missingTracksTrue: Uint8Array;
  readonly leafTargetIds: Int32Array;
  readonly leafWeights: Float32Array;
}

/** Largest float32 not above `x`: float32 `v <= result` iff `v <= x` for every float32 `v`. */
export function floorToFloat32(x: number): number {
  const f = Math.fround(x);
  if (f <= x || Number.isNaN(x)) return f;
  if (f === 0) return -1.401298464324817e-45; // x is a tiny negative number: the negative subnormal closest to 0.
  const bits = new Float32Array([f]);
  const ints = new Int32Array(bits.buffer);
  // For positive floats the bit pattern grows with the value; for negative ones it shrinks.
  ints[0] = f > 0 ? ints[0]! - 1 : ints[0]! + 1;
  return bits[0]!;
}

function checkTree(tree: Tree, t: number, nOutputs: number, nFeatures: number): void {
  const count = tree.left.length;
  if (
    count === 0 ||
    tree.right.length !== count ||
    tree.feature.length !== count ||
    tree.threshold.length !== count ||
    tree.missingGoesLeft.length !== count ||
    tree.value.length !== count * nOutputs
  ) {
    throw new InvalidModelError(`tree ${t} has inconsistent array lengths`);
  }
  for (let i = 0; i < count; i++) {
    const l = tree.left[i]!;
    if (l === -1) continue;
    const r = tree.right[i]!;
    const f = tree.feature[i]!;
    if (l <= 0 || l >= count || r <= 0 || r >= count || f < 0 || f >= nFeatures) {
      throw new InvalidModelError(`tree ${t} node ${i} points outside the tree or the features`);
    }
  }
}

/** Number of nonzero outputs of the leaf (at least 1, so every tree is written at least once). */
function copiesNeeded(tree: Tree, K: number): number {
  let copies = 1;
  const { left, value } = tree;
  if (K === 1) return 1;
  for (let i = 0; i < left.length; i++) {
    if (left[i] !== -1) continue;
    let nz = 0;
    for (let k = 0; k < K; k++) if (value[i * K + k] !== 0) nz++;
    if (nz > copies) copies = nz;
  }
  return copies;
}

/**
 * About how many bytes `tree` adds to an exported model as a `TreeEnsemble` operator of its own
 * (what every tree of a large forest is; see `MAX_NODES_PER_TREE_OPERATOR`): per interior node its
 * feature id, split, mode, two child ids with their leaf flags and the missing-value flag, per leaf
 * its target id and weight, times the copies its multi-output leaves need, plus the operator's
 * fixed fields. For projecting a model's size while it is fitted; the export itself knows the
 * exact size.
 */
export function treeOnnxBytes(tree: Tree, nOutputs: number, nFeatures: number): number {
  const count = tree.left.length;
  let leaves = 0;
  for (let i = 0; i < count; i++) if (tree.left[i] === -1) leaves++;
  const interior = Math.max(1, count - leaves);
  const copies = copiesNeeded(tree, nOutputs);
  const id = varintSize(copies * Math.max(interior, leaves));
  const perInterior = 4 + 1 + 1 + 1 + 1 + 2 * id + varintSize(nFeatures);
  const perLeaf = 4 + varintSize(nOutputs);
  return copies * (interior * perInterior + leaves * perLeaf) + OPERATOR_FIXED_BYTES;
}

/**
 * An operator's bytes besides its per-node arrays: its node's names and domain, the attributes'
 * names, types and headers (measured: 450-455 bytes per added operator, a little more as the
 * graph's node names lengthen).
 */
const OPERATOR_FIXED_BYTES = 460;

/**
 * Lays out the model as `TreeEnsemble` attributes (see the module comment for copies of trees
 * with multi-output leaves). A tree that is a single leaf gets one interior node whose branches
 * both lead to that leaf, because every tree root must be an interior node.
 * @throws InvalidModelError when the arrays are inconsistent
 */
export function treeEnsembleArrays(m: TreeEnsembleModel, trees: readonly Tree[] = m.trees): TreeEnsembleArrays {
  const K = m.nOutputs;
  if (trees.length === 0) throw new InvalidModelError('the tree ensemble has no trees');
  const copies = new Int32Array(trees.length);
  let nInterior = 0;
  let nLeaves = 0;
  let nRoots = 0;
  let maxCount = 0;
  trees.forEach((tree, t) => {
    checkTree(tree, t, K, m.nFeatures);
    const count = tree.left.length;
    let leaves = 0;
    for (let i = 0; i < count; i++) if (tree.left[i] === -1) leaves++;
    const c = copiesNeeded(tree, K);
    copies[t] = c;
    nRoots += c;
    nInterior += c * Math.max(1, count - leaves);
    nLeaves += c * leaves;
    if (count > maxCount) maxCount = count;
  });

  const scale = m.aggregate === 'average' ? 1 / m.trees.length : 1;
  const treeRoots = new Int32Array(nRoots);
  const featureIds = new Int32Array(nInterior);
  const splits = new Float32Array(nInterior);
  const trueIds = new Int32Array(nInterior);
  const trueLeafs = new Uint8Array(nInterior);
  const falseIds = new Int32Array(nInterior);
  const falseLeafs = new Uint8Array(nInterior);
  const missingTracksTrue = new Uint8Array(nInterior);
  const leafTargetIds = new Int32Array(nLeaves);
  const leafWeights = new Float32Array(nLeaves);
  // Position of each node among its tree's interior nodes or among its leaves.
  const local = new Int32Array(maxCount);

  let nodeBase = 0;
  let leafBase = 0;
  let root = 0;
  trees.forEach((tree, t) => {
    const { feature, threshold, left, right, missingGoesLeft, value } = tree;
    const count = left.length;
    let ni = 0;
    let nl = 0;
    for (let i = 0; i < count; i++) local[i] = left[i] === -1 ? nl++ : ni++;
    for (let c = 0; c < copies[t]!; c++) {
      treeRoots[root++] = nodeBase;
      if (ni === 0) {
        // A lone leaf: one interior node leading to it either way.
        trueIds[nodeBase] = leafBase;
        falseIds[nodeBase] = leafBase;
        trueLeafs[nodeBase] = 1;
        falseLeafs[nodeBase] = 1;
      }
      for (let i = 0; i < count; i++) {
        const l = left[i]!;
        if (l === -1) {
          const q = leafBase + local[i]!;
          let seen = 0;
          for (let k = 0; k < K; k++) {
            const v = value[i * K + k]!;
            if (v === 0) continue;
            if (seen++ === c) {
              leafTargetIds[q] = k;
              leafWeights[q] = v * scale;
              break;
            }
          }
          continue;
        }
        const q = nodeBase + local[i]!;
        const r = right[i]!;
        featureIds[q] = feature[i]!;
        splits[q] = floorToFloat32(threshold[i]!);
        missingTracksTrue[q] = missingGoesLeft[i]! ? 1 : 0;
        // Under BRANCH_LEQ the true branch is x <= split, i.e. the left child.
        if (left[l] === -1) {
          trueIds[q] = leafBase + local[l]!;
          trueLeafs[q] = 1;
        } else trueIds[q] = nodeBase + local[l]!;
        if (left[r] === -1) {
          falseIds[q] = leafBase + local[r]!;
          falseLeafs[q] = 1;
        } else falseIds[q] = nodeBase + local[r]!;
      }
      nodeBase += Math.max(1, ni);
      leafBase += nl;
    }
  });
  return {
    nTargets: K,
    treeRoots,
    featureIds,
    splits,
    trueIds,
    trueLeafs,
    falseIds,
    falseLeafs,
    missingTracksTrue,
    leafTargetIds,
    leafWeights,
  };
}

// ---------------------------------------------------------------------------------------------
// AttributeProto payloads

const ATTR_NAME = 1;
const ATTR_I = 3;
const ATTR_T = 5;
const ATTR_INTS = 8;
const ATTR_TYPE = 20;
const TYPE_INT = 2;
const TYPE_TENSOR = 4;
const TYPE_INTS = 7;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_RAW_DATA = 9;
const DT_FLOAT = 1;
const DT_UINT8 = 2;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const encoder = new TextEncoder();

function key(field: number, wire: number): number {
  return field * 8 + wire;
}

/** Size of a LEN field with a payload of `n` bytes. */
function lenFieldSize(field: number, n: number): number {
  return varintSize(key(field, 2)) + varintSize(n) + n;
}

function writeLenHeader(out: Uint8Array, pos: number, field: number, n: number): number {
  return writeVarint(out, writeVarint(out, pos, key(field, 2)), n);
}

/** Name and type fields, shared by every attribute. */
function header(name: string, type: number): { bytes: Uint8Array } {
  const nameBytes = encoder.encode(name);
  const size = lenFieldSize(ATTR_NAME, nameBytes.length) + varintSize(key(ATTR_TYPE, 0)) + varintSize(type);
  const bytes = new Uint8Array(size);
  let pos = writeLenHeader(bytes, 0, ATTR_NAME, nameBytes.length);
  bytes.set(nameBytes, pos);
  pos += nameBytes.length;
  pos = writeVarint(bytes, pos, key(ATTR_TYPE, 0));
  writeVarint(bytes, pos, type);
  return { bytes };
}

/** An INTS attribute, packed. Values must be non-negative. */
function intsAttribute(name: string, values: Int32Array | Uint8Array): ChunkWriter {
  const head = header(name, TYPE_INTS).bytes;
  let packed = 0;
  if (values instanceof Uint8Array) packed = values.length; // 0/1 flags: one byte each
  else for (let i = 0; i < values.length; i++) packed += varintSize(values[i]!);
  const byteLength = head.length + (values.length === 0 ? 0 : lenFieldSize(ATTR_INTS, packed));
  return {
    byteLength,
    write(out, offset) {
      out.set(head, offset);
      let pos = offset + head.length;
      if (values.length === 0) return;
      pos = writeLenHeader(out, pos, ATTR_INTS, packed);
      if (values instanceof Uint8Array) {
        out.set(values, pos);
        return;
      }
      for (let i = 0; i < values.length; i++) {
        let v = values[i]!;
        while (v >= 128) {
          out[pos++] = (v & 127) | 128;
          v >>>= 7;
        }
        out[pos++] = v;
      }
    },
  };
}

/** An INT attribute. */
export function intAttribute(name: string, value: number): ChunkWriter {
  const head = header(name, TYPE_INT).bytes;
  const byteLength = head.length + varintSize(key(ATTR_I, 0)) + varintSize(value);
  return {
    byteLength,
    write(out, offset) {
      out.set(head, offset);
      writeVarint(out, writeVarint(out, offset + head.length, key(ATTR_I, 0)), value);
    },
  };
}

/** A TENSOR attribute holding a 1-D float32 or uint8 tensor in raw_data. */
function tensorAttribute(name: string, values: Float32Array | Uint8Array): ChunkWriter {
  const head = header(name, TYPE_TENSOR).bytes;
  const n = values.length;
  const dataType = values instanceof Float32Array ? DT_FLOAT : DT_UINT8;
  const rawBytes = values.byteLength;
  const dimsPayload = varintSize(n);
  const tensorSize =
    lenFieldSize(TENSOR_DIMS, dimsPayload) + varintSize(key(TENSOR_DATA_TYPE, 0)) + varintSize(dataType) + lenFieldSize(TENSOR_RAW_DATA, rawBytes);
  const byteLength = head.length + lenFieldSize(ATTR_T, tensorSize);
  return {
    byteLength,
    write(out, offset) {
      out.set(head, offset);
      let pos = writeLenHeader(out, offset + head.length, ATTR_T, tensorSize);
      pos = writeLenHeader(out, pos, TENSOR_DIMS, dimsPayload);
      pos = writeVarint(out, pos, n);
      pos = writeVarint(out, writeVarint(out, pos, key(TENSOR_DATA_TYPE, 0)), dataType);
      pos = writeLenHeader(out, pos, TENSOR_RAW_DATA, rawBytes);
      if (values instanceof Uint8Array || LITTLE_ENDIAN) {
        out.set(new Uint8Array(values.buffer, values.byteOffset, rawBytes), pos);
      } else {
        const view = new DataView(out.buffer, out.byteOffset + pos, rawBytes);
        for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i]!, true);
      }
    },
  };
}

/**
 * The attribute payloads of one `TreeEnsemble` node (everything but the inputs, outputs and
 * name), each with its exact byte length. Aggregation SUM, no post transform.
 */
export function treeEnsembleAttributes(a: TreeEnsembleArrays): ChunkWriter[] {
  return [
    intAttribute('n_targets', a.nTargets),
    intAttribute('aggregate_function', 1),
    intAttribute('post_transform', 0),
    intsAttribute('tree_roots', a.treeRoots),
    intsAttribute('nodes_featureids', a.featureIds),
    tensorAttribute('nodes_splits', a.splits),
    // Mode 0 is BRANCH_LEQ for every interior node.
    tensorAttribute('nodes_modes', new Uint8Array(a.featureIds.length)),
    intsAttribute('nodes_truenodeids', a.trueIds),
    intsAttribute('nodes_trueleafs', a.trueLeafs),
    intsAttribute('nodes_falsenodeids', a.falseIds),
    intsAttribute('nodes_falseleafs', a.falseLeafs),
    intsAttribute('nodes_missing_value_tracks_true', a.missingTracksTrue),
    intsAttribute('leaf_targetids', a.leafTargetIds),
    tensorAttribute('leaf_weights', a.leafWeights),
  ];
}
