/**
 * Checks the monitoring kit against the metric names API.md promises ("Metric names that existing
 * dashboards query and must exist"):
 *
 * - the Grafana dashboard is a dashboard (uid, title, panels with Prometheus targets), every
 *   query names only known metrics, and together the panels query every promised metric;
 * - every alert rule's expression names only known metrics (exporters' redis_up / pg_up and
 *   Prometheus' own `up` included);
 * - the Helm chart's copy of the rules is identical to deploy/prometheus/alerts.yml.
 *
 *   node --import tsx deploy/check/monitoring-validate.ts
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const DEPLOY = path.resolve(import.meta.dirname, '..');

/** API.md's list, verbatim. */
export const PROMISED = [
  'prediction_requests_total', 'prediction_requests_successful', 'prediction_requests_failed', 'prediction_latency_seconds',
  'model_loaded', 'api_uptime_seconds', 'api_requests_total', 'api_request_duration_seconds', 'predictions_total',
  'prediction_duration_seconds', 'model_status', 'errors_total', 'gpu_utilization_percent', 'gpu_memory_used_bytes',
  'training_jobs', 'training_job_duration_seconds', 'prediction_cache_hits_total', 'prediction_cache_misses_total',
  'drift_score', 'drift_detected', 'dataset_drift_share',
];
/**
 * modelplane's own metrics beyond API.md's list (drift monitoring, training workers' memory), each
 * checked against the server's /metrics by a test (test/drift/drift.e2e.test.ts,
 * test/training/training.routes.test.ts).
 */
export const OWN = ['prediction_log_dropped_total', 'prediction_log_written_total', 'dataset_drift_detected', 'training_worker_resident_memory_bytes'];
/** Names that are not modelplane's own but may appear in queries. */
const FOREIGN = ['up', 'redis_up', 'pg_up'];
const FOREIGN_PREFIXES = ['process_', 'nodejs_'];

const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'atan2',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'histogram_quantile', 'absent', 'absent_over_time',
  'abs', 'ceil', 'floor', 'round', 'clamp', 'clamp_min', 'clamp_max', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'time', 'timestamp',
  'vector', 'scalar', 'sort', 'sort_desc', 'label_replace', 'label_join', 'changes', 'resets',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'quantile_over_time', 'last_over_time', 'present_over_time',
  'inf', 'nan',
]);

/** Metric names a PromQL expression selects (label matchers, grouping labels, strings and durations removed). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\$\w+/g, '');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice(m.index + word.length).trimStart();
    if (PROMQL_WORDS.has(word) || after.startsWith('(')) continue;
    names.add(word);
  }
  return [...names];
}

function base(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}

function known(name: string): boolean {
  return PROMISED.includes(name) || PROMISED.includes(base(name)) || OWN.includes(name) || FOREIGN.includes(name) || FOREIGN_PREFIXES.some((p) => name.startsWith(p));
}

const problems: string[] = [];

const dashboardFile = path.join(DEPLOY, 'grafana', 'dashboards', 'modelplane.json');
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8'));
if (typeof dashboard.uid !== 'string' || typeof dashboard.title !== 'string' || !Array.isArray(dashboard.panels)) problems.push('dashboard: uid, title and panels are required');
const used = new Set<string>();
let queries = 0;
const ids = new Set<number>();
for (const panel of dashboard.panels ?? []) {
  if (ids.has(panel.id)) problems.push(`dashboard: duplicate panel id ${panel.id}`);
  ids.add(panel.id);
  if (panel.type === 'row') continue;
  if (!Array.isArray(panel.targets) || panel.targets.length === 0) problems.push(`dashboard: panel '${panel.title}' has no query`);
  for (const t of panel.targets ?? []) {
    queries++;
    for (const name of metricNames(String(t.expr ?? ''))) {
      used.add(base(name));
      if (!known(name)) problems.push(`dashboard: panel '${panel.title}' queries unknown metric ${name}`);
    }
  }
}
for (const name of PROMISED) if (!used.has(name)) problems.push(`dashboard: no panel queries ${name}`);

const rulesFile = path.join(DEPLOY, 'prometheus', 'alerts.yml');
const rulesText = readFileSync(rulesFile, 'utf8');
const rules = parse(rulesText);
let alerts = 0;
for (const group of rules.groups ?? []) {
  for (const rule of group.rules ?? []) {
    alerts++;
    for (const name of metricNames(String(rule.expr))) if (!known(name)) problems.push(`alerts: ${rule.alert} uses unknown metric ${name}`);
    if (rule.labels?.severity === undefined) problems.push(`alerts: ${rule.alert} has no severity label`);
  }
}
const chartCopy = path.join(DEPLOY, 'helm', 'modelplane', 'files', 'alerts.yml');
if (readFileSync(chartCopy, 'utf8') !== rulesText) problems.push(`alerts: ${path.relative(process.cwd(), chartCopy)} differs from deploy/prometheus/alerts.yml (copy it over)`);

if (problems.length > 0) {
  for (const p of problems) process.stdout.write(`INVALID ${p}\n`);
  process.exitCode = 1;
} else {
  process.stdout.write(`valid: dashboard (${dashboard.panels.length} panels, ${queries} queries, all ${PROMISED.length} promised metrics), ${alerts} alert rules, chart copy identical\n`);
}
