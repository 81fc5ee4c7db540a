/**
 * A small seeded pseudo-random generator shared by every trainer, so that a run with the same seed
 * gives the same splits, bootstrap samples and initialisations on every platform.
 *
 * The core is xoshiro128** (32-bit state words, good statistical quality, only 32-bit integer
 * arithmetic, which JavaScript does exactly through `Math.imul` and `>>> 0`). Its 128-bit state is
 * expanded from the user's seed with splitmix32, so nearby seeds (0, 1, 2...) give unrelated streams.
 */

/** A seeded random stream. All methods advance the same underlying state. */
export interface Rng {
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** Uniform integer in [0, n); `n` must be a positive integer below 2^32. Unbiased. */
  nextInt(n: number): number;
  /** Standard normal draw (mean 0, variance 1). */
  normal(): number;
  /** Fisher-Yates shuffle of `a` in place. */
  shuffleInPlace(a: Int32Array | Uint32Array): void;
}

const TWO_POW_32 = 4294967296;

/** One splitmix32 step: returns the next seed word and the mixed output. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  z = (z ^ (z >>> 15)) >>> 0;
  return [next, z];
}

class Xoshiro128 implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Second Box-Muller draw kept for the next `normal()` call (NaN = none cached). */
  private spare = Number.NaN;

  constructor(seed: number) {
    // Fold the seed (which may exceed 32 bits or be fractional) into a 32-bit word.
    let st = (Math.trunc(seed) ^ Math.trunc(seed / TWO_POW_32)) >>> 0;
    let out: number;
    [st, out] = splitmix32(st);
    this.s0 = out;
    [st, out] = splitmix32(st);
    this.s1 = out;
    [st, out] = splitmix32(st);
    this.s2 = out;
    [, out] = splitmix32(st);
    this.s3 = out;
    // xoshiro's only bad state is all zeros; splitmix practically never yields it, guard anyway.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next raw 32-bit unsigned output. */
  private nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(s1, 5) >>> 0;
    const rotated = ((r << 7) | (r >>> 25)) >>> 0;
    const result = Math.imul(rotated, 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = ((this.s3 << 11) | (this.s3 >>> 21)) >>> 0;
    return result;
  }

  next(): number {
    return this.nextU32() / TWO_POW_32;
  }

  nextInt(n: number): number {
    if (!(n >= 1) || n > TWO_POW_32 || !Number.isInteger(n)) {
      throw new RangeError(`nextInt: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Rejection sampling: discard the top partial block of 2^32 so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let v = this.nextU32();
    while (v >= limit) v = this.nextU32();
    return v % n;
  }

  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    // Box-Muller; 1 - next() lies in (0, 1] so the logarithm is finite.
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  shuffleInPlace(a: Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = a[i]!;
      a[i] = a[j]!;
      a[j] = tmp;
    }
  }
}

/**
 * Creates a seeded random stream. The same seed always yields the same sequence.
 * @param seed any finite number; it is folded to 32 bits.
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`createRng: seed must be finite, got ${seed}`);
  return new Xoshiro128(seed);
}
