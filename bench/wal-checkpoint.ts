/**
 * Benchmark: how long SQLite commits hold the event loop while the prediction log writes, with
 * WAL checkpoints inside the commits (SQLite's `wal_autocheckpoint`, what a store did before) and
 * on the checkpoint thread (src/store/wal-checkpoint.ts, what the server's store does), side by
 * side in one run. Each round commits `--commits` blocks of `--kb` KB (a prediction-log flush at
 * ~13,000 rows/s is ~600 KB), one every `--gap` ms, and prints the commits' p50 / p90 / p99 / max.
 *
 *   node --import tsx bench/wal-checkpoint.ts [--commits 200] [--kb 600] [--gap 25] [--rounds 2]
 *
 * Figures to compare between the two modes on one machine (they move with the disk's sync time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqlite } from '../src/store/sqlite.ts';
import { WalCheckpointer } from '../src/store/wal-checkpoint.ts';
import { arg } from './common.ts';

const commits = arg('--commits', 200);
const kb = arg('--kb', 600);
const gap = arg('--gap', 25);
const rounds = arg('--rounds', 2);

const dir = mkdtempSync(path.join(os.tmpdir(), 'wal-checkpoint-'));

async function round(mode: 'in commits' | 'on the thread', n: number): Promise<string> {
  const file = path.join(dir, `${n}.db`);
  const db = openSqlite(file);
  for (const pragma of ['journal_mode = WAL', 'synchronous = NORMAL', 'busy_timeout = 5000']) db.exec(`PRAGMA ${pragma}`);
  db.exec('create table blocks (id integer primary key, data blob)');
  let checkpoints = 0;
  const checkpointer = mode === 'on the thread' ? new WalCheckpointer(file, db, { onCheckpoint: () => checkpoints++ }) : undefined;
  checkpointer?.start();
  const blob = new Uint8Array(kb * 1024).fill(7);
  const insert = db.prepare('insert into blocks (data) values (?)');
  const times: number[] = [];
  for (let i = 0; i < commits; i++) {
    const t = performance.now();
    db.exec('begin immediate');
    insert.run([blob]);
    db.exec('commit');
    times.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, gap));
  }
  await checkpointer?.close();
  db.close();
  times.sort((a, b) => a - b);
  const q = (p: number): string => times[Math.floor(p * (times.length - 1))]!.toFixed(2);
  return `checkpoints ${mode.padEnd(13)}: commit ms p50 ${q(0.5)}  p90 ${q(0.9)}  p99 ${q(0.99)}  max ${q(1)}${checkpointer === undefined ? '' : `  (${checkpoints} on the thread)`}`;
}

try {
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    console.log(await round('in commits', n++));
    console.log(await round('on the thread', n++));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
