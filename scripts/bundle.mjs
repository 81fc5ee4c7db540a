#!/usr/bin/env node
// Bundles the server into dist/ (npm run build:server runs it after the typecheck): one ES module
// per entry point (the CLI, and every module a thread loads by URL: the worker threads' entries and
// the training job handler) and shared chunks, all in that one folder. A start then reads a handful of
// files instead of resolving and compiling some 650 modules one by one (most of a restart's time
// before it listens), and V8's code cache covers them whole.
//
// Left outside the bundle, loaded from node_modules as usual: native addons; packages that find
// their own files by path at run time (BullMQ's Lua scripts, pino's transport threads, the API-docs
// assets, ioredis' error stacks, protobufjs' dynamic require); and the backends only a scaled-out
// deployment loads (PostgreSQL, Redis, S3).
//
// Usage: node scripts/bundle.mjs [--outdir DIR]  (DIR one level below the package root, as dist/).
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const i = process.argv.indexOf('--outdir');
const outdir = path.resolve(root, i > 0 ? process.argv[i + 1] : 'dist');
if (path.dirname(outdir) !== root) {
  // src/paths.ts finds the package root as the parent of the folder the code runs from.
  process.stderr.write(`bundle: --outdir must be a folder directly inside ${root}\n`);
  process.exit(2);
}

const external = [
  'better-sqlite3',
  'onnxruntime-node',
  'bullmq',
  'ioredis',
  'pg',
  'pg-*',
  '@aws-sdk/*',
  '@smithy/*',
  'pino',
  'pino-pretty',
  'thread-stream',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  'redoc',
  'onnx-proto',
  'protobufjs',
];

/**
 * The modules another thread loads by URL: every `spawnWorker(import.meta.url, './x', ...)` and
 * `siblingModule(import.meta.url, './x')` in src/ (util/threads.ts). Each becomes an entry point of
 * its own, named by its file name, so the URL the code builds finds it beside the chunk that asks.
 */
function threadEntries() {
  const found = new Map();
  const visit = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) visit(file);
      else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(file, 'utf8').matchAll(/(?:spawnWorker|siblingModule)\(\s*import\.meta\.url,\s*'(\.\/[^']+)'/g)) {
          const entry = path.relative(root, path.join(dir, `${m[1]}.ts`));
          const name = path.basename(entry);
          if (found.has(name) && found.get(name) !== entry) throw new Error(`bundle: two thread entry points named ${name}: ${found.get(name)}, ${entry}`);
          found.set(name, entry);
        }
      }
    }
  };
  visit(path.join(root, 'src'));
  return [...found.values()].sort();
}

const entryPoints = ['src/main.ts', ...threadEntries()];
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints,
  outdir,
  // Flat: a worker is started by URL relative to the module that starts it (`./forest-worker.js`),
  // which in the bundle is a chunk in the same folder.
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  // CommonJS packages inside an ES module bundle call require() for Node's own modules.
  banner: { js: "import { createRequire as __modelplaneCreateRequire } from 'node:module'; const require = __modelplaneCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
