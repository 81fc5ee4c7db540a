import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface GpuDevice {
  readonly index: number;
  readonly name: string;
  readonly utilizationPercent: number | null;
  readonly memoryUsedBytes: number | null;
  readonly memoryTotalBytes: number | null;
  readonly temperatureCelsius: number | null;
  readonly powerWatts: number | null;
}

export interface GpuReport {
  readonly available: boolean;
  readonly gpus: GpuDevice[];
  readonly driverVersion?: string;
  readonly reason?: string;
}

/**
 * Reads GPU state through `nvidia-smi` (present wherever the NVIDIA driver is). Results are cached
 * for a few seconds so scrapes and health checks do not spawn a process each time.
 */
export class GpuProbe {
  private cached: { at: number; report: Promise<GpuReport> } | undefined;

  constructor(
    private readonly command = 'nvidia-smi',
    private readonly ttlMs = 5000,
  ) {}

  read(): Promise<GpuReport> {
    const now = Date.now();
    if (this.cached !== undefined && now - this.cached.at < this.ttlMs) return this.cached.report;
    const report = this.query();
    this.cached = { at: now, report };
    return report;
  }

  private query(): Promise<GpuReport> {
    const fields = 'index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,driver_version';
    return new Promise((resolve) => {
      execFile(this.command, [`--query-gpu=${fields}`, '--format=csv,noheader,nounits'], { timeout: 3000 }, (err, stdout) => {
        if (err !== null) {
          resolve({ available: false, gpus: [], reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'nvidia-smi not found' : 'nvidia-smi failed' });
          return;
        }
        resolve(parseNvidiaSmi(stdout));
      });
    });
  }
}

/** Parses `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` output. */
export function parseNvidiaSmi(stdout: string): GpuReport {
  const num = (s: string | undefined): number | null => {
    if (s === undefined) return null;
    const n = Number(s.trim());
    return Number.isFinite(n) ? n : null;
  };
  const mib = (s: string | undefined): number | null => {
    const n = num(s);
    return n === null ? null : n * 1024 * 1024;
  };
  let driverVersion: string | undefined;
  const gpus: GpuDevice[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split(',').map((s) => s.trim());
    driverVersion = f[7];
    gpus.push({
      index: num(f[0]) ?? gpus.length,
      name: f[1] ?? 'unknown',
      utilizationPercent: num(f[2]),
      memoryUsedBytes: mib(f[3]),
      memoryTotalBytes: mib(f[4]),
      temperatureCelsius: num(f[5]),
      powerWatts: num(f[6]),
    });
  }
  return gpus.length === 0 ? { available: false, gpus, reason: 'no GPU listed' } : { available: true, gpus, ...(driverVersion === undefined ? {} : { driverVersion }) };
}

/** Samples event-loop delay continuously (cheap: a timer inside libuv). */
export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  start(): void {
    this.histogram.enable();
  }

  stop(): void {
    this.histogram.disable();
  }

  /** Event-loop delay in milliseconds since the last reset, then resets. */
  snapshot(): { mean_ms: number; p50_ms: number; p99_ms: number; max_ms: number } {
    const h = this.histogram;
    const ms = (ns: number): number => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const out = { mean_ms: ms(h.mean), p50_ms: ms(h.percentile(50)), p99_ms: ms(h.percentile(99)), max_ms: ms(h.max) };
    h.reset();
    return out;
  }
}

/** CPU, memory, disk and event-loop figures for `/health/system`. */
export async function systemReport(dataDir: string, loop: EventLoopMonitor): Promise<Record<string, unknown>> {
  const mem = process.memoryUsage();
  const cpus = os.cpus();
  let disk: Record<string, number> | { error: string };
  try {
    const s = await statfs(dataDir);
    disk = { total_bytes: s.blocks * s.bsize, free_bytes: s.bavail * s.bsize, used_percent: s.blocks === 0 ? 0 : Math.round((1 - s.bavail / s.blocks) * 1000) / 10 };
  } catch {
    disk = { error: 'data directory not readable' };
  }
  const usage = process.cpuUsage();
  return {
    cpu: {
      cores: cpus.length,
      model: cpus[0]?.model ?? 'unknown',
      load_average: os.loadavg(),
      process_user_seconds: usage.user / 1e6,
      process_system_seconds: usage.system / 1e6,
    },
    memory: {
      total_bytes: os.totalmem(),
      free_bytes: os.freemem(),
      process_rss_bytes: mem.rss,
      process_heap_used_bytes: mem.heapUsed,
      process_heap_total_bytes: mem.heapTotal,
      process_external_bytes: mem.external,
    },
    disk,
    event_loop: loop.snapshot(),
    process: { pid: process.pid, node: process.version, uptime_seconds: process.uptime(), platform: `${process.platform}-${process.arch}` },
  };
}
