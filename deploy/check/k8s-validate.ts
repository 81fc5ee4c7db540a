/**
 * Validates rendered Kubernetes manifests (the output of `helm template`), every document:
 *
 * 1. Schema: the Kubernetes OpenAPI schema of its apiVersion/kind, through the validators that
 *    the npm package kubernetes-models compiles from it (and @kubernetes-models/prometheus-operator
 *    for ServiceMonitor): types, formats (quantities, int-or-string), required fields, enums.
 * 2. Unknown fields: the OpenAPI schema lets unknown fields through (the API server would drop
 *    them silently, so `readinesProbe:` would deploy without a readiness probe). Each document is
 *    type-checked by the TypeScript compiler as an object literal of the package's interface for
 *    its kind, whose excess-property check names every unknown field, at any depth.
 * 3. Policy: what this chart promises (non-root, read-only root filesystem, dropped capabilities,
 *    RuntimeDefault seccomp, probes on the routes that mean them, a metrics port that is the
 *    PROMETHEUS_PORT the process listens on, resources, a grace period that covers the preStop
 *    sleep and SHUTDOWN_TIMEOUT).
 *
 *   node --import tsx deploy/check/k8s-validate.ts [--no-policy] FILE.yaml...
 *
 * Exit code 1 when any document fails, with one line per problem.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Doc {
  readonly file: string;
  readonly index: number;
  readonly body: any;
}

/** apiVersion -> module folder of kubernetes-models (core v1 has none). */
const GROUPS: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'rbac.authorization.k8s.io/v1': 'kubernetes-models/rbac.authorization.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

function modulePath(doc: any): string | undefined {
  const group = GROUPS[String(doc?.apiVersion)];
  return group === undefined || typeof doc?.kind !== 'string' || !/^[A-Z][A-Za-z]+$/.test(doc.kind) ? undefined : `${group}/${doc.kind}`;
}

function label(d: Doc): string {
  return `${path.relative(process.cwd(), d.file)}#${d.index} ${d.body?.kind ?? '?'} ${d.body?.metadata?.name ?? '?'}`;
}

function load(files: readonly string[]): { docs: Doc[]; problems: string[] } {
  const docs: Doc[] = [];
  const problems: string[] = [];
  for (const file of files) {
    const parsed = parseAllDocuments(readFileSync(file, 'utf8'));
    for (const [index, d] of parsed.entries()) {
      if (d.errors.length > 0) {
        problems.push(`${file}#${index}: YAML: ${d.errors.map((e) => e.message).join('; ')}`);
        continue;
      }
      const body: unknown = d.toJS();
      if (body === null || body === undefined) continue;
      docs.push({ file, index, body });
    }
  }
  return { docs, problems };
}

async function schemaCheck(d: Doc): Promise<string[]> {
  const mod = modulePath(d.body);
  if (mod === undefined) return [`${label(d)}: no schema for apiVersion ${d.body?.apiVersion} kind ${d.body?.kind}`];
  let Klass: any;
  try {
    Klass = (await import(mod))[d.body.kind];
  } catch {
    return [`${label(d)}: no schema for ${d.body.apiVersion} ${d.body.kind} (${mod})`];
  }
  try {
    new Klass(d.body).validate();
    return [];
  } catch (err) {
    return [`${label(d)}: schema: ${(err as Error).message}`];
  }
}

/** Excess-property check of every document at once, by the TypeScript compiler. */
function unknownFieldCheck(docs: readonly Doc[]): string[] {
  const dir = path.join(ROOT, 'node_modules', '.cache', `modelplane-k8s-validate-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'manifests.ts');
  const lines: string[] = [];
  const lineDoc = new Map<number, Doc>();
  for (const [i, d] of docs.entries()) {
    const mod = modulePath(d.body);
    if (mod === undefined) continue;
    lines.push(`import type { I${d.body.kind} as T${i} } from '${mod}';`);
  }
  for (const [i, d] of docs.entries()) {
    if (modulePath(d.body) === undefined) continue;
    lineDoc.set(lines.length, d);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(d.body)};`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: [],
    });
    const problems: string[] = [];
    for (const diag of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diag.messageText, ' ');
      if (diag.file === undefined || path.resolve(diag.file.fileName) !== path.resolve(file) || diag.start === undefined) {
        problems.push(`type check: ${message}`);
        continue;
      }
      const { line, character } = diag.file.getLineAndCharacterOfPosition(diag.start);
      const d = lineDoc.get(line);
      const text = diag.file.text.split('\n')[line] ?? '';
      // The JSON path is not in the message; show the text around the offending property.
      const near = text.slice(Math.max(0, character - 40), character + 60);
      problems.push(`${d === undefined ? 'manifests' : label(d)}: ${message} (near ${near})`);
    }
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function podSpecOf(body: any): any {
  if (body?.kind === 'Deployment' || body?.kind === 'Job') return body.spec?.template?.spec;
  return undefined;
}

