/**
 * The histogram loops of gradient boosting, and the bin search of its binning, as a small
 * WebAssembly module: the innermost loops of a fit, where V8's typed-array code spends about twice
 * the time of the same loop in WebAssembly (a bounds check and overflow checks on every address;
 * WebAssembly's loads need neither), and, for the bin search, several times (V8 branches where
 * WebAssembly's `select` does not, and a value's side of an edge is unpredictable). The module
 * is assembled here at load time from the instruction lists below (a few hundred bytes; no build
 * step, no dependency). Its memory is one shared `WebAssembly.Memory` that holds every array the
 * loops read or write (see {@link KernelMemory}), so worker threads run the same loops on the same
 * memory.
 *
 * Each loop adds rows to the histogram slots of features `[f0, f1)`, reading a row's bins from the
 * row-major bins (`rowBins[i * p + f]`, one byte each). A bin is three float64 slots (gradient sum,
 * hessian sum, count) at `hist + f * fs + bin * 24`. In WebAssembly text, `nodeRows` is:
 *
 *   (func $nodeRows (param $hist i32) (param $fs i32) (param $rowBins i32) (param $p i32)
 *       (param $f0 i32) (param $f1 i32) (param $order i32) (param $t0 i32) (param $t1 i32)
 *       (param $g i32) (param $h i32)
 *       (local $t i32) (local $r i32) (local $hb i32) (local $f i32) (local $o i32) (local $v f64) (local $w f64)
 *     (local.set $t (local.get $t0))
 *     (block $done (br_if $done (i32.ge_s (local.get $t) (local.get $t1)))
 *       (loop $rows
 *         ;; i = order[t]; v = g[i]; r = &rowBins[i * p + f0]; hb = hist + f0 * fs
 *         (local.set $o (i32.load (i32.add (local.get $order) (i32.shl (local.get $t) (i32.const 2)))))
 *         (local.set $v (f64.load (i32.add (local.get $g) (i32.shl (local.get $o) (i32.const 3)))))
 *         (local.set $r (i32.add (i32.add (i32.mul (local.get $o) (local.get $p)) (local.get $rowBins)) (local.get $f0)))
 *         (local.set $hb (i32.add (local.get $hist) (i32.mul (local.get $f0) (local.get $fs))))
 *         (local.set $f (local.get $f0))
 *         (block $features (br_if $features (i32.ge_s (local.get $f) (local.get $f1)))
 *           (loop $feature
 *             (local.set $o (i32.add (local.get $hb) (i32.mul (i32.load8_u (local.get $r)) (i32.const 24))))
 *             (f64.store (local.get $o) (f64.add (f64.load (local.get $o)) (local.get $v)))
 *             (f64.store offset=16 (local.get $o) (f64.add (f64.load offset=16 (local.get $o)) (f64.const 1)))
 *             (local.set $r (i32.add (local.get $r) (i32.const 1)))
 *             (local.set $hb (i32.add (local.get $hb) (local.get $fs)))
 *             (br_if $feature (i32.lt_s (local.tee $f (i32.add (local.get $f) (i32.const 1))) (local.get $f1)))))
 *         (br_if $rows (i32.lt_s (local.tee $t (i32.add (local.get $t) (i32.const 1))) (local.get $t1))))))
 *
 * `nodeRowsWithHessians` also adds `w = h[i]` at `offset=8`; `rootRows` and `rootRowsWithHessians`
 * take row `i = t` (the root's rows in index order) and add no count (the root's counts are the
 * same for every tree). The additions into each slot happen in row order, exactly as the same loop
 * in JavaScript would do them, so the sums are bit-for-bit those of plain float64 arithmetic.
 *
 * `binValues` maps float32 values to bins: the number of edges below each value, by eight halving
 * steps over 256 float64 edges padded with +Infinity, each step a `select`; NaN takes `missing`:
 *
 *   (func $binValues (param $x i32) (param $out i32) (param $n i32) (param $padded i32) (param $missing i32)
 *       (local $r i32) (local $b i32) (local $v f64)
 *     (local.set $r (i32.const 0))
 *     (block $done (br_if $done (i32.ge_s (local.get $r) (local.get $n)))
 *       (loop $values
 *         (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $r) (i32.const 2))))))
 *         (local.set $b (i32.const 0))
 *         ;; for k in 128, 64, ..., 1: b += padded[b + k - 1] < v ? k : 0
 *         (local.set $b (select (i32.add (local.get $b) (i32.const 128)) (local.get $b)
 *           (f64.lt (f64.load offset=1016 (i32.add (local.get $padded) (i32.shl (local.get $b) (i32.const 3)))) (local.get $v))))
 *         ...
 *         (i32.store8 (i32.add (local.get $out) (local.get $r))
 *           (select (local.get $missing) (local.get $b) (f64.ne (local.get $v) (local.get $v))))
 *         (br_if $values (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $n))))))
 *
 * `partitionRows` is the stable partition of a node's rows by the side of their bin (see
 * `partitionRows` in `gbdt.ts`), branch-free: every row is written to both places while only its
 * side's cursor advances. Left rows go to `$left` (which may be `$order` itself: a row is written
 * at or before the place it was read from).
 *
 *   (func $partitionRows (param $order i32) (param $tmp i32) (param $col i32) (param $goLeft i32)
 *       (param $cs i32) (param $ce i32) (param $left i32) (result i32)
 *       (local $pos i32) (local $l i32) (local $r i32) (local $i i32) (local $side i32)
 *     (local.set $l (local.get $cs)) (local.set $r (local.get $cs)) (local.set $pos (local.get $cs))
 *     (block $done (br_if $done (i32.ge_s (local.get $pos) (local.get $ce)))
 *       (loop $rows
 *         (local.set $i (i32.load (i32.add (local.get $order) (i32.shl (local.get $pos) (i32.const 2)))))
 *         (local.set $side (i32.load8_u (i32.add (local.get $goLeft) (i32.load8_u (i32.add (local.get $col) (local.get $i))))))
 *         (i32.store (i32.add (local.get $left) (i32.shl (local.get $l) (i32.const 2))) (local.get $i))
 *         (i32.store (i32.add (local.get $tmp) (i32.shl (local.get $r) (i32.const 2))) (local.get $i))
 *         (local.set $l (i32.add (local.get $l) (local.get $side)))
 *         (local.set $r (i32.sub (i32.add (local.get $r) (i32.const 1)) (local.get $side)))
 *         (br_if $rows (i32.lt_s (local.tee $pos (i32.add (local.get $pos) (i32.const 1))) (local.get $ce)))))
 *     (i32.sub (local.get $l) (local.get $cs)))
 *
 * `addToScores` adds a leaf's value to the raw scores of its rows:
 *
 *   (func $addToScores (param $order i32) (param $raw i32) (param $stride i32) (param $s i32) (param $e i32)
 *       (param $v f64) (local $pos i32) (local $a i32)
 *     (local.set $pos (local.get $s))
 *     (block $done (br_if $done (i32.ge_s (local.get $pos) (local.get $e)))
 *       (loop $rows
 *         (local.set $a (i32.add (local.get $raw) (i32.mul (i32.load (i32.add (local.get $order)
 *           (i32.shl (local.get $pos) (i32.const 2)))) (local.get $stride))))
 *         (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $v)))
 *         (br_if $rows (i32.lt_s (local.tee $pos (i32.add (local.get $pos) (i32.const 1))) (local.get $e))))))
 *
 * `addF64` and `subF64` add (subtract) `n` float64 values at `src` to (from) those at `dst`, in
 * order: a histogram's chunks summed, a child's histogram taken from its parent's.
 *
 *   (func $addF64 (param $dst i32) (param $src i32) (param $n i32) (local $k i32) (local $a i32) (local $end i32)
 *     (local.set $end (i32.shl (local.get $n) (i32.const 3)))
 *     (block $done (br_if $done (i32.ge_s (local.get $k) (local.get $end)))
 *       (loop $values
 *         (local.set $a (i32.add (local.get $dst) (local.get $k)))
 *         (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.load (i32.add (local.get $src) (local.get $k)))))
 *         (br_if $values (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 8))) (local.get $end))))))
 *
 * `squaredErrorGradients` writes the half squared error's gradients `g[i] = raw[i] - y[i]` and
 * returns their sum, added in row order:
 *
 *   (func $squaredErrorGradients (param $raw i32) (param $y i32) (param $g i32) (param $n i32) (result f64)
 *       (local $k i32) (local $end i32) (local $v f64) (local $sum f64)
 *     (local.set $end (i32.shl (local.get $n) (i32.const 3)))
 *     (block $done (br_if $done (i32.ge_s (local.get $k) (local.get $end)))
 *       (loop $rows
 *         (local.set $v (f64.sub (f64.load (i32.add (local.get $raw) (local.get $k))) (f64.load (i32.add (local.get $y) (local.get $k)))))
 *         (f64.store (i32.add (local.get $g) (local.get $k)) (local.get $v))
 *         (local.set $sum (f64.add (local.get $sum) (local.get $v)))
 *         (br_if $rows (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 8))) (local.get $end)))))
 *     (local.get $sum))
 *
 * `addTreeScores` walks rows (row-major bins) down a tree and adds their leaf's value to their
 * score. A row's side is unpredictable, so it is computed, not branched on: the right child is
 * the left one + 1, and a row goes right when its bin is above the threshold, unless it is the
 * missing bin (above every threshold) and missing values go left.
 *
 *   (func $addTreeScores (param $rowBins i32) (param $p i32) (param $n i32) (param $nBins i32)
 *       (param $feature i32) (param $thrBin i32) (param $left i32) (param $missLeft i32)
 *       (param $value i32) (param $raw i32) (param $stride i32)
 *       (local $i i32) (local $r i32) (local $node i32) (local $l i32) (local $f i32) (local $b i32) (local $a i32)
 *     (block $done (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
 *       (loop $rows
 *         (local.set $r (i32.add (local.get $rowBins) (i32.mul (local.get $i) (local.get $p))))
 *         (local.set $node (i32.const 0))
 *         (block $leaf
 *           (loop $walk
 *             (local.set $l (i32.load (i32.add (local.get $left) (i32.shl (local.get $node) (i32.const 2)))))
 *             (br_if $leaf (i32.eq (local.get $l) (i32.const -1)))
 *             (local.set $f (i32.load (i32.add (local.get $feature) (i32.shl (local.get $node) (i32.const 2)))))
 *             (local.set $b (i32.load8_u (i32.add (local.get $r) (local.get $f))))
 *             (local.set $node (i32.add (local.get $l) (i32.and
 *               (i32.lt_s (i32.load (i32.add (local.get $thrBin) (i32.shl (local.get $node) (i32.const 2)))) (local.get $b))
 *               (i32.sub (i32.const 1) (i32.and
 *                 (i32.eq (local.get $b) (i32.load (i32.add (local.get $nBins) (i32.shl (local.get $f) (i32.const 2)))))
 *                 (i32.load8_u (i32.add (local.get $missLeft) (local.get $node))))))))
 *             (br $walk)))
 *         (local.set $a (i32.add (local.get $raw) (i32.mul (local.get $i) (local.get $stride))))
 *         (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
 *           (f64.load (i32.add (local.get $value) (i32.shl (local.get $node) (i32.const 3))))))
 *         (br_if $rows (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))))
 */

