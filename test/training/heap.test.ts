/**
 * collectGarbage (training/heap.ts): the pipeline's collection before the export check frees what
 * is unreachable, and leaves no `gc` global behind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import vm from 'node:vm';
import { collectGarbage } from '../../src/training/heap.ts';

void describe('collectGarbage', { timeout: 60_000 }, () => {
  void test('an unreachable array is collected, and new contexts get no gc global', async () => {
    let collected = false;
    let resolve: () => void = () => undefined;
    const finalized = new Promise<void>((r) => (resolve = r));
    const registry = new FinalizationRegistry(() => {
      collected = true;
      resolve();
    });
    ((): void => {
      registry.register(new Float64Array(1 << 20), 'trees');
    })();
    collectGarbage();
    await finalized;
    assert.equal(collected, true);
    assert.equal(vm.runInNewContext('typeof gc'), 'undefined');
    collectGarbage();
  });
});
