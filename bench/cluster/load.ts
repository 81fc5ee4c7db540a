/**
 * Load for the fault scenarios: an open-loop generator (a fixed rate, whatever the servers do, so
 * a stall shows as failures and latency instead of fewer requests) over keep-alive agents, and a
 * readiness prober. Targets are chosen round-robin, either among all of them ("direct": what a
 * client that knows the replicas does) or among those whose last `/ready` probe answered 200
 * ("balanced": what a load balancer or a Kubernetes Service does with a readiness probe).
 */
import http from 'node:http';
import { isOk, outcomeOf, request, type HttpResult } from './http.ts';

export interface Sample {
  /** `Date.now()` when the request was sent. */
  readonly sentAt: number;
  readonly ms: number;
  readonly outcome: string;
  readonly ok: boolean;
  readonly target: string;
}

export interface LoadStats {
  readonly sent: number;
  readonly ok: number;
  /** Failures by kind: HTTP status, errno code, `timeout`, `no-ready-backend`, `client-backlog`. */
  readonly failures: Record<string, number>;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: readonly Sample[];
}

export interface LoadOptions {
  /** Base URLs of the API processes. */
  readonly targets: readonly string[];
  readonly path: string;
  readonly headers: Record<string, string>;
  /** A new body per request. */
  readonly body: () => string;
  /** Requests per second, all targets together. */
  readonly rate: number;
  /** Per-request deadline. */
  readonly timeoutMs: number;
  /** Readiness-gated choice of target (see the file comment). */
  readonly balancer?: Prober;
  /** Most requests in flight before new ones are counted as `client-backlog` instead of sent. */
  readonly maxInFlight?: number;
}

/** Percentile of sorted numbers (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Summarises samples (optionally only those sent in [from, to)). */
export function summarizeSamples(samples: readonly Sample[], from = -Infinity, to = Infinity): LoadStats {
  const chosen = samples.filter((s) => s.sentAt >= from && s.sentAt < to);
  const failures: Record<string, number> = {};
  let ok = 0;
  for (const s of chosen) {
    if (s.ok) ok++;
    else failures[s.outcome] = (failures[s.outcome] ?? 0) + 1;
  }
  const latencies = chosen.filter((s) => s.outcome !== 'no-ready-backend' && s.outcome !== 'client-backlog').map((s) => s.ms).sort((a, b) => a - b);
  return {
    sent: chosen.length,
    ok,
    failures,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length === 0 ? 0 : latencies[latencies.length - 1]!,
    samples: chosen,
  };
}

export class Load {
  private readonly agents = new Map<string, http.Agent>();
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private issued = 0;
  private inFlight = 0;
  private next = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly options: LoadOptions) {
    for (const t of options.targets) this.agents.set(t, new http.Agent({ keepAlive: true, maxSockets: 64 }));
  }

  start(): void {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  private tick(): void {
    const due = Math.floor(((Date.now() - this.startedAt) / 1000) * this.options.rate);
    while (this.issued < due) {
      this.issued++;
      this.send();
    }
  }

  private pick(): string | undefined {
    const candidates = this.options.balancer === undefined ? this.options.targets : this.options.targets.filter((t) => this.options.balancer!.isReady(t));
    if (candidates.length === 0) return undefined;
    this.next = (this.next + 1) % candidates.length;
    return candidates[this.next];
  }

  private send(): void {
    const sentAt = Date.now();
    const target = this.pick();
    if (target === undefined) {
      this.samples.push({ sentAt, ms: 0, outcome: 'no-ready-backend', ok: false, target: '-' });
      return;
    }
    if (this.inFlight >= (this.options.maxInFlight ?? 2000)) {
      this.samples.push({ sentAt, ms: 0, outcome: 'client-backlog', ok: false, target });
      return;
    }
    this.inFlight++;
    void request(`${target}${this.options.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.options.headers },
      body: this.options.body(),
      timeoutMs: this.options.timeoutMs,
      agent: this.agents.get(target)!,
    }).then((r: HttpResult) => {
      this.samples.push({ sentAt, ms: r.ms, outcome: outcomeOf(r), ok: isOk(r), target });
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    });
  }

  /** Stops sending, waits for the requests in flight (each has its deadline), and summarises. */
  async stop(): Promise<LoadStats> {
    clearInterval(this.timer);
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    for (const a of this.agents.values()) a.destroy();
    return summarizeSamples(this.samples);
  }

  /** Samples so far (for windowed summaries while running). */
  snapshot(): readonly Sample[] {
    return this.samples;
  }
}

export interface Probe {
  readonly at: number;
  readonly target: string;
  readonly status: number;
  readonly ms: number;
  readonly error?: string;
  readonly body: string;
}

/** Polls `GET /ready` of every target every `everyMs` (each probe with its own deadline). */
export class Prober {
  readonly probes: Probe[] = [];
  private readonly last = new Map<string, Probe>();
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly targets: readonly string[],
    private readonly everyMs: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.round();
    this.timer = setInterval(() => this.round(), this.everyMs);
  }

  private round(): void {
    for (const target of this.targets) {
      // One probe at a time per target, as a kubelet does: a hung probe is not stacked.
      if ([...this.pendingTargets].includes(target)) continue;
      this.pendingTargets.add(target);
      const at = Date.now();
      const p = request(`${target}/ready`, { timeoutMs: this.timeoutMs }).then((r) => {
        const probe: Probe = { at, target, status: r.status, ms: r.ms, body: r.body.slice(0, 300), ...(r.error === undefined ? {} : { error: r.error }) };
        this.probes.push(probe);
        this.last.set(target, probe);
        this.pendingTargets.delete(target);
      });
      this.pending.add(p);
      void p.then(() => this.pending.delete(p));
    }
  }

  private readonly pendingTargets = new Set<string>();

  /** Ready for the balancer: the latest finished probe answered 200 (unknown counts as ready). */
  isReady(target: string): boolean {
    const p = this.last.get(target);
    return p === undefined || p.status === 200;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.pending]);
  }
}