/** A shared `WebAssembly.Memory` (the compiler's libraries here, ES2023 without the DOM, do not declare WebAssembly). */
export interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}

declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => SharedMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
};

/**
 * One loop: adds rows `t0..t1` (`order[t0..t1)` for a node) to `hist`'s slots of features
 * `[f0, f1)`, `fs` bytes apart. Every argument is a byte address into the kernel memory or a count;
 * a loop ignores what it does not read (`order` at the root, `h` without hessians).
 */
export type RowsLoop = (
  hist: number,
  fs: number,
  rowBins: number,
  p: number,
  f0: number,
  f1: number,
  order: number,
  t0: number,
  t1: number,
  g: number,
  h: number,
) => void;

/** Bins of `n` float32 values at `x` into bytes at `out` (see the listing above). */
export type BinLoop = (x: number, out: number, n: number, padded: number, missing: number) => void;

/**
 * Stable partition of rows `order[cs..ce)` (byte addresses `order`, `tmp`, `left`; `col` the
 * address of the split feature's column-major bins, `goLeft` of 1 per bin going left): left rows
 * to `left[cs..cs+L)` (`left` may be `order`), right rows to `tmp[cs..ce-L)`. Returns L.
 */
export type PartitionLoop = (order: number, tmp: number, col: number, goLeft: number, cs: number, ce: number, left: number) => number;

