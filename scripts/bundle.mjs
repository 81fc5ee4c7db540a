#!/usr/bin/env node
// Bundles the server into dist/ (npm run build:server runs it after the typecheck): one ES module
// per entry point (the CLI and the three kinds of worker thread, plus the training job handler a
// thread imports by URL) and shared chunks, all in that one folder. A start then reads a handful of
// files instead of resolving and compiling some 650 modules one by one (most of a restart's time
// before it listens), and V8's code cache covers them whole.
//
// Left outside the bundle, loaded from node_modules as usual: native addons; packages that find
// their own files by path at run time (BullMQ's Lua scripts, pino's transport threads, the API-docs
// assets, ioredis' error stacks, protobufjs' dynamic require); and the backends only a scaled-out
// deployment loads (PostgreSQL, Redis, S3).
//
// Usage: node scripts/bundle.mjs [--outdir DIR]  (DIR one level below the package root, as dist/).
import { rmSync } from 'node:fs';
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

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: [
    'src/main.ts',
    'src/training/worker.thread.ts',
    'src/training/train-handler.ts',
    'src/ml/forest-worker.ts',
    'src/serving/inference-worker.ts',
  ],
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
