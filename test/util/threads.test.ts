import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { describe, test } from 'node:test';
import { spawnWorker } from '../../src/util/threads.ts';

void describe('lowerThreadPriority', { timeout: 60_000 }, () => {
  void test('lowers the calling thread only; threads it starts inherit it', { skip: !existsSync('/proc/thread-self') && 'needs Linux /proc/thread-self' }, async () => {
    const before = os.getPriority();
    const worker = spawnWorker(import.meta.url, './fixtures/lower-priority', null);
    const report = await new Promise<{ set: number; nice: number; childNice: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.equal(report.set, Math.max(10, before));
    assert.equal(report.nice, report.set);
    assert.equal(report.childNice, report.set, 'a thread started afterwards inherits the priority');
    assert.equal(os.getPriority(), before, 'the process (main thread) keeps its priority');
  });
});