/** Adds `v` to the float64 at `raw + order[pos] * stride` for every `pos` in `[s, e)`. */
export type ScoresLoop = (order: number, raw: number, stride: number, s: number, e: number, v: number) => void;

/** `dst[k] op= src[k]` for `k < n` (float64 arrays at byte addresses `dst`, `src`). */
export type ArrayLoop = (dst: number, src: number, n: number) => void;

/** Gradients of the half squared error into `g` (float64 arrays of `n` at byte addresses); returns their sum. */
export type GradientsLoop = (raw: number, y: number, g: number, n: number) => number;

/**
 * Adds, for each of `n` rows (row-major bins at `rowBins`, `p` a row), the value of its leaf in a
 * tree (`feature`, `thrBin`, `left` int32 arrays, `missLeft` bytes, `value` float64, right child =
 * left + 1; `nBins` int32 per feature, the missing bin) to the float64 at `raw + i * stride`.
 */
export type TreeScoresLoop = (
  rowBins: number,
  p: number,
  n: number,
  nBins: number,
  feature: number,
  thrBin: number,
  left: number,
  missLeft: number,
  value: number,
  raw: number,
  stride: number,
) => void;

/** The module's loops. */
export interface Kernels {
  /** Gradient sums of the root's rows `t0..t1` (in index order). */
  readonly rootRows: RowsLoop;
  /** Gradient and hessian sums of the root's rows `t0..t1`. */
  readonly rootRowsWithHessians: RowsLoop;
  /** Gradient sums and counts of rows `order[t0..t1)`. */
  readonly nodeRows: RowsLoop;
  /** Gradient sums, hessian sums and counts of rows `order[t0..t1)`. */
  readonly nodeRowsWithHessians: RowsLoop;
  readonly binValues: BinLoop;
  readonly partitionRows: PartitionLoop;
  readonly addToScores: ScoresLoop;
  readonly addF64: ArrayLoop;
  readonly subF64: ArrayLoop;
  readonly squaredErrorGradients: GradientsLoop;
  readonly addTreeScores: TreeScoresLoop;
}

