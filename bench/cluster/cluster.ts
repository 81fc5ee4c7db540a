/**
 * The cluster under test, all on this machine and all owned by the harness: its own PostgreSQL
 * (initdb into a temp dir, run as the `postgres` user when the harness is root), its own
 * redis-server, its own S3-protocol server (s3rver in a child process), two API processes and two
 * `modelplane worker` processes from dist/. Faults are injected only into these instances; the
 * machine's shared PostgreSQL and Redis are never touched.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { ensureCompiledBuild, ROOT, SERVE_NODE_FLAGS } from '../compiled-server.ts';
import { json, poll, request } from './http.ts';
import { ManagedProcess } from './proc.ts';

export const API_KEY = 'cluster-harness-admin-key-0123456789';
export const MODEL = 'cluster-model';
export const BUCKET = 'modelplane';

/** A free TCP port on 127.0.0.1 (bound and released at once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The newest Debian PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`). */
function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) throw new Error('no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)');
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('no postgres binary under /usr/lib/postgresql/*/bin');
  return path.join(base, versions[0]!, 'bin');
}

function userIds(name: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
  };
}

export interface ClusterPorts {
  readonly pg: number;
  readonly redis: number;
  readonly s3: number;
  readonly api: readonly number[];
  /** Each worker's metrics listener (PROMETHEUS_PORT): its /metrics and /health. */
  readonly workerMetrics: readonly number[];
}

export type Log = (line: string) => void;

export class Cluster {
  readonly pg: ManagedProcess;
  readonly redis: ManagedProcess;
  readonly s3: ManagedProcess;
  readonly apis: ManagedProcess[] = [];
  readonly workers: ManagedProcess[] = [];
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly s3Endpoint: string;
  private readonly main: string;
  private readonly pgDir: string;
  private readonly pgIds: { uid: number; gid: number } | undefined;
  private readonly pgBin: string;

