import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
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

void describe('lowerProcessPriority', { timeout: 60_000 }, () => {
  void test('lowers every thread of the process, those alive and those started afterwards', { skip: !existsSync('/proc/self/task') && 'needs Linux /proc/self/task' }, async () => {
    const before = os.getPriority();
    const child = fork(new URL('./fixtures/lower-process-priority.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const report = await new Promise<{ set: number; early: number; late: number; nices: number[] }>((resolve, reject) => {
      child.once('message', resolve as (m: unknown) => void);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before reporting`)));
    });
    assert.equal(report.set, Math.max(10, before));
    assert.equal(report.early, report.set, 'a thread alive before is lowered');
    assert.equal(report.late, report.set, 'a thread started afterwards inherits it');
    assert.ok(report.nices.length >= 4, `threads seen: ${report.nices.length}`);
    assert.deepEqual([...new Set(report.nices)], [report.set], `every thread of the process: ${report.nices.join(', ')}`);
    assert.equal(os.getPriority(), before, 'the parent keeps its priority');
  });
});