// --- A tiny WebAssembly encoder: just the instructions the loops use. ---

type Code = number[];

function uleb(n: number): Code {
  const out: Code = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): Code {
  const out: Code = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: readonly Code[]): Code => [...uleb(items.length), ...items.flat()];
const name = (s: string): Code => vec([...s].map((ch) => [ch.charCodeAt(0)]));
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];

const I32 = 0x7f;
const F64 = 0x7c;
const get = (i: number): Code => [0x20, ...uleb(i)];
const set = (i: number): Code => [0x21, ...uleb(i)];
const tee = (i: number): Code => [0x22, ...uleb(i)];
const i32 = (v: number): Code => [0x41, ...sleb(v)];
const f64 = (v: number): Code => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)];
const ADD = [0x6a];
const SUB = [0x6b];
const store32 = (offset = 0): Code => [0x36, 2, ...uleb(offset)];
const MUL = [0x6c];
const SHL = [0x74];
const LT_S = [0x48];
const GE_S = [0x4e];
const F64_ADD = [0xa0];
const F64_SUB = [0xa1];
const EQ = [0x46];
const AND = [0x71];
const br = (depth: number): Code => [0x0c, ...uleb(depth)];
const F64_LT = [0x63];
const F64_NE = [0x62];
const F64_PROMOTE_F32 = [0xbb];
const SELECT = [0x1b];
const loadF32 = (offset = 0): Code => [0x2a, 2, ...uleb(offset)];
const store8 = (offset = 0): Code => [0x3a, 0, ...uleb(offset)];
const load8u = (offset = 0): Code => [0x2d, 0, ...uleb(offset)];
const load32 = (offset = 0): Code => [0x28, 2, ...uleb(offset)];
const loadF64 = (offset = 0): Code => [0x2b, 3, ...uleb(offset)];
const storeF64 = (offset = 0): Code => [0x39, 3, ...uleb(offset)];
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = [0x0b];
const brIf = (depth: number): Code => [0x0d, ...uleb(depth)];

