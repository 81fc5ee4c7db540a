import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import { reduceHeap, reduceHeapWhenQuiet, type HeapReduction } from '../../src/util/heap.ts';

/** V8 12 (Node 22) and later honour the memory-reducing flavour of a collection; Node 20's V8 11 runs a plain one. */
const V8_MAJOR = Number(process.versions.v8.split('.')[0]);

function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

const REDUCTION: HeapReduction = { rssBefore: 2, rssAfter: 1, ms: 0 };

/** Awaits a pending reduction; its timers do not keep a process alive, so a timer here does meanwhile. */
async function settled<T>(done: Promise<T>): Promise<T> {
  const hold = setInterval(() => undefined, 1000);
  try {
    return await done;
  } finally {
    clearInterval(hold);
  }
}

void describe('reduceHeap', { timeout: 60_000 }, () => {
  void test('collects what nobody holds and shrinks the young generation grown before', { skip: V8_MAJOR < 12 && `V8 ${process.versions.v8} runs no memory-reducing collection` }, () => {
    // Objects that survive scavenges make V8 grow the young generation.
    const kept: unknown[] = [];
    for (let i = 0; i < 400_000; i++) kept.push({ i, list: [i] });
    const grown = newSpaceBytes();
    const usedBefore = process.memoryUsage().heapUsed;
    assert.ok(kept.length > 0);
    kept.length = 0;
    const r = reduceHeap();
    assert.ok(newSpaceBytes() < grown, `young generation ${grown} -> ${newSpaceBytes()} bytes`);
    assert.ok(process.memoryUsage().heapUsed < usedBefore, 'the dropped objects are collected');
    assert.ok(r.rssBefore > 0 && r.rssAfter > 0 && r.ms >= 0);
    assert.equal((globalThis as { gc?: unknown }).gc, undefined, "V8's gc stays out of the application's global scope");
  });

  void test('runs on every V8 and leaves gc out of the global scope', () => {
    const r = reduceHeap();
    assert.ok(r.rssAfter > 0);
    reduceHeap();
    assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  });
});

void describe('reduceHeapWhenQuiet', { timeout: 60_000 }, () => {
  void test('waits for a quiet window, then reduces once', async () => {
    const shares = [0.9, 0.6, 0.2, 0.0];
    let looks = 0;
    let reductions = 0;
    const pending = reduceHeapWhenQuiet({
      windowMs: 1,
      utilization: () => shares[looks++] ?? 0,
      reduce: () => {
        reductions += 1;
        return REDUCTION;
      },
    });
    assert.equal(await settled(pending.done), REDUCTION);
    assert.equal(looks, 3, 'the third window was the first quiet one');
    assert.equal(reductions, 1);
  });

  void test('gives up after its attempts while the event loop stays busy', async () => {
    let looks = 0;
    const pending = reduceHeapWhenQuiet({
      windowMs: 1,
      attempts: 4,
      utilization: () => {
        looks += 1;
        return 0.7;
      },
      reduce: () => assert.fail('a busy process is not collected'),
    });
    assert.equal(await settled(pending.done), undefined);
    assert.equal(looks, 4);
  });

  void test('a cancelled reduction never runs', async () => {
    const pending = reduceHeapWhenQuiet({ windowMs: 60_000, utilization: () => 0, reduce: () => assert.fail('cancelled') });
    pending.cancel();
    assert.equal(await settled(pending.done), undefined);
  });

  void test('a collection that throws rejects instead of throwing from a timer', async () => {
    const pending = reduceHeapWhenQuiet({
      windowMs: 1,
      utilization: () => 0,
      reduce: () => {
        throw new Error('no gc here');
      },
    });
    await assert.rejects(settled(pending.done), /no gc here/);
  });

  void test("by default it measures the event loop's own utilization", async () => {
    const pending = reduceHeapWhenQuiet({ windowMs: 20, reduce: () => REDUCTION });
    // An idle test process: the first or a later window is quiet.
    assert.equal(await settled(pending.done), REDUCTION);
  });
});
