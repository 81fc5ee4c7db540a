/**
 * A full garbage collection on demand, for the training pipeline's one moment where it matters: a
 * fitted model's typed arrays are freed only when their worker's heap is collected, and nothing
 * a job allocates next in onnxruntime (native memory, invisible to V8) prompts a collection.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

/**
 * Collects the calling thread's heap now. Node exposes `gc` only with `--expose-gc`; the flag is
 * turned on just long enough for a new context to get the function, then off again (the way test
 * runners obtain it), so no other code sees a `gc` global.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    const exposed = (globalThis as { gc?: unknown }).gc;
    if (typeof exposed === 'function') {
      gc = exposed as () => void;
    } else {
      v8.setFlagsFromString('--expose-gc');
      try {
        gc = vm.runInNewContext('gc') as () => void;
      } finally {
        v8.setFlagsFromString('--no-expose-gc');
      }
    }
  }
  gc();
}