/**
 * `while (counter < limit) { body; counter += step }` with the counter set before it: a block that
 * skips an empty range around a loop that branches back while the counter is below `limit`.
 */
function countedLoop(counter: number, limit: number, step: number, body: readonly Code[]): Code[] {
  return [BLOCK, get(counter), get(limit), GE_S, brIf(0), LOOP, ...body, get(counter), i32(step), ADD, tee(counter), get(limit), LT_S, brIf(0), END, END];
}

/** A function's code entry: its size, its locals (`[count, type]` runs) and its instructions. */
function functionBody(locals: readonly (readonly [number, number])[], body: readonly Code[]): Code {
  const fn = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...body.flat()];
  return [...uleb(fn.length), ...fn];
}

// Parameters (all i32), then locals.
const HIST = 0;
const FS = 1;
const ROW_BINS = 2;
const P = 3;
const F0 = 4;
const F1 = 5;
const ORDER = 6;
const T0 = 7;
const T1 = 8;
const G = 9;
const H = 10;
const T = 11;
const R = 12;
const HB = 13;
const F = 14;
const O = 15;
const V = 16;
const W = 17;
const PARAMS = 11;

/** Body of one loop (see the listing at the top): `root` reads row `t`, else `order[t]`. */
function rowsLoop(root: boolean, hessians: boolean, counts: boolean): Code {
  // slot[o + offset] += value
  const addTo = (offset: number, value: Code): Code => [...get(O), ...get(O), ...loadF64(offset), ...value, ...F64_ADD, ...storeF64(offset)];
  const body: Code[] = [
    get(T0), set(T),
    ...countedLoop(T, T1, 1, [
      // o = i (the row)
      root ? get(T) : [...get(ORDER), ...get(T), ...i32(2), ...SHL, ...ADD, ...load32()], set(O),
      get(G), get(O), i32(3), SHL, ADD, loadF64(), set(V),
      hessians ? [...get(H), ...get(O), ...i32(3), ...SHL, ...ADD, ...loadF64(), ...set(W)] : [],
      get(O), get(P), MUL, get(ROW_BINS), ADD, get(F0), ADD, set(R),
      get(HIST), get(F0), get(FS), MUL, ADD, set(HB),
      get(F0), set(F),
      ...countedLoop(F, F1, 1, [
        get(HB), get(R), load8u(), i32(24), MUL, ADD, set(O),
        addTo(0, get(V)),
        hessians ? addTo(8, get(W)) : [],
        counts ? addTo(16, f64(1)) : [],
        get(R), i32(1), ADD, set(R),
        get(HB), get(FS), ADD, set(HB),
      ]),
    ]),
    END,
  ];
  return functionBody([[5, I32], [2, F64]], body);
}

