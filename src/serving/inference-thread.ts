/**
 * One worker thread per process that runs every onnxruntime session of serving.
 *
 * onnxruntime-node runs `session.run` synchronously on the thread that calls it (after one
 * `setImmediate`), so in the HTTP process every inference would block the event loop: requests
 * would wait behind a 1000-row batch, and the model's arithmetic would share one core with JSON
 * parsing, auth and metrics. Here the sessions live in a thread of their own; the event loop only
 * posts input rows and receives the output tensor. While a batch runs, the event loop keeps
 * accepting requests, which form the next batch (see `batcher.ts`).
 *
 * If the thread dies (it should not: onnxruntime errors are caught and returned), the calls in
 * flight are rejected and the next call starts a new thread; runtimes reload their session there
 * (`ThreadSession` keeps the model bytes for that).
 */
import type { Worker } from 'node:worker_threads';
import type { OutputData, SessionOptions } from '../onnx/runtime.ts';
import { spawnWorker } from '../util/threads.ts';

/** Messages to the thread. */
export type InferenceRequest =
  | {
      readonly op: 'load';
      readonly id: number;
      readonly session: number;
      readonly bytes: Uint8Array;
      readonly options: SessionOptions;
      readonly inputName: string;
      readonly fetch: string;
      readonly double: boolean;
    }
  | { readonly op: 'run'; readonly id: number; readonly session: number; readonly input: Float32Array | Float64Array; readonly dims: readonly number[] }
  | { readonly op: 'release'; readonly id: number; readonly session: number };

/** Answers from the thread. */
export type InferenceReply =
  | { readonly id: number; readonly ok: true; readonly device?: 'cpu' | 'cuda'; readonly fallback?: string; readonly data?: OutputData; readonly dims?: readonly number[] }
  | { readonly id: number; readonly ok: false; readonly error: string };

type OkReply = Extract<InferenceReply, { ok: true }>;

/** Distributes the `Omit` over the request union (the plain one would merge the variants). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Waiter {
  readonly resolve: (reply: OkReply) => void;
  readonly reject: (err: Error) => void;
}

/** The thread and its calls in flight. */
export class InferenceThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  private nextSession = 1;
  /** Increases whenever the thread stops (closed or lost); sessions loaded in an older generation are gone. */
  generation = 0;

  /** A fresh session id (unique for the life of the process). */
  sessionId(): number {
    return this.nextSession++;
  }

  /** Sends one request and resolves with the thread's answer. */
  call(request: WithoutId<InferenceRequest>): Promise<OkReply> {
    const worker = this.ensure();
    const id = this.nextId++;
    return new Promise<OkReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // The thread only keeps the process alive while it owes an answer.
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ ...request, id });
    });
  }

  /** Stops the thread; calls in flight are rejected. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w === undefined) return;
    this.generation++;
    // Fail what this thread owes before waiting: calls made meanwhile go to the next thread.
    this.failAll(new Error('inference thread closed'));
    await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = spawnWorker(import.meta.url, './inference-worker', null);
    worker.unref();
    worker.on('message', (reply: InferenceReply) => {
      const w = this.waiting.get(reply.id);
      if (w === undefined) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.ok) w.resolve(reply);
      else w.reject(new Error(reply.error));
    });
    const lost = (why: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.generation++;
      this.failAll(new Error(`inference thread stopped: ${why}`));
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiters) w.reject(err);
  }
}

let shared: InferenceThread | undefined;

/** The process's inference thread (started on first use). */
export function sharedInferenceThread(): InferenceThread {
  shared ??= new InferenceThread();
  return shared;
}
