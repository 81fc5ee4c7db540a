/**
 * The inference thread's side (see `inference-thread.ts`): holds onnxruntime sessions and runs them
 * on request, so that `session.run`, which onnxruntime-node executes synchronously on the calling
 * thread, never blocks the HTTP event loop.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { InferenceReply, InferenceRequest } from './inference-thread.ts';

const port = parentPort;
if (port === null) throw new Error('inference-worker must run in a worker thread');

const sessions = new Map<number, { session: ort.InferenceSession; inputName: string; fetch: string; type: 'float32' | 'float64' }>();

async function handle(msg: InferenceRequest): Promise<InferenceReply> {
  switch (msg.op) {
    case 'load': {
      let device: 'cpu' | 'cuda' = 'cpu';
      let fallback: string | undefined;
      let session: ort.InferenceSession | undefined;
      if (msg.device === 'cuda') {
        try {
          session = await ort.InferenceSession.create(msg.bytes, { ...msg.options, executionProviders: ['cuda'] });
          device = 'cuda';
        } catch (err) {
          fallback = err instanceof Error ? err.message : String(err);
        }
      }
      session ??= await ort.InferenceSession.create(msg.bytes, { ...msg.options, executionProviders: ['cpu'] });
      sessions.set(msg.session, { session, inputName: msg.inputName, fetch: msg.fetch, type: msg.double ? 'float64' : 'float32' });
      return { id: msg.id, ok: true, device, ...(fallback === undefined ? {} : { fallback }) };
    }
    case 'run': {
      const s = sessions.get(msg.session);
      if (s === undefined) throw new Error(`session ${msg.session} is not loaded in the inference thread`);
      const result = await s.session.run({ [s.inputName]: new ort.Tensor(s.type, msg.input, msg.dims) }, [s.fetch]);
      const t = result[s.fetch];
      if (t === undefined) throw new Error(`the model returned no output '${s.fetch}'`);
      return { id: msg.id, ok: true, data: t.data as InferenceData, dims: t.dims };
    }
    case 'release': {
      const s = sessions.get(msg.session);
      sessions.delete(msg.session);
      if (s !== undefined) await s.session.release();
      return { id: msg.id, ok: true };
    }
  }
}

type InferenceData = Float32Array | Float64Array | BigInt64Array | Int32Array | string[];

port.on('message', (msg: InferenceRequest) => {
  handle(msg).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies InferenceReply),
  );
});