/** Body of `binValues` (see the listing at the top). */
function binLoop(): Code {
  const [X, OUT, N, PADDED, MISSING, R, B, VAL] = [0, 1, 2, 3, 4, 5, 6, 7];
  const step = (k: number): Code => [
    ...get(B), ...i32(k), ...ADD, ...get(B),
    ...get(PADDED), ...get(B), ...i32(3), ...SHL, ...ADD, ...loadF64((k - 1) * 8), ...get(VAL), ...F64_LT,
    ...SELECT, ...set(B),
  ];
  const body: Code[] = [
    i32(0), set(R),
    ...countedLoop(R, N, 1, [
      get(X), get(R), i32(2), SHL, ADD, loadF32(), F64_PROMOTE_F32, set(VAL),
      i32(0), set(B),
      ...[128, 64, 32, 16, 8, 4, 2, 1].map(step),
      get(OUT), get(R), ADD,
      get(MISSING), get(B), get(VAL), get(VAL), F64_NE, SELECT,
      store8(),
    ]),
    END,
  ];
  return functionBody([[2, I32], [1, F64]], body);
}

/** Body of `partitionRows` (see the listing at the top). */
function partitionLoop(): Code {
  const [ORD, TMP, COL, GO_LEFT, CS, CE, LEFT, POS, L, R, I, SIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const body: Code[] = [
    get(CS), set(L), get(CS), set(R), get(CS), set(POS),
    ...countedLoop(POS, CE, 1, [
      get(ORD), get(POS), i32(2), SHL, ADD, load32(), set(I),
      get(GO_LEFT), get(COL), get(I), ADD, load8u(), ADD, load8u(), set(SIDE),
      get(LEFT), get(L), i32(2), SHL, ADD, get(I), store32(),
      get(TMP), get(R), i32(2), SHL, ADD, get(I), store32(),
      get(L), get(SIDE), ADD, set(L),
      get(R), i32(1), ADD, get(SIDE), SUB, set(R),
    ]),
    get(L), get(CS), SUB,
    END,
  ];
  return functionBody([[5, I32]], body);
}

/** Body of `addToScores` (see the listing at the top). */
function scoresLoop(): Code {
  const [ORD, RAW, STRIDE, S, E, VAL, POS, A] = [0, 1, 2, 3, 4, 5, 6, 7];
  const body: Code[] = [
    get(S), set(POS),
    ...countedLoop(POS, E, 1, [
      get(RAW), get(ORD), get(POS), i32(2), SHL, ADD, load32(), get(STRIDE), MUL, ADD, set(A),
      get(A), get(A), loadF64(), get(VAL), F64_ADD, storeF64(),
    ]),
    END,
  ];
  return functionBody([[2, I32]], body);
}

/** Body of `addF64` (`subtract` false) or `subF64` (see the listing at the top). */
function arrayLoop(subtract: boolean): Code {
  const [DST, SRC, N, K, A, END_] = [0, 1, 2, 3, 4, 5];
  const body: Code[] = [
    get(N), i32(3), SHL, set(END_),
    ...countedLoop(K, END_, 8, [
      get(DST), get(K), ADD, set(A),
      get(A), get(A), loadF64(), get(SRC), get(K), ADD, loadF64(), subtract ? F64_SUB : F64_ADD, storeF64(),
    ]),
    END,
  ];
  return functionBody([[3, I32]], body);
}

/** Body of `squaredErrorGradients` (see the listing at the top). */
function gradientsLoop(): Code {
  const [RAW, Y, G_, N, K, END_, VAL, SUM] = [0, 1, 2, 3, 4, 5, 6, 7];
  const body: Code[] = [
    get(N), i32(3), SHL, set(END_),
    ...countedLoop(K, END_, 8, [
      get(RAW), get(K), ADD, loadF64(), get(Y), get(K), ADD, loadF64(), F64_SUB, set(VAL),
      get(G_), get(K), ADD, get(VAL), storeF64(),
      get(SUM), get(VAL), F64_ADD, set(SUM),
    ]),
    get(SUM),
    END,
  ];
  return functionBody([[2, I32], [2, F64]], body);
}

/** Body of `addTreeScores` (see the listing at the top). */
function treeScoresLoop(): Code {
  const [ROWS, P_, N, NBINS, FEATURE, THR, LEFT, MISS_LEFT, VALUE, RAW, STRIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [I, R_, NODE, L_, F_, B, A] = [11, 12, 13, 14, 15, 16, 17];
  const at4 = (base: number, index: number): Code => [...get(base), ...get(index), ...i32(2), ...SHL, ...ADD];
  const body: Code[] = [
    ...countedLoop(I, N, 1, [
      get(ROWS), get(I), get(P_), MUL, ADD, set(R_),
      i32(0), set(NODE),
      BLOCK,
      LOOP,
      at4(LEFT, NODE), load32(), tee(L_), i32(-1), EQ, brIf(1),
      at4(FEATURE, NODE), load32(), set(F_),
      get(R_), get(F_), ADD, load8u(), set(B),
      get(L_),
      at4(THR, NODE), load32(), get(B), LT_S,
      i32(1), get(B), at4(NBINS, F_), load32(), EQ, get(MISS_LEFT), get(NODE), ADD, load8u(), AND, SUB,
      AND, ADD, set(NODE),
      br(0),
      END, END,
      get(RAW), get(I), get(STRIDE), MUL, ADD, set(A),
      get(A), get(A), loadF64(), get(VALUE), get(NODE), i32(3), SHL, ADD, loadF64(), F64_ADD, storeF64(),
    ]),
    END,
  ];
  return functionBody([[7, I32]], body);
}

const ROWS_LOOPS: readonly [keyof Kernels, boolean, boolean, boolean][] = [
  ['rootRows', true, false, false],
  ['rootRowsWithHessians', true, true, false],
  ['nodeRows', false, false, true],
  ['nodeRowsWithHessians', false, true, true],
];

/**
 * The module's bytes: six function types (the rows loops' eleven i32 parameters, binValues'
 * five, partitionRows' seven and an i32 result, addToScores' five and an f64, the array loops'
 * three, squaredErrorGradients' four and an f64 result), the imported shared memory
 * `env.memory`, eleven functions (addTreeScores has the rows loops' type).
 */
function moduleBytes(): Uint8Array {
  const i32s = (k: number): Code => vec(new Array<Code>(k).fill([I32]));
  const type = section(1, vec([[0x60, ...i32s(PARAMS), 0], [0x60, ...i32s(5), 0], [0x60, ...i32s(7), 1, I32], [0x60, ...uleb(6), ...new Array<number>(5).fill(I32), F64, 0], [0x60, ...i32s(3), 0], [0x60, ...i32s(4), 1, F64]]));
  // Shared memory import: flags 3 = has maximum, shared; at least 1 page, at most 65536 (4 GiB).
  const imports = section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(1), ...uleb(MAX_PAGES)]]));
  const funcs = section(3, vec([...ROWS_LOOPS.map(() => [0]), [1], [2], [3], [4], [4], [5], [0]]));
  const names = [...ROWS_LOOPS.map(([n]) => n), 'binValues', 'partitionRows', 'addToScores', 'addF64', 'subF64', 'squaredErrorGradients', 'addTreeScores'];
  const exports = section(7, vec(names.map((n, k) => [...name(n), 0x00, ...uleb(k)])));
  const code = section(10, vec([...ROWS_LOOPS.map(([, root, hessians, counts]) => rowsLoop(root, hessians, counts)), binLoop(), partitionLoop(), scoresLoop(), arrayLoop(false), arrayLoop(true), gradientsLoop(), treeScoresLoop()]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imports, ...funcs, ...exports, ...code]);
}

