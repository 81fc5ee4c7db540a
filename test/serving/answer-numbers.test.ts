/**
 * Numbers in answers are written by `num` (loaded-model.ts), which avoids V8's number-to-string
 * cache; its text must be exactly what `String` gives (and `null` where JSON has no number).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng } from '../../src/util/random.ts';
import { num } from '../../src/serving/loaded-model.ts';

const reference = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

void describe('num', () => {
  test('writes what String writes, for doubles, float32 values, integers and the edge cases', () => {
    const rng = createRng(11);
    const f32 = new Float32Array(1);
    const bits = new Float64Array(1);
    const words = new Uint32Array(bits.buffer);
    const values: number[] = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 1e-6, 5e-324, Number.MAX_VALUE, -Number.MIN_VALUE, 2 ** 53, 2 ** 31, -(2 ** 31) - 1, 0.8999999761581421];
    for (let i = 0; i < 20_000; i++) {
      const u = rng.next();
      f32[0] = u;
      values.push(u, f32[0], Math.round(u * 1e6) / 1e3, (u - 0.5) * 10 ** Math.floor(rng.next() * 60 - 30));
      // Any bit pattern (NaN and infinities among them).
      words[0] = Math.floor(rng.next() * 2 ** 32);
      words[1] = Math.floor(rng.next() * 2 ** 32);
      values.push(bits[0]!);
    }
    for (const v of values) assert.equal(num(v), reference(v), `for ${v}`);
  });

  test('NaN and the infinities become null (JSON has no such numbers)', () => {
    assert.equal(num(Number.NaN), 'null');
    assert.equal(num(Number.POSITIVE_INFINITY), 'null');
    assert.equal(num(Number.NEGATIVE_INFINITY), 'null');
  });
});
