import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { jobThreads } from '../../src/training/job-threads.ts';
import { queueOptions } from '../../src/training/queue.ts';

void describe('threads a training job builds trees on by default', { timeout: 30_000 }, () => {
  void test('a serving process keeps a core for requests and shares the rest among its jobs', () => {
    assert.equal(jobThreads({ serving: true, concurrentJobs: 1, cores: 8 }), 7);
    assert.equal(jobThreads({ serving: true, concurrentJobs: 2, cores: 8 }), 3);
    assert.equal(jobThreads({ serving: true, concurrentJobs: 1, cores: 2 }), 1);
    // Never below one thread, even on one core or with more jobs than cores.
    assert.equal(jobThreads({ serving: true, concurrentJobs: 1, cores: 1 }), 1);
    assert.equal(jobThreads({ serving: true, concurrentJobs: 6, cores: 4 }), 1);
  });

  void test('a training-only process (modelplane worker) shares every core', () => {
    assert.equal(jobThreads({ serving: false, concurrentJobs: 1, cores: 8 }), 8);
    assert.equal(jobThreads({ serving: false, concurrentJobs: 3, cores: 8 }), 2);
    assert.equal(jobThreads({ serving: false, concurrentJobs: 0, cores: 2 }), 2);
  });

  void test('TRAINING_THREADS wins', () => {
    assert.equal(jobThreads({ configured: 6, serving: true, concurrentJobs: 4, cores: 2 }), 6);
    assert.equal(loadConfig({ TRAINING_THREADS: '6' }).trainingThreads, 6);
    assert.equal(loadConfig({}).trainingThreads, undefined);
    assert.throws(() => loadConfig({ TRAINING_THREADS: '0' }), /TRAINING_THREADS/);
  });

  void test("the queue's default is a serving process's share; an explicit value is kept", () => {
    const cores = os.availableParallelism();
    assert.equal(queueOptions(loadConfig({ TRAINING_WORKERS: '1' })).jobThreads, Math.max(1, cores - 1));
    assert.equal(queueOptions(loadConfig({ TRAINING_WORKERS: '1' }), { workers: 2 }).jobThreads, Math.max(1, Math.floor((cores - 1) / 2)));
    assert.equal(queueOptions(loadConfig({ TRAINING_THREADS: '5' })).jobThreads, 5);
    assert.equal(queueOptions(loadConfig({}), { jobThreads: 3 }).jobThreads, 3);
  });
});