/** The chart's own promises, on every pod template. */
function policyCheck(d: Doc, configMaps: readonly any[]): string[] {
  const spec = podSpecOf(d.body);
  if (spec === undefined) return [];
  const out: string[] = [];
  const bad = (m: string): void => void out.push(`${label(d)}: policy: ${m}`);
  const psc = spec.securityContext ?? {};
  if (psc.runAsNonRoot !== true) bad('pod securityContext.runAsNonRoot must be true');
  if (psc.seccompProfile?.type !== 'RuntimeDefault') bad('pod seccompProfile must be RuntimeDefault');
  if (spec.automountServiceAccountToken !== false) bad('automountServiceAccountToken must be false (the pods never call the Kubernetes API)');
  const mounts = new Set<string>();
  for (const c of spec.containers ?? []) {
    const sc = c.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true) bad(`container ${c.name}: readOnlyRootFilesystem must be true`);
    if (sc.allowPrivilegeEscalation !== false) bad(`container ${c.name}: allowPrivilegeEscalation must be false`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) bad(`container ${c.name}: capabilities must drop ALL`);
    if (c.resources?.requests?.cpu === undefined || c.resources?.requests?.memory === undefined) bad(`container ${c.name}: cpu and memory requests are required`);
    if (c.resources?.limits?.memory === undefined) bad(`container ${c.name}: a memory limit is required`);
    for (const m of c.volumeMounts ?? []) mounts.add(m.mountPath);
    if (!mounts.has('/tmp')) bad(`container ${c.name}: /tmp must be a writable volume (read-only root filesystem)`);
    // A worker's only port is its metrics listener (PROMETHEUS_PORT), which its probes use too.
    const metrics = (c.ports ?? []).find((p: any) => p.name === 'metrics');
    if (metrics !== undefined) {
      const listensOn = (c.env ?? []).find((e: any) => e.name === 'PROMETHEUS_PORT')?.value;
      if (String(listensOn) !== String(metrics.containerPort)) bad(`container ${c.name}: PROMETHEUS_PORT (${listensOn}) must be its metrics port ${metrics.containerPort}`);
      for (const probe of ['livenessProbe', 'startupProbe'] as const) {
        if (c[probe]?.httpGet?.path !== '/health' || c[probe]?.httpGet?.port !== 'metrics') bad(`container ${c.name}: ${probe} must GET /health on the metrics port`);
      }
    }
    const serves = (c.ports ?? []).some((p: any) => p.name === 'http');
    if (serves) {
      if (c.readinessProbe?.httpGet?.path !== '/ready') bad(`container ${c.name}: readinessProbe must GET /ready`);
      if (c.livenessProbe?.httpGet?.path !== '/health') bad(`container ${c.name}: livenessProbe must GET /health`);
      if (c.startupProbe?.httpGet?.path !== '/health') bad(`container ${c.name}: startupProbe must GET /health`);
      const sleepArg = c.lifecycle?.preStop?.exec?.command?.[1];
      const preStop = Number(sleepArg ?? NaN);
      if (!Number.isFinite(preStop)) bad(`container ${c.name}: a preStop sleep is required (endpoint removal must reach the proxies before SIGTERM)`);
      const cmName = (c.envFrom ?? []).find((e: any) => e.configMapRef)?.configMapRef?.name;
      const cm = configMaps.find((m) => m.metadata?.name === cmName);
      const shutdown = Number(cm?.data?.SHUTDOWN_TIMEOUT ?? 10);
      const grace = Number(spec.terminationGracePeriodSeconds ?? 30);
      if (Number.isFinite(preStop) && grace < preStop + shutdown) {
        bad(`terminationGracePeriodSeconds ${grace} < preStop ${preStop} s + SHUTDOWN_TIMEOUT ${shutdown} s: the kubelet would SIGKILL during the drain`);
      }
    }
  }
  return out;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const policy = !args.includes('--no-policy');
  const files = args.filter((a) => !a.startsWith('--'));
  if (files.length === 0) {
    process.stderr.write('usage: k8s-validate.ts [--no-policy] FILE.yaml...\n');
    return 2;
  }
  const { docs, problems } = load(files);
  for (const d of docs) problems.push(...(await schemaCheck(d)));
  problems.push(...unknownFieldCheck(docs));
  if (policy) {
    const configMaps = docs.filter((d) => d.body.kind === 'ConfigMap').map((d) => d.body);
    for (const d of docs) problems.push(...policyCheck(d, configMaps));
  }
  const kinds = docs.map((d) => d.body.kind as string);
  const counts = [...new Set(kinds)].map((k) => `${kinds.filter((x) => x === k).length} ${k}`).join(', ');
  if (problems.length > 0) {
    for (const p of problems) process.stdout.write(`INVALID ${p}\n`);
    process.stdout.write(`${problems.length} problem(s) in ${docs.length} documents\n`);
    return 1;
  }
  process.stdout.write(`valid: ${docs.length} documents (${counts}) in ${files.length} file(s)\n`);
  return 0;
}

process.exitCode = await main();
