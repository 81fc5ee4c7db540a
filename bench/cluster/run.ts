/**
 * Cluster fault harness (issue 11): one command starts a whole scaled-out modelplane on this
 * machine and runs the fault scenarios one by one.
 *
 *   node --import tsx bench/cluster/run.ts [--scenario jobs,redis-down] [--rate 100] [--outage 10]
 *                                           [--json out.json] [--keep] [--list]
 *
 * It starts its own PostgreSQL (initdb into a temp dir), redis-server and S3-protocol server
 * (s3rver) on free ports, runs `modelplane migrate` once, then two APIs (`modelplane serve`,
 * TRAINING_WORKERS=0) and two `modelplane worker --concurrency 1` (each with its metrics listener on
 * a PROMETHEUS_PORT of its own), all from dist/ (built first when src/ is newer) and configured only
 * by environment variables (DATABASE_URL, REDIS_URL, ARTIFACT_ROOT=s3://..., S3_ENDPOINT_URL,
 * S3_FORCE_PATH_STYLE=true). Each scenario's checks say
 * what was expected and what happened; the table gives requests, failures by kind, latency and
 * recovery time. Exit code 0 only when every check of every scenario passed; 1 otherwise; 2 when
 * the cluster could not be started. Every wait has a deadline; every child process is killed and
 * the temp dir removed at exit (unless --keep, which leaves the logs for a look).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster } from './cluster.ts';
import { killAllSync } from './proc.ts';
import { SCENARIOS, prepare, type Ctx, type ScenarioResult } from './scenarios.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const started = Date.now();
function log(line: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

if (process.argv.includes('--list')) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(16)} ${s.title}\n`);
  process.exit(0);
}

const only = flag('--scenario')?.split(',').map((s) => s.trim()).filter((s) => s !== '');
const unknown = only?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; --list shows them\n`);
  process.exit(2);
}
const chosen = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => only.includes(s.name));
const rate = Number(flag('--rate') ?? 100);
const outageMs = Number(flag('--outage') ?? 10) * 1000;
const keep = process.argv.includes('--keep');
const jsonOut = flag('--json');

const dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-cluster-'));
let cleaned = false;
function cleanupSync(): void {
  if (cleaned) return;
  cleaned = true;
  killAllSync();
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the cluster`);
    cleanupSync();
    process.exit(130);
  });
}

interface Row {
  readonly name: string;
  readonly result: ScenarioResult;
  readonly seconds: number;
  readonly error?: string;
  readonly healed: string[];
}

function fmtMs(v: number | null | undefined): string {
  if (v === undefined) return '-';
  if (v === null) return 'never';
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

function table(rows: readonly Row[]): string {
  const header = ['scenario', 'result', 'checks', 'requests', 'failed', 'failures by kind', 'p50', 'p99', 'max', 'recovery'];
  const body = rows.map((r) => {
    const failedChecks = r.result.checks.filter((c) => !c.pass).length;
    const l = r.result.load;
    const pass = r.error === undefined && failedChecks === 0;
    return [
      r.name,
      pass ? 'PASS' : 'FAIL',
      `${r.result.checks.length - failedChecks}/${r.result.checks.length}`,
      l === undefined ? '-' : String(l.sent),
      l === undefined ? '-' : String(l.sent - l.ok),
      l === undefined ? '-' : Object.entries(l.failures).map(([k, v]) => `${k}:${v}`).join(' ') || 'none',
      l === undefined ? '-' : fmtMs(l.p50),
      l === undefined ? '-' : fmtMs(l.p99),
      l === undefined ? '-' : fmtMs(l.max),
      fmtMs(r.result.recoveryMs),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  log(`temp dir ${dir}${keep ? ' (kept)' : ''}; scenarios: ${chosen.map((s) => s.name).join(', ')}; ${rate} req/s; outages ${outageMs / 1000} s`);
  const cluster = await Cluster.create(dir, log);
  const p = cluster.ports;
  log(`ports: postgres ${p.pg}, redis ${p.redis}, s3 ${p.s3}, api1 ${p.api[0]}, api2 ${p.api[1]}`);
  const ctx: Ctx = {
    cluster,
    log,
    rate,
    outageMs,
    state: { longDataset: 'cluster-long', longParams: { n_estimators: 250, n_jobs: 1, max_depth: null } },
  };
  try {
    await cluster.start();
    await prepare(ctx);
  } catch (err) {
    log(`the cluster could not be started: ${err instanceof Error ? err.message : String(err)}`);
    for (const proc of cluster.every()) if (proc.exits.length > 0) log(`${proc.name} log tail:\n${proc.tail(10)}`);
    await cluster.stopAll().catch(() => undefined);
    return 2;
  }
  const rows: Row[] = [];
  for (const scenario of chosen) {
    log(`scenario ${scenario.name}: ${scenario.title}`);
    const t0 = Date.now();
    let result: ScenarioResult = { checks: [], notes: [] };
    let error: string | undefined;
    try {
      result = await scenario.run(ctx);
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`scenario ${scenario.name} stopped: ${error}`);
    }
    const seconds = Math.round((Date.now() - t0) / 1000);
    for (const c of result.checks) log(`  ${c.pass ? 'ok  ' : 'FAIL'} ${c.name}: expected ${c.expected}; got ${c.actual}`);
    for (const n of result.notes) log(`  note: ${n}`);
    let healed: string[];
    try {
      healed = await cluster.heal();
    } catch (err) {
      healed = [`heal failed: ${err instanceof Error ? err.message : String(err)}`];
    }
    if (healed.length > 0) log(`  healed after ${scenario.name}: ${healed.join('; ')}`);
    rows.push({ name: scenario.name, result, seconds, healed, ...(error === undefined ? {} : { error }) });
  }
  await cluster.stopAll().catch(() => undefined);

  const out = process.stdout;
  out.write(`\nmodelplane cluster harness: ${rate} req/s of POST /predict, outages of ${outageMs / 1000} s, ${new Date().toISOString()}\n\n`);
  out.write(`${table(rows)}\n\n`);
  let failed = 0;
  for (const r of rows) {
    const bad = r.result.checks.filter((c) => !c.pass);
    if (bad.length === 0 && r.error === undefined) continue;
    failed++;
    out.write(`${r.name}:\n`);
    if (r.error !== undefined) out.write(`  harness error: ${r.error.split('\n')[0]}\n`);
    for (const c of bad) out.write(`  FAIL ${c.name}\n       expected: ${c.expected}\n       got:      ${c.actual}\n`);
    for (const n of r.result.notes) out.write(`  note: ${n}\n`);
    if (r.healed.length > 0) out.write(`  healed afterwards: ${r.healed.join('; ')}\n`);
  }
  const passedChecks = rows.reduce((n, r) => n + r.result.checks.filter((c) => c.pass).length, 0);
  const failedChecks = rows.reduce((n, r) => n + r.result.checks.filter((c) => !c.pass).length, 0);
  out.write(`\n${rows.length - failed} of ${rows.length} scenarios passed; checks: ${passedChecks} passed, ${failedChecks} failed\n`);
  if (jsonOut !== undefined) {
    writeFileSync(
      jsonOut,
      JSON.stringify(
        rows.map((r) => ({ ...r, result: { ...r.result, load: r.result.load === undefined ? undefined : { ...r.result.load, samples: undefined } } })),
        null,
        2,
      ),
    );
  }
  if (keep) out.write(`logs kept in ${path.join(dir, 'logs')}\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    cleanupSync();
    process.exit(code);
  },
  (err: unknown) => {
    log(`harness failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    cleanupSync();
    process.exit(2);
  },
);
