#!/usr/bin/env node
// `npm start` / `npm run demo`: builds what is out of date, then runs the CLI in this same process
// (one Node start, not two). Out of date: the server bundle (typecheck + scripts/bundle.mjs, when a
// file under src/ or the build scripts is newer than dist/main.js) and the web UI (vite, when a
// file under ui/ is newer than ui/dist/index.html). A fresh checkout builds once.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');

/** Newest modification time under `dir`, skipping `skip` folders. */
function newest(dir, skip = []) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skip.includes(entry.name)) t = Math.max(t, newest(full, skip));
    } else if (entry.isFile()) {
      t = Math.max(t, statSync(full).mtimeMs);
    }
  }
  return t;
}

function stale(output, ...inputs) {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  return inputs.some((input) => input > built);
}

function run(script) {
  process.stderr.write(`modelplane: npm run ${script}\n`);
  const r = spawnSync('npm', ['run', '--silent', script], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// Only in a source checkout: an installed package has dist/ and ui/dist/ and no sources.
if (existsSync(path.join(root, 'src'))) {
  const mtime = (file) => statSync(path.join(root, file)).mtimeMs;
  if (stale(path.join(root, 'dist', 'main.js'), newest(path.join(root, 'src')), mtime('tsconfig.build.json'), mtime('scripts/bundle.mjs'))) run('build:server');
  if (stale(path.join(root, 'ui', 'dist', 'index.html'), newest(path.join(root, 'ui'), ['dist', 'node_modules']))) run('build:ui');
}

await import(pathToFileURL(path.join(root, 'dist', 'main.js')).href);
