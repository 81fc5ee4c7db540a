/**
 * Worker-thread entry of the random forest: receives the shared training data once (workerData),
 * then grows one tree per task message and transfers it back, with progress messages while a tree
 * grows. See `forest.ts`.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { WORKER_PROGRESS_MS, growForestTree, type ForestWorkerInit, type ForestWorkerReply, type ForestWorkerTask } from './forest.ts';

const init = workerData as ForestWorkerInit;
const port = parentPort;
if (port === null) throw new Error('forest-worker.ts must run as a worker thread');

port.on('message', (task: ForestWorkerTask) => {
  let reply: ForestWorkerReply;
  try {
    let last = performance.now();
    const tree = growForestTree(init.data, init.grow, init.bootstrap, task.seed, (settled, total) => {
      const now = performance.now();
      if (now - last < WORKER_PROGRESS_MS) return;
      last = now;
      port.postMessage({ kind: 'progress', index: task.index, fraction: settled / total } satisfies ForestWorkerReply);
    });
    reply = { kind: 'tree', index: task.index, tree };
    // The tree's arrays are freshly allocated (never shared), so they can be moved, not copied.
    const buffers = [tree.feature, tree.threshold, tree.left, tree.right, tree.missingGoesLeft, tree.value, tree.cover].map(
      (a) => a.buffer as ArrayBuffer,
    );
    port.postMessage(reply, buffers);
  } catch (err) {
    reply = { kind: 'error', index: task.index, message: err instanceof Error ? err.message : String(err) };
    port.postMessage(reply);
  }
});
