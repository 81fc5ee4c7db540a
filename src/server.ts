import cluster from 'node:cluster';
import { performance } from 'node:perf_hooks';
import { buildApp } from './app.ts';
import { openConfiguredStore } from './backends.ts';
import type { Config } from './config.ts';
import { closeContext, openContext, type AppContext } from './context.ts';
import { ensureBootstrapKey } from './platform/auth.ts';
import { createLogger } from './platform/logging.ts';
import { listenMetrics, renderMetrics, serveClusterMetrics, shareWorkerRegistry, type MetricsListener } from './platform/metrics.ts';
import { jobThreads } from './training/job-threads.ts';
import { reduceHeapWhenQuiet } from './util/heap.ts';

export interface ServeOptions {
  /** Number of node:cluster workers; 1 serves from this process. */
  readonly workers: number;
  /** Hook run after the app is built, before the services start and the server listens (the demo uses it). */
  readonly beforeListen?: (ctx: AppContext) => Promise<void>;
}

/** A running server, for callers (and tests) that need to stop it. */
export interface RunningServer {
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Starts serving. With `workers > 1` this process becomes the cluster primary: it applies
 * migrations and creates the bootstrap key once, forks the workers, restarts any that crash and
 * aggregates their metrics; each worker then runs `serveOne`.
 */
export async function serve(config: Config, options: ServeOptions): Promise<RunningServer | undefined> {
  if (options.workers > 1 && cluster.isPrimary) {
    await runPrimary(config, options.workers);
    return undefined;
  }
  return serveOne(config, options, cluster.isWorker);
}

async function prepareStore(config: Config, log: ReturnType<typeof createLogger>): Promise<void> {
  // Waits for a database that is not up yet (retrying with backoff) instead of exiting.
  const store = await openConfiguredStore(config, { waitForStore: true, log });
  try {
    const created = await ensureBootstrapKey(store, config.apiKey, config.dataDir);
    if (created !== undefined) announceBootstrapKey(created.key, config.dataDir, log);
  } finally {
    await store.close();
  }
}

function announceBootstrapKey(key: string, dataDir: string, log: ReturnType<typeof createLogger>): void {
  // Printed once, to the terminal only (never logged): the key is not stored anywhere else but the file.
  process.stderr.write(
    `\nNo API key was configured, so an admin key was generated (stored hashed; copy kept in ${dataDir}/admin.key, mode 0600):\n\n    ${key}\n\nUse it as: curl -H "X-API-Key: $(cat ${dataDir}/admin.key)" ...\n\n`,
  );
  log.info({ file: `${dataDir}/admin.key` }, 'generated bootstrap admin key');
}

async function runPrimary(config: Config, workers: number): Promise<void> {
  const log = createLogger(config);
  await prepareStore(config, log);
  serveClusterMetrics();
  if (config.prometheus.enabled && config.prometheus.port !== undefined) {
    // The separate listener belongs to a single process; here the API port's /metrics aggregates every worker.
    log.warn({ port: config.prometheus.port }, 'PROMETHEUS_PORT is not served with --workers N; scrape /metrics on the API port, which aggregates every worker');
  }
  let stopping = false;
  const fork = (): void => {
    cluster.fork({ MODELPLANE_CLUSTER_WORKER: '1' });
  };
  // The first worker starts alone, the others once it listens: a first start's one-time work
  // before listening (`serve --demo` training the demo model on a fresh data directory) is then
  // done once, not by every worker at the same moment (which registered the demo model N times).
  fork();
  cluster.once('listening', () => {
    for (let i = 1; i < workers; i++) fork();
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log.error({ pid: worker.process.pid, code, signal }, 'worker died; starting a new one');
    setTimeout(fork, 500);
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(1), (config.shutdownTimeoutSeconds + 5) * 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log.info({ workers, host: config.host, port: config.port }, 'cluster primary started');
}

async function serveOne(config: Config, options: ServeOptions, isWorker: boolean): Promise<RunningServer> {
  const t0 = performance.now();
  const log = createLogger(config);
  if (!isWorker) await prepareStore(config, log);
  // Every process of `serve --workers N` runs TRAINING_WORKERS jobs and serves: their jobs share the cores less one.
  const threads = jobThreads({ configured: config.trainingThreads, serving: true, concurrentJobs: config.trainingWorkers * options.workers });
  const ctx = await openContext(config, log, { backends: { migrate: false, waitForStore: true, queue: { jobThreads: threads } } });
  const { services } = ctx;
  let metricsListener: MetricsListener | undefined;
  try {
    const app = await buildApp(ctx);
    shareWorkerRegistry(services.metrics);
    if (options.beforeListen !== undefined) await options.beforeListen(ctx);
    await services.start();
    const address = await app.listen({ host: config.host, port: config.port });
    if (config.prometheus.enabled && config.prometheus.port !== undefined && !isWorker) {
      metricsListener = await listenMetrics({
        host: config.host,
        port: config.prometheus.port,
        metrics: { render: () => renderMetrics(services.metrics), contentType: services.metrics.registry.contentType },
        ...(config.prometheus.requireAuth ? { authenticate: (key: string) => services.keys.authenticate(key) } : {}),
        log,
      });
      log.info({ address: metricsListener.url }, 'metrics listener ready');
    }
    log.info({ address, startup_ms: Math.round(performance.now() - t0), store: ctx.backends.store.description }, 'modelplane ready');
    // Start-up's garbage and the young generation it grew are handed back once the server is
    // quiet (util/heap.ts); under load V8 grows the young generation again.
    const heapReduction = reduceHeapWhenQuiet();
    heapReduction.done.then(
      (r) => {
        if (r !== undefined) log.debug({ rss_before: r.rssBefore, rss_after: r.rssAfter, ms: Math.round(r.ms) }, 'start-up memory handed back');
      },
      (err: unknown) => log.warn({ err }, 'could not hand back start-up memory'),
    );

    let closing: Promise<void> | undefined;
    let draining = false;
    // While draining, every answer tells its client to close the connection, so no kept-alive
    // socket is left for the listener's close to cut under a request the client is sending.
    app.server.on('request', (_req, res) => {
      if (draining && !res.headersSent) res.setHeader('connection', 'close');
    });
    const close = (): Promise<void> => {
      closing ??= (async () => {
        const deadline = setTimeout(() => {
          log.error('graceful shutdown deadline passed; exiting');
          process.exit(1);
        }, config.shutdownTimeoutSeconds * 1000);
        deadline.unref();
        heapReduction.cancel();
        // Readiness first: balancers stop sending while requests are still answered (drain).
        services.status.markShuttingDown();
        draining = true;
        const drainMs = Math.min(config.shutdownDrainSeconds * 1000, (config.shutdownTimeoutSeconds * 1000) / 2);
        if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
        // Stops accepting, closes idle kept-alive sockets, waits for in-flight requests.
        await app.close();
        await metricsListener?.close();
        await closeContext(ctx);
        clearTimeout(deadline);
      })();
      return closing;
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'shutting down');
      close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    return { address, close };
  } catch (err) {
    await metricsListener?.close();
    await closeContext(ctx);
    throw err;
  }
}