  private constructor(
    readonly dir: string,
    readonly ports: ClusterPorts,
    private readonly log: Log,
  ) {
    this.main = ensureCompiledBuild(log);
    this.pgBin = postgresBinDir();
    this.pgIds = process.getuid?.() === 0 ? userIds('postgres') : undefined;
    this.pgDir = path.join(dir, 'pg');
    const logs = path.join(dir, 'logs');
    mkdirSync(logs, { recursive: true });
    this.databaseUrl = `postgres://postgres@127.0.0.1:${ports.pg}/modelplane`;
    this.redisUrl = `redis://127.0.0.1:${ports.redis}`;
    this.s3Endpoint = `http://127.0.0.1:${ports.s3}`;

    const socketDir = path.join(dir, 'pg-socket');
    this.pg = new ManagedProcess(
      'postgres',
      {
        command: path.join(this.pgBin, 'postgres'),
        args: ['-D', this.pgDir, '-p', String(ports.pg), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C' },
        cwd: dir,
        ...(this.pgIds ?? {}),
      },
      path.join(logs, 'postgres.log'),
    );
    this.redis = new ManagedProcess(
      'redis',
      {
        // No persistence, like the machine's Redis and a cache-only Redis: a restart loses every
        // key, including BullMQ's queue (the worst case the jobs table must survive).
        command: 'redis-server',
        args: ['--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', path.join(dir, 'redis')],
        env: process.env,
        cwd: dir,
      },
      path.join(logs, 'redis.log'),
    );
    this.s3 = new ManagedProcess(
      's3',
      {
        command: process.execPath,
        args: ['--openssl-legacy-provider', '--import', 'tsx', path.join(import.meta.dirname, 's3-server.ts'), path.join(dir, 's3'), String(ports.s3), BUCKET],
        env: process.env,
        cwd: ROOT,
      },
      path.join(logs, 's3.log'),
    );
    for (const [i, port] of ports.api.entries()) this.apis.push(this.apiProcess(`api${i + 1}`, port));
    for (const [i, metricsPort] of ports.workerMetrics.entries()) {
      this.workers.push(
        new ManagedProcess(
          `worker${i + 1}`,
          {
            command: process.execPath,
            args: [...SERVE_NODE_FLAGS, this.main, 'worker', '--concurrency', '1'],
            env: this.env(`worker${i + 1}`, { PROMETHEUS_PORT: String(metricsPort) }),
            cwd: ROOT,
          },
          path.join(logs, `worker${i + 1}.log`),
        ),
      );
    }
  }

  static async create(dir: string, log: Log): Promise<Cluster> {
    const ports: ClusterPorts = {
      pg: await freePort(),
      redis: await freePort(),
      s3: await freePort(),
      api: [await freePort(), await freePort()],
      workerMetrics: [await freePort(), await freePort()],
    };
    return new Cluster(dir, ports, log);
  }

  /** Environment of an API or worker process: every backend by environment variable. */
  env(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const inherited = { ...process.env };
    for (const k of Object.keys(inherited)) {
      if (/^(DATABASE_URL|REDIS_|MODEL_|ARTIFACT_ROOT|S3_|AWS_|API_|TRAINING_WORKERS|NODE_OPTIONS)/.test(k)) delete inherited[k];
    }
    const dataDir = path.join(this.dir, 'data', name);
    mkdirSync(dataDir, { recursive: true });
    return {
      ...inherited,
      NODE_ENV: 'production',
      DATA_DIR: dataDir,
      API_KEY,
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.redisUrl,
      ARTIFACT_ROOT: `s3://${BUCKET}/artifacts`,
      S3_ENDPOINT_URL: this.s3Endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      TRAINING_WORKERS: '0',
      MODEL_NAME: MODEL,
      // Rate limiting is off by default (#12); on here, with a budget no scenario's load reaches,
      // so that the shared scenario can see one budget across the APIs.
      RATE_LIMIT_PER_MINUTE: '1000000',
      SHUTDOWN_TIMEOUT: '10',
      LOG_LEVEL: 'info',
      ...extra,
    };
  }

  /** A (not yet started) API process on `port`, as `modelplane serve` from dist/. */
  apiProcess(name: string, port: number): ManagedProcess {
    return new ManagedProcess(
      name,
      { command: process.execPath, args: [...SERVE_NODE_FLAGS, this.main, 'serve'], env: this.env(name, { API_HOST: '127.0.0.1', API_PORT: String(port) }), cwd: ROOT },
      path.join(this.dir, 'logs', `${name}.log`),
    );
  }

  apiUrl(i: number): string {
    return `http://127.0.0.1:${this.ports.api[i]}`;
  }

  get apiUrls(): string[] {
    return this.ports.api.map((p) => `http://127.0.0.1:${p}`);
  }

  /** The workers' metrics listeners (`/metrics`, `/health`). */
  get workerMetricsUrls(): string[] {
    return this.ports.workerMetrics.map((p) => `http://127.0.0.1:${p}`);
  }

  every(): ManagedProcess[] {
    return [this.pg, this.redis, this.s3, ...this.apis, ...this.workers];
  }

  async initPostgres(): Promise<void> {
    mkdirSync(this.pgDir, { recursive: true });
    mkdirSync(path.join(this.dir, 'pg-socket'), { recursive: true });
    mkdirSync(path.join(this.dir, 'redis'), { recursive: true });
    if (this.pgIds !== undefined) {
      // The postgres user must reach its directories inside the harness's temp dir.
      chmodSync(this.dir, 0o755);
      chownSync(this.pgDir, this.pgIds.uid, this.pgIds.gid);
      chownSync(path.join(this.dir, 'pg-socket'), this.pgIds.uid, this.pgIds.gid);
    }
    execFileSync(path.join(this.pgBin, 'initdb'), ['-D', this.pgDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], {
      stdio: 'ignore',
      timeout: 120_000,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C' },
      ...(this.pgIds ?? {}),
    });
  }

  async startPostgres(deadlineMs = 30_000): Promise<void> {
    this.pg.start();
    const ok = await poll(async () => ((await this.pgQuery('postgres', 'select 1').then(() => true, () => false)) ? true : undefined), deadlineMs, 200);
    if (ok === undefined) throw new Error(`PostgreSQL did not accept connections within ${deadlineMs} ms:\n${this.pg.tail()}`);
  }

  async startRedis(deadlineMs = 15_000): Promise<void> {
    this.redis.start();
    const ok = await poll(async () => ((await tcpOpen(this.ports.redis)) ? true : undefined), deadlineMs, 100);
    if (ok === undefined) throw new Error(`redis-server did not listen within ${deadlineMs} ms:\n${this.redis.tail()}`);
  }

  async startS3(deadlineMs = 30_000): Promise<void> {
    this.s3.start();
    const ok = await poll(async () => ((await tcpOpen(this.ports.s3)) ? true : undefined), deadlineMs, 100);
    if (ok === undefined) throw new Error(`s3 server did not listen within ${deadlineMs} ms:\n${this.s3.tail()}`);
  }

  /** Runs one query against the harness's own PostgreSQL (a new connection each time). */
  async pgQuery(database: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${this.ports.pg}/${database}`, connectionTimeoutMillis: 3000, query_timeout: 10_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query(text, values);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Starts the backing services, migrates once (`modelplane migrate`), then APIs and workers. */
  async start(deadlineMs = 90_000): Promise<void> {
    await this.initPostgres();
    await this.startPostgres();
    await this.pgQuery('postgres', 'create database modelplane');
    await this.startRedis();
    await this.startS3();
    const migrate = execFileSync(process.execPath, [this.main, 'migrate'], { cwd: ROOT, env: this.env('migrate'), encoding: 'utf8', timeout: 60_000 });
    this.log(`migrate: ${migrate.trim()}`);
    for (const p of [...this.apis, ...this.workers]) p.start();
    for (const [i] of this.apis.entries()) {
      const up = await poll(async () => ((await request(`${this.apiUrl(i)}/health`, { timeoutMs: 2000 })).status === 200 ? true : undefined), deadlineMs, 250);
      if (up === undefined) throw new Error(`api${i + 1} did not answer /health within ${deadlineMs} ms:\n${this.apis[i]!.tail()}`);
    }
    // Workers answer /health on their metrics listener from the start of the process.
    for (const [i, url] of this.workerMetricsUrls.entries()) {
      const up = await poll(async () => ((await request(`${url}/health`, { timeoutMs: 2000 })).status === 200 ? true : undefined), deadlineMs, 250);
      if (up === undefined) throw new Error(`worker${i + 1} did not answer /health on its metrics port within ${deadlineMs} ms:\n${this.workers[i]!.tail()}`);
    }
  }

  /** Waits for `/ready` 200 on every API; resolves with the ones that did not get there. */
  async waitReady(deadlineMs: number): Promise<string[]> {
    const notReady: string[] = [];
    await Promise.all(
      this.apis.map(async (p, i) => {
        const ok = await poll(async () => ((await request(`${this.apiUrl(i)}/ready`, { timeoutMs: 3000 })).status === 200 ? true : undefined), deadlineMs, 250);
        if (ok === undefined) notReady.push(p.name);
      }),
    );
    return notReady;
  }

  /**
   * Puts the cluster back to full health after a scenario: backing services up, every API and
   * worker running (restarting any that died), APIs ready. Returns what had to be done.
   */
  async heal(deadlineMs = 60_000): Promise<string[]> {
    const actions: string[] = [];
    if (!this.pg.running) {
      await this.startPostgres();
      actions.push('started PostgreSQL');
    }
    if (!this.redis.running) {
      await this.startRedis();
      actions.push('started Redis');
    }
    if (!this.s3.running) {
      await this.startS3();
      actions.push('started S3');
    }
    for (const p of [...this.apis, ...this.workers]) {
      if (!p.running) {
        p.start();
        actions.push(`restarted ${p.name}`);
      }
    }
    const notReady = await this.waitReady(deadlineMs);
    if (notReady.length > 0) actions.push(`NOT READY after ${deadlineMs} ms: ${notReady.join(', ')}`);
    return actions;
  }

  /** The worker process whose pid is in a job's `worker_id` (`host:pid:instance`). */
  async jobWorker(jobId: string): Promise<{ workerId: string | null; process: ManagedProcess | undefined }> {
    const r = await this.pgQuery('modelplane', 'select worker_id from jobs where id = $1', [jobId]);
    const workerId = (r.rows[0]?.worker_id as string | null | undefined) ?? null;
    const pid = workerId === null ? undefined : Number(/:(\d+):[0-9a-f]{8}$/.exec(workerId)?.[1]);
    return { workerId, process: [...this.workers, ...this.apis].find((p) => p.pid !== undefined && p.pid === pid) };
  }

  /** Stops everything (APIs and workers first), each with a deadline, then SIGKILL. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.apis, ...this.workers].map((p) => p.stop('SIGTERM', 12_000)));
    await Promise.all([this.s3.stop('SIGTERM', 5000), this.redis.stop('SIGTERM', 5000), this.pg.stop('SIGINT', 10_000)]);
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** JSON of an API call with the admin key, or throws with the reply. */
export async function apiJson(base: string, method: string, urlPath: string, body?: unknown, timeoutMs = 30_000): Promise<any> {
  const r = await request(`${base}${urlPath}`, {
    method,
    headers: { 'x-api-key': API_KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    timeoutMs,
  });
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${urlPath}: ${r.status || r.error} ${r.body.slice(0, 300)}`);
  return json(r);
}
