/** The CLI (commander): serve | worker | migrate | keys | train | predict | datasets. Loaded by main.ts. */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { KeyService, ROLES, isRole } from './platform/auth.ts';
import { createLogger } from './platform/logging.ts';
import { serve } from './server.ts';
import { addTrainingCommands } from './training/pipeline-cli.ts';
import { openConfiguredStore } from './backends.ts';
import { onnxRuntime } from './onnx/runtime.ts';
import type { Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import { VERSION } from './version.ts';

interface CommonOptions {
  host?: string;
  port?: number;
  dataDir?: string;
}

function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected an integer from 0 to 65535');
  return Number(value);
}

function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) throw new InvalidArgumentError('expected an integer from 1 to 256');
  return Number(value);
}

/** Configuration from the environment with CLI flags on top; a bad value exits 1 with one line. */
function configFrom(opts: CommonOptions & { defaultModelName?: string }): Config {
  return loadConfig(process.env, {
    ...(opts.host === undefined ? {} : { host: opts.host }),
    ...(opts.port === undefined ? {} : { port: opts.port }),
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
    ...(opts.defaultModelName === undefined ? {} : { defaultModelName: opts.defaultModelName }),
  });
}

async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openConfiguredStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const program = new Command();
program.name('modelplane').description('MLOps control plane and model server').version(VERSION);

program
  .command('serve', { isDefault: true })
  .description('start the HTTP server (configuration from environment variables; flags override)')
  .option('--host <host>', 'listen address (API_HOST)')
  .option('--port <port>', 'listen port (API_PORT)', parsePort)
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .option('--workers <n>', 'number of worker processes (node:cluster)', parsePositiveInt, 1)
  .option('--demo', 'on first start train iris-demo (random forest on built-in iris), promote it to Production and serve it by default')
  .action(async (opts: CommonOptions & { workers: number; demo?: boolean }) => {
    const config = configFrom({ ...opts, ...(opts.demo === true ? { defaultModelName: 'iris-demo' } : {}) });
    await serve(config, {
      workers: opts.workers,
      ...(opts.demo === true
        ? {
            beforeListen: async (ctx) => {
              const { ensureDemoModel } = await import('./training/pipeline-demo.ts');
              await ensureDemoModel({ services: ctx.services, onnx: onnxRuntime, log: ctx.log, maxModelBytes: ctx.config.trainingMaxModelBytes });
            },
          }
        : {}),
    });
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .action(async (opts: CommonOptions) => {
    const config = configFrom(opts);
    const store = await openConfiguredStore(config, { migrate: false });
    let results;
    try {
      results = { r: await migrateToLatest(store), description: store.description };
    } finally {
      await store.close();
    }
    const applied = results.r.filter((m) => m.status === 'Success').map((m) => m.migrationName);
    process.stdout.write(applied.length === 0 ? `${results.description}: up to date\n` : `${results.description}: applied ${applied.join(', ')}\n`);
  });

const keys = program.command('keys').description('manage API keys (stored hashed)');
keys
  .command('create')
  .description('create a key and print it once')
  .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
  .option('--name <name>', 'a label for the key', 'cli')
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .action(async (opts: CommonOptions & { role: string; name: string }) => {
    if (!isRole(opts.role)) throw new InvalidArgumentError(`--role must be one of ${ROLES.join(', ')}`);
    const role = opts.role;
    const config = configFrom(opts);
    const created = await withStore(config, async (store) => {
      const service = new KeyService(store, undefined, createLogger({ logLevel: 'silent' }));
      return service.create(opts.name, role, 'cli');
    });
    process.stdout.write(`${created.key}\n`);
    process.stderr.write(`created key ${created.id} (${created.name}, role ${created.role}); it is shown only once\n`);
  });
keys
  .command('list')
  .description('list keys (never the keys themselves)')
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .option('--json', 'print JSON')
  .action(async (opts: CommonOptions & { json?: boolean }) => {
    const config = configFrom(opts);
    const rows = await withStore(config, async (store) => new KeyService(store, undefined, createLogger({ logLevel: 'silent' })).list());
    if (opts.json === true) {
      process.stdout.write(`${JSON.stringify(rows.map(({ key_hash: _h, ...r }) => r), null, 2)}\n`);
      return;
    }
    for (const r of rows) {
      const state = r.revoked_at === null ? 'active' : `revoked ${new Date(r.revoked_at).toISOString()}`;
      process.stdout.write(`${r.id}  ${r.prefix}…  ${r.role.padEnd(7)}  ${r.name}  ${state}\n`);
    }
  });
keys
  .command('revoke <idOrName>')
  .description('revoke a key by id or name')
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .action(async (idOrName: string, opts: CommonOptions) => {
    const config = configFrom(opts);
    const n = await withStore(config, async (store) => new KeyService(store, undefined, createLogger({ logLevel: 'silent' })).revoke(idOrName, 'cli'));
    if (n === 0) {
      process.stderr.write(`no active key with id or name '${idOrName}'\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`revoked ${n} key(s)\n`);
  });

addTrainingCommands(program, { configFrom });

program
  .command('worker')
  .description('run training jobs from the Redis queue (needs REDIS_URL and the API\'s DATABASE_URL); SIGTERM re-queues running jobs')
  .option('--data-dir <dir>', 'data directory (DATA_DIR)')
  .option('--concurrency <n>', 'jobs run at once, one worker process each (default TRAINING_WORKERS)', parsePositiveInt)
  .action(async (opts: CommonOptions & { concurrency?: number }) => {
    const config = configFrom(opts);
    const log = createLogger(config);
    const { startWorkerProcess } = await import('./training/worker.process.ts');
    const worker = await startWorkerProcess(config, log, opts.concurrency === undefined ? {} : { concurrency: opts.concurrency });
    const stop = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'stopping training worker');
      worker.close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'training worker shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

// Piped into `head` (or any reader that stops early): the closed pipe ends the output, quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// `serve` is the default command, so commander reads an unknown word as an argument to it
// ("too many arguments for 'serve'"); say what it is instead.
const first = process.argv[2];
const known = new Set(['help', ...program.commands.flatMap((c) => [c.name(), ...c.aliases()])]);
if (first !== undefined && !first.startsWith('-') && !known.has(first)) {
  process.stderr.write(`modelplane: unknown command '${first}' (commands: ${[...known].filter((c) => c !== 'help').join(', ')}; see modelplane --help)\n`);
  process.exit(1);
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`modelplane: ${err.message}\n`);
  } else {
    process.stderr.write(`modelplane: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
