/**
 * The inference thread's side (see `inference-thread.ts`): holds onnxruntime sessions and runs them
 * on request, so that `session.run`, which onnxruntime-node executes synchronously on the calling
 * thread, never blocks the HTTP event loop.
 */
import { parentPort } from 'node:worker_threads';
import { onnxRuntime, type InputData, type Output, type Session } from '../onnx/runtime.ts';
import type { InferenceReply, InferenceRequest } from './inference-thread.ts';

const port = parentPort;
if (port === null) throw new Error('inference-worker must run in a worker thread');

const sessions = new Map<number, { session: Session; run: (data: InputData, dims: readonly number[]) => Promise<Output> }>();

async function handle(msg: InferenceRequest): Promise<InferenceReply> {
  switch (msg.op) {
    case 'load': {
      const { session, fallback } = await onnxRuntime.load(msg.bytes, msg.options);
      sessions.set(msg.session, { session, run: session.runner(msg.inputName, msg.double ? 'float64' : 'float32', msg.fetch) });
      return { id: msg.id, ok: true, device: session.device, ...(fallback === undefined ? {} : { fallback }) };
    }
    case 'run': {
      const s = sessions.get(msg.session);
      if (s === undefined) throw new Error(`session ${msg.session} is not loaded in the inference thread`);
      const out = await s.run(msg.input, msg.dims);
      return { id: msg.id, ok: true, data: out.data, dims: out.dims };
    }
    case 'release': {
      const s = sessions.get(msg.session);
      sessions.delete(msg.session);
      if (s !== undefined) await s.session.release();
      return { id: msg.id, ok: true };
    }
  }
}

port.on('message', (msg: InferenceRequest) => {
  handle(msg).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies InferenceReply),
  );
});
