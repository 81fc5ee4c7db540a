/**
 * Worker-thread entry of histogram gradient boosting (see `HistogramWorkers` in `gbdt.ts`). It
 * sleeps in `Atomics.wait` on the task number of the shared control array; on each new task it
 * reads what arrived on its channel (the shared inputs, new histogram buffers), then claims and
 * builds features of the task's histogram until none is left. It never returns to its event loop:
 * the calling thread ends it with the Stop flag and `terminate()`.
 */

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Ctl, accumulateHistogram, claimFeature, type GbdtWorkerInit, type GbdtWorkerMessage, type HistogramInputs } from './gbdt.ts';

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
  Atomics.wait(control, Ctl.Seq, seen);
  seen = Atomics.load(control, Ctl.Seq);
  if (Atomics.load(control, Ctl.Stop) !== 0) break;
  drain();
  const hist = hists[control[Ctl.Hist]!];
  // Without the inputs or the buffer (not possible: both are posted before the task), leave the
  // task to the calling thread.
  if (inputs === null || hist === undefined) continue;
  const { p } = inputs;
  const gOff = control[Ctl.GOff]!;
  const s = control[Ctl.Start]!;
  const e = control[Ctl.End]!;
  for (let f = claimFeature(control, seen, p); f >= 0; f = claimFeature(control, seen, p)) {
    try {
      accumulateHistogram(inputs, hist, gOff, s, e, f, f + 1);
    } catch (err) {
      if (Atomics.exchange(control, Ctl.Failed, 1) === 0) {
        port.postMessage({ kind: 'error', message: err instanceof Error ? err.message : String(err) } satisfies GbdtWorkerMessage);
      }
    }
    Atomics.add(control, Ctl.WorkerFeatures, 1);
    if (Atomics.add(control, Ctl.Finished, 1) + 1 === p) Atomics.notify(control, Ctl.Finished);
  }
}
