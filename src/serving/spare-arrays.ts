/**
 * Spare typed arrays, handed out again instead of allocating new ones. Typed arrays over 64 bytes
 * live outside the JS heap: allocated afresh per request, they would be freed only when the
 * collector gets to them, and under load that garbage, not live data, is what the process's memory
 * grows with. Used for the numeric reader's number arrays and for the models' row buffers.
 */
export class SpareArrays<A extends Float32Array | Float64Array> {
  private readonly spare: A[] = [];
  private values = 0;

  /**
   * @param maxArrays most arrays kept
   * @param maxValues most values kept in all (an array longer than this is never kept)
   * @param fits whether a spare array of `length` values may serve a request for `wanted`
   */
  constructor(
    private readonly maxArrays: number,
    private readonly maxValues: number,
    private readonly fits: (length: number, wanted: number) => boolean,
  ) {}

  /** A spare array that fits `wanted` values (the most recently given back first), if any. */
  take(wanted: number): A | undefined {
    const spare = this.spare;
    for (let k = spare.length - 1; k >= 0; k--) {
      const a = spare[k]!;
      if (!this.fits(a.length, wanted)) continue;
      spare.splice(k, 1);
      this.values -= a.length;
      return a;
    }
    return undefined;
  }

  /**
   * Keeps `a`, which nothing reads any more, for a later {@link take}; the oldest spares make room.
   * An array given back twice is kept once (held twice, it would be handed to two takers).
   */
  give(a: A): void {
    if (a.length > this.maxValues || this.spare.includes(a)) return;
    while (this.spare.length >= this.maxArrays || this.values + a.length > this.maxValues) this.values -= this.spare.shift()!.length;
    this.spare.push(a);
    this.values += a.length;
  }
}
