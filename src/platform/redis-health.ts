/**
 * How the shared Redis connection is doing, for the features that degrade without it: the
 * prediction cache (a miss), the rate limiter (a local budget per process) and job submission
 * (503). Redis is "degraded" while the connection is not ready or a command failed in the last
 * few seconds (a server that accepts connections but does not answer in time). `/ready`, the
 * `redis_degraded` gauge and the log report it; nothing waits on it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** A failed command keeps Redis reported as degraded for this long. */
const RECENT_FAILURE_MS = 5000;

export class RedisHealth {
  private failedAt = 0;
  private reportedDown = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    redis.on('ready', () => {
      if (!this.reportedDown) return;
      this.reportedDown = false;
      log.info('redis connection restored; prediction cache and rate limits are shared again');
    });
    redis.on('close', () => this.reportDown('connection closed'));
  }

  /** True when commands can be sent now (connected and ready). */
  get usable(): boolean {
    return this.redis.status === 'ready';
  }

  /** True while features run on their local fallbacks. */
  get degraded(): boolean {
    return !this.usable || Date.now() - this.failedAt < RECENT_FAILURE_MS;
  }

  /** Records a failed command (timeout, connection lost); the caller has already fallen back. */
  failed(err: unknown): void {
    this.failedAt = Date.now();
    this.reportDown(err instanceof Error ? err.message : String(err));
  }

  private reportDown(why: string): void {
    if (this.reportedDown) return;
    this.reportedDown = true;
    this.log.warn({ reason: why }, 'redis unavailable; prediction cache and rate limits fall back to this process until it returns');
  }
}
