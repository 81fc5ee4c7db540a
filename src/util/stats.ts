/**
 * Statistics helpers shared by dataset statistics, training references, explanations and drift:
 * sorting present values and reading quantiles of them. Pure functions over typed arrays.
 */

/**
 * Quantile `p` of ascending `sorted` values (no `NaN`), interpolating linearly between the two
 * nearest order statistics at position `(n - 1) p` (the default of numpy and pandas).
 */
export function quantileSorted(sorted: Float64Array, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (h - lo) * (b - a);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Present values from which float32 ones are sorted on 32-bit keys (below, the built-in sort is faster). */
const FLOAT32_RADIX_MIN = 1024;

/**
 * The non-`NaN` values of `values`, ascending. Large inputs use an LSD radix sort on the IEEE-754
 * bits (4 passes of 16 bits), about three times faster than `Float64Array.prototype.sort` on a
 * few hundred thousand values, which dominates the cost of statistics on big uploads. Values that
 * float32 holds exactly (model inputs: the prediction log's rows, drift windows) are sorted on
 * their 32-bit patterns from a thousand values up, about two and a half times faster than the
 * built-in sort at ten thousand.
 */
export function sortedPresentValues(values: Float64Array): Float64Array {
  const n = values.length;
  let count = 0;
  let float32 = true;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    count++;
    if (float32 && Math.fround(v) !== v) float32 = false;
  }
  const out = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i] ?? Number.NaN;
    if (!Number.isNaN(v)) out[k++] = v;
  }
  if (float32 && count >= FLOAT32_RADIX_MIN) {
    const sorted = sortFloat32(Float32Array.from(out), new Uint32Array(count));
    for (let i = 0; i < count; i++) out[i] = sorted[i]!;
    return out;
  }
  if (count < 65536 || !LITTLE_ENDIAN) return out.sort();
  // Map each double to an unsigned 64-bit key with the same order: flip all bits of negatives,
  // only the sign bit of positives. Word 2i is the low half, 2i+1 the high half (little-endian).
  let from = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) {
    const hi = from[2 * i + 1] ?? 0;
    if (hi & 0x80000000) {
      from[2 * i + 1] = ~hi;
      from[2 * i] = ~(from[2 * i] ?? 0);
    } else {
      from[2 * i + 1] = hi | 0x80000000;
    }
  }
  let to = new Uint32Array(2 * count);
  const bins = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1;
    const shift = (pass & 1) * 16;
    bins.fill(0);
    for (let i = 0; i < count; i++) {
      const d = ((from[2 * i + word] ?? 0) >>> shift) & 0xffff;
      bins[d] = (bins[d] ?? 0) + 1;
    }
    // All keys share this digit: the pass would not move anything.
    if (bins[((from[word] ?? 0) >>> shift) & 0xffff] === count) continue;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = bins[d] ?? 0;
      bins[d] = sum;
      sum += c;
    }
    for (let i = 0; i < count; i++) {
      const lo = from[2 * i] ?? 0;
      const hi = from[2 * i + 1] ?? 0;
      const d = ((word === 0 ? lo : hi) >>> shift) & 0xffff;
      const j = bins[d] ?? 0;
      bins[d] = j + 1;
      to[2 * j] = lo;
      to[2 * j + 1] = hi;
    }
    const t = from;
    from = to;
    to = t;
  }
  for (let i = 0; i < count; i++) {
    const hi = from[2 * i + 1] ?? 0;
    if (hi & 0x80000000) {
      from[2 * i + 1] = hi & 0x7fffffff;
    } else {
      from[2 * i + 1] = ~hi;
      from[2 * i] = ~(from[2 * i] ?? 0);
    }
  }
  return new Float64Array(from.buffer);
}

/**
 * Sorts float32 values without NaN ascending, in place, and returns them: LSD radix on their 32-bit
 * patterns (3 passes of 11 bits, a pass skipped when every key shares its digit), each pattern
 * mapped to an unsigned key of the same order (negatives: all bits flipped, so -0 comes before 0;
 * others: sign bit set). About ten times as fast as `Float32Array.prototype.sort` on 200,000
 * values. `scratch` is at least `values.length` long.
 */
export function sortFloat32(values: Float32Array, scratch: Uint32Array): Float32Array {
  const count = values.length;
  if (count === 0) return values;
  const keys = new Uint32Array(values.buffer, values.byteOffset, count);
  const counts = new Int32Array(3 * 2048);
  for (let i = 0; i < count; i++) {
    const bits = keys[i]!;
    const key = (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
    keys[i] = key;
    counts[key & 0x7ff]!++;
    counts[2048 + ((key >>> 11) & 0x7ff)]!++;
    counts[4096 + (key >>> 22)]!++;
  }
  let from = keys;
  let to = scratch.subarray(0, count);
  for (let pass = 0; pass < 3; pass++) {
    const base = pass * 2048;
    const shift = pass * 11;
    if (counts[base + ((from[0]! >>> shift) & 0x7ff)] === count) continue;
    let sum = 0;
    for (let d = 0; d < 2048; d++) {
      const c = counts[base + d]!;
      counts[base + d] = sum;
      sum += c;
    }
    for (let i = 0; i < count; i++) {
      const key = from[i]!;
      to[counts[base + ((key >>> shift) & 0x7ff)]!++] = key;
    }
    [from, to] = [to, from];
  }
  if (from !== keys) keys.set(from);
  for (let i = 0; i < count; i++) {
    const key = keys[i]!;
    keys[i] = (key & 0x80000000 ? key & 0x7fffffff : ~key) >>> 0;
  }
  return values;
}
