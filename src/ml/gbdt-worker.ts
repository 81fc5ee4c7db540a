/**
 * Worker-thread entry of histogram gradient boosting (see `GrowWorkers` in `gbdt.ts`). It sleeps
 * in `Atomics.wait` on the task number of the shared control array; on each new task it reads what
 * arrived on its channel (the shared inputs, new histogram buffers), then claims and does units of
 * the task (histogram units, partition chunks) until none is left. It never returns to its
 * event loop: the calling thread ends it with the Stop flag and `terminate()`.
 */

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Ctl, SPIN_CHECKS, TASK_HISTOGRAM, claimUnit, runUnit, type GbdtWorkerInit, type GbdtWorkerMessage, type HistogramInputs } from './gbdt.ts';

const { control, port } = workerData as GbdtWorkerInit;
let inputs: HistogramInputs | null = null;
const hists: Float64Array[] = [];

/** Takes in every message waiting on the channel. */
function drain(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message as GbdtWorkerMessage;
    if (msg.kind === 'inputs') inputs = msg.inputs;
    else if (msg.kind === 'hist') hists[msg.id] = msg.hist;
  }
}

// Loaded: the calling thread waits for this before its first tree.
parentPort?.postMessage('ready');
let seen = 0;
for (;;) {
  // The next task usually follows within microseconds: look for it a while before sleeping.
  for (let spin = 0; spin < SPIN_CHECKS && Atomics.load(control, Ctl.Seq) === seen; spin++);
  Atomics.wait(control, Ctl.Seq, seen);
  seen = Atomics.load(control, Ctl.Seq);
  if (Atomics.load(control, Ctl.Stop) !== 0) break;
  drain();
  // Without the inputs (not possible: they are posted before the first task), leave the task to
  // the calling thread. The task's fields may belong to a newer task by now; then no unit can be
  // claimed under this task number and nothing is done.
  if (inputs === null) continue;
  // Read atomically: a newer task's values are then seen only with its claim word closed or set.
  const units = Atomics.load(control, Ctl.Units);
  const histogram = Atomics.load(control, Ctl.Kind) === TASK_HISTOGRAM;
  const hist = histogram ? hists[Atomics.load(control, Ctl.Hist)] : undefined;
  if (histogram && hist === undefined) continue;
  for (let u = claimUnit(control, seen, units); u >= 0; u = claimUnit(control, seen, units)) {
    try {
      runUnit(inputs, control, hist, u);
    } catch (err) {
      if (Atomics.exchange(control, Ctl.Failed, 1) === 0) {
        port.postMessage({ kind: 'error', message: err instanceof Error ? err.message : String(err) } satisfies GbdtWorkerMessage);
      }
    }
    if (histogram) Atomics.add(control, Ctl.WorkerUnits, 1);
    if (Atomics.add(control, Ctl.Finished, 1) + 1 === units) Atomics.notify(control, Ctl.Finished);
  }
}
