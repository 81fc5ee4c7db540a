/**
 * The modelplane server as deployed, for the benchmarks: production and the container image run the
 * compiled JavaScript (`npm run build`, then `node dist/main.js serve`), not the TypeScript sources
 * through tsx, which adds start-up work and memory (the transpiler and its cache live in the process)
 * and would make RSS and throughput figures describe something nobody runs. The build is refreshed
 * whenever any file under src/ is newer than dist/main.js.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';

/** The repository root (the folder holding package.json). */
export const ROOT = path.resolve(import.meta.dirname, '..');

const DIST_MAIN = path.join(ROOT, 'dist', 'main.js');

/** Newest modification time (ms since epoch) of any file below `dir`. */
function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Runs `npm run build` when dist/main.js is missing or older than any file under src/, and returns
 * the path of dist/main.js. A failed build throws with the compiler's output; tsc still writes
 * files when types are wrong, so dist/main.js is then dated back to the epoch to force a rebuild on
 * the next run instead of benchmarking a build that did not compile cleanly.
 */
export function ensureCompiledBuild(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  const srcNewest = newestMtimeMs(path.join(ROOT, 'src'));
  if (existsSync(DIST_MAIN) && statSync(DIST_MAIN).mtimeMs >= srcNewest) return DIST_MAIN;
  log(existsSync(DIST_MAIN) ? 'src/ changed since the last build: npm run build' : 'no dist/main.js: npm run build');
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) {
    if (existsSync(DIST_MAIN)) utimesSync(DIST_MAIN, 0, 0);
    throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
  return DIST_MAIN;
}

/**
 * Variables that would switch backends away from the defaults (embedded SQLite, in-memory cache)
 * or point the server at another model source; removed from the inherited environment so a
 * benchmark measures the configuration it states.
 */
const BACKEND_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'MODEL_PATH', 'MODEL_KEY', 'S3_BUCKET_NAME', 'MODEL_NAME', 'MODEL_STAGE'];

/**
 * Node flags of the container image's ENTRYPOINT (see the Dockerfile), so the benchmarks run what it
 * runs; `BENCH_NODE_FLAGS` (space-separated) replaces them to compare settings.
 */
export const SERVE_NODE_FLAGS = process.env['BENCH_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? ['--max-semi-space-size=8'];

/**
 * Starts `node --max-semi-space-size=8 dist/main.js serve` (building first when needed) with `env`
 * on top of this process's environment minus the backend variables above. The server's stderr is
 * passed through.
 */
export function startCompiledServer(env: Record<string, string>): ChildProcess {
  const main = ensureCompiledBuild();
  const inherited = { ...process.env };
  for (const name of BACKEND_VARIABLES) delete inherited[name];
  return spawn(process.execPath, [...SERVE_NODE_FLAGS, main, 'serve'], { cwd: ROOT, env: { ...inherited, NODE_ENV: 'production', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}
