/**
 * Cooperative pauses for trainers that run on a thread which must also receive messages (a
 * training job's cancellation arrives as a message to the thread that fits). A fit that never
 * returns to the event loop cannot see it, so the trainers call {@link Pacer.pause} between units of
 * work (trees, boosting iterations); it yields a macrotask turn at most every `intervalMs`.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Default gap between two yields: often enough for a cancel to land well within a second. */
export const DEFAULT_PAUSE_INTERVAL_MS = 50;

export class Pacer {
  private last = performance.now();

  constructor(private readonly intervalMs = DEFAULT_PAUSE_INTERVAL_MS) {}

  /** Yields to the event loop when `intervalMs` have passed since the last yield. */
  async pause(): Promise<void> {
    const now = performance.now();
    if (now - this.last < this.intervalMs) return;
    await nextTurn();
    this.last = performance.now();
  }
}

/** Throws the signal's reason (or a plain cancellation error) when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    throw reason instanceof Error ? reason : new Error('cancelled');
  }
}