const PAGE = 65536;
const MAX_PAGES = 65536;

let compiled: object | null = null;
let lastMemory: SharedMemory | null = null;
let lastKernels: Kernels | null = null;

/** The loops on `memory` (compiled once per thread, instantiated once per memory in a row). */
export function wasmKernels(memory: SharedMemory): Kernels {
  if (memory !== lastMemory || lastKernels === null) {
    compiled ??= new WebAssembly.Module(moduleBytes());
    lastKernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as Kernels;
    lastMemory = memory;
  }
  return lastKernels;
}

/**
 * One shared WebAssembly memory and a bump allocator of typed arrays in it. Arrays that the
 * kernels read or write must live here; a kernel is called with their `byteOffset`s. The memory
 * is shared (its buffer a SharedArrayBuffer), so the arrays and the memory can be posted to worker
 * threads without copying, and growing it never detaches an array made before.
 */
export class KernelMemory {
  readonly memory: SharedMemory;
  private used = 0;
  private released = false;

  /**
   * Takes an idle memory of this thread when there is one (see {@link release}), else makes one.
   * @param bytes what the first allocations are expected to take (the memory grows beyond it when needed).
   */
  constructor(bytes: number) {
    const pages = Math.max(1, Math.ceil(bytes / PAGE));
    if (pages > MAX_PAGES) throw new RangeError(`gradient boosting needs ${Math.ceil(bytes / 2 ** 20)} MiB of working memory; at most 4096 MiB fit`);
    const reused = idleMemories.pop();
    if (reused === undefined) this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    else {
      const have = reused.buffer.byteLength / PAGE;
      if (have < pages) reused.grow(pages - have);
      this.memory = reused;
    }
  }

