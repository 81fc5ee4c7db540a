/**
 * Handing back the memory a process's start-up leaves in V8's heap.
 *
 * Loading and compiling the modules, migrating the store and loading the models allocate far more
 * than a serving process then keeps, and most of it survives long enough for V8 to grow its young
 * generation to the largest size allowed (16 MB with `--max-semi-space-size=8`, 32 MB by default on Node 22). V8
 * shrinks it again only in a collection that reduces memory, which its own memory reducer starts
 * after a full collection: a server that then serves a trickle of small requests does not have one
 * for a long time, and keeps it resident (and old-space pages of start-up garbage). One
 * memory-reducing collection once the server is quiet gives them back: on Node 24 the demo server
 * went from 135 to 119 MB resident (about 40 ms of one collection). Under load V8 grows the young
 * generation again as it always does, so serving speed is what it was. Node 20's V8 runs a plain
 * full collection instead, which leaves the young generation as it is.
 */
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

type CollectGarbage = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let collect: CollectGarbage | undefined;

/**
 * V8's own `gc` function. Node has no API for a memory-reducing collection; V8 installs `gc` in
 * every context created while `--expose-gc` is set, so a context made for the purpose gets it
 * without exposing it to the application's code (the flag is put back at once).
 */
function collectGarbage(): CollectGarbage {
  if (collect !== undefined) return collect;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    collect = exposed as CollectGarbage;
  } else {
    v8.setFlagsFromString('--expose-gc');
    try {
      collect = vm.runInNewContext('gc') as CollectGarbage;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  return collect;
}

/** What one reduction did. */
export interface HeapReduction {
  /** Resident set size before and after, in bytes. */
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly ms: number;
}

/**
 * Runs one memory-reducing full collection now (what V8 runs under memory pressure): the young
 * generation shrinks to its initial size, old space is compacted and its empty pages are unmapped.
 * Blocks the event loop for the collection (tens of milliseconds for a server's heap).
 */
export function reduceHeap(): HeapReduction {
  const rssBefore = process.memoryUsage.rss();
  const t0 = performance.now();
  collectGarbage()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return { rssBefore, rssAfter: process.memoryUsage.rss(), ms: performance.now() - t0 };
}

/** When {@link reduceHeapWhenQuiet} runs its collection. */
export interface QuietReductionOptions {
  /** Length of one look at the event loop, ms (default 1000). */
  readonly windowMs?: number;
  /**
   * The collection runs at the end of the first window in which the event loop was busy for less
   * than this share (default 0.5): its pause (tens of milliseconds) then delays only what arrives
   * while it runs. A freshly started server answering a trickle of requests is busier than it looks
   * (its code is not compiled yet: 0.2 for 75 requests a second here).
   */
  readonly idleBelow?: number;
  /** Windows to wait for a quiet one before giving up (default 60): a server busy from its start has a heap shaped by its load, not by start-up. */
  readonly attempts?: number;
  /** The event loop's busy share since its previous call, or since it was made (default: Node's event loop utilization). */
  readonly utilization?: () => number;
  /** Runs the collection (default {@link reduceHeap}). */
  readonly reduce?: () => HeapReduction;
}

/** A pending {@link reduceHeapWhenQuiet}. */
export interface QuietReduction {
  /** The reduction, or undefined when it gave up or was cancelled; rejects when the collection threw. */
  readonly done: Promise<HeapReduction | undefined>;
  cancel(): void;
}

/**
 * Runs {@link reduceHeap} once, at the end of the first quiet window (see `idleBelow`), so the
 * collection's pause does not land on a burst of requests. The timer does not keep the process
 * alive.
 */
export function reduceHeapWhenQuiet(options: QuietReductionOptions = {}): QuietReduction {
  const windowMs = options.windowMs ?? 1000;
  const idleBelow = options.idleBelow ?? 0.5;
  const reduce = options.reduce ?? reduceHeap;
  const utilization = options.utilization ?? eventLoopUtilization();
  let left = options.attempts ?? 60;
  let timer: NodeJS.Timeout | undefined;
  let settle: (r: HeapReduction | undefined) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const done = new Promise<HeapReduction | undefined>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const look = (): void => {
    timer = undefined;
    left -= 1;
    if (utilization() < idleBelow) {
      try {
        settle(reduce());
      } catch (err) {
        fail(err);
      }
    } else if (left > 0) {
      timer = setTimeout(look, windowMs).unref();
    } else {
      settle(undefined);
    }
  };
  timer = setTimeout(look, windowMs).unref();
  return {
    done,
    cancel() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      settle(undefined);
    },
  };
}

/** A function that returns the event loop's busy share since its previous call. */
function eventLoopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}
