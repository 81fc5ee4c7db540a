/** How long one readiness check may take before it counts as failed. */
export const CHECK_TIMEOUT_MS = 2000;

/** Outcome of one readiness check. */
export interface CheckResult {
  readonly ok: boolean;
  readonly detail?: string;
}

/**
 * What features tell the health and info endpoints about themselves. Serving registers the default
 * model's readiness, training its queue, and so on; the platform only renders.
 */
export class StatusBoard {
  private readonly checks = new Map<string, () => Promise<CheckResult> | CheckResult>();
  private readonly sections = new Map<string, () => unknown>();
  /** Whether the default model is loaded; serving replaces this. */
  modelLoaded: () => boolean = () => false;
  private shuttingDown = false;

  /** From now on `/ready` fails (the process is stopping; balancers should stop sending). */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  /** A check that must pass for `/ready` to answer 200. */
  addReadinessCheck(name: string, check: () => Promise<CheckResult> | CheckResult): void {
    this.checks.set(name, check);
  }

  /** A named section shown in `/info` and `/health/detailed` (must hold no secrets). */
  addSection(name: string, section: () => unknown): void {
    this.sections.set(name, section);
  }

  /**
   * Runs every check at once, each bounded by `timeoutMs`: a backend that does not answer (a
   * dropped connection, a server that stopped) fails its check instead of holding `/ready` up.
   */
  async runChecks(timeoutMs = CHECK_TIMEOUT_MS): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
    if (this.shuttingDown) return { ready: false, checks: { shutdown: { ok: false, detail: 'the process is shutting down' } } };
    const entries = [...this.checks];
    const results = await Promise.all(entries.map(([, check]) => runBounded(check, timeoutMs)));
    const checks: Record<string, CheckResult> = {};
    let ready = true;
    entries.forEach(([name], i) => {
      const result = results[i]!;
      checks[name] = result;
      if (!result.ok) ready = false;
    });
    return { ready, checks };
  }

  renderSections(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, section] of this.sections) out[name] = section();
    return out;
  }
}

async function runBounded(check: () => Promise<CheckResult> | CheckResult, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : 'check failed' };
  } finally {
    clearTimeout(timer);
  }
}