  /**
   * Hands the memory back for a later KernelMemory of this thread to reuse (its contents are not
   * cleared: every user writes what it reads). V8 does not count a WebAssembly memory towards
   * its garbage collector's pressure, so memories left to it pile up: 400 small fits in a row
   * held 600 MiB until a collection. Memories over 32 MiB are not kept (a big fit's would stay
   * resident); nothing made from this one may be used afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.memory.buffer.byteLength <= MAX_IDLE_BYTES && idleMemories.length < MAX_IDLE) idleMemories.push(this.memory);
  }

  /** Bytes the allocations below take, each aligned to a cache line. */
  static size(lengths: readonly [bytesPerElement: number, length: number][]): number {
    return lengths.reduce((s, [b, len]) => s + align(b * len), 0);
  }

  float64(length: number): Float64Array {
    const at = this.take(length * 8);
    // The buffer read after take(), which may have grown the memory.
    return new Float64Array(this.memory.buffer, at, length);
  }

  float32(length: number): Float32Array {
    const at = this.take(length * 4);
    return new Float32Array(this.memory.buffer, at, length);
  }

  int32(length: number): Int32Array {
    const at = this.take(length * 4);
    return new Int32Array(this.memory.buffer, at, length);
  }

  uint8(length: number): Uint8Array {
    const at = this.take(length);
    return new Uint8Array(this.memory.buffer, at, length);
  }

  private take(bytes: number): number {
    const at = this.used;
    const end = at + align(bytes);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const more = Math.ceil((end - have) / PAGE);
      if (have / PAGE + more > MAX_PAGES) throw new RangeError('gradient boosting working memory is over 4096 MiB');
      this.memory.grow(more);
    }
    this.used = end;
    return at;
  }
}

const align = (bytes: number): number => Math.ceil(bytes / 64) * 64;

/** Memories released on this thread, for reuse (see {@link KernelMemory.release}). */
const idleMemories: SharedMemory[] = [];
const MAX_IDLE = 4;
const MAX_IDLE_BYTES = 32 * 2 ** 20;
