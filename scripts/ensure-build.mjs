#!/usr/bin/env node
// Builds what is out of date before `npm start` / `npm run demo`: the server (tsc, when a file
// under src/ is newer than dist/main.js) and the web UI (vite, when a file under ui/ is newer than
// ui/dist/index.html). Production runs the compiled JavaScript; a fresh checkout builds once.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

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

if (stale(path.join(root, 'dist', 'main.js'), newest(path.join(root, 'src')), statSync(path.join(root, 'tsconfig.build.json')).mtimeMs)) run('build:server');
if (stale(path.join(root, 'ui', 'dist', 'index.html'), newest(path.join(root, 'ui'), ['dist', 'node_modules']))) run('build:ui');
