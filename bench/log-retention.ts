/**
 * Benchmark: how long the prediction log's retention holds the event loop on SQLite, where every
 * statement runs on it. Builds a log of `--blocks` blocks of `--rows` rows (4 features, iris-sized
 * answers, about what a busy server writes in one 5-minute retention period), then trims it to
 * `--keep` rows by count while a 1 ms interval timer measures the longest gap between its ticks.
 *
 *   node --import tsx bench/log-retention.ts [--blocks 1000] [--rows 2000] [--keep 10000]
 *
 * Prints the time the retention run took and the longest stall. A figure to compare between
 * versions on one machine, not a bound: it moves with the disk and the page cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { insertBlocks } from '../src/drift/drift.repository.ts';
import { encodeRows, type LogRowValues } from '../src/drift/log-block.ts';
import { PredictionLog } from '../src/drift/prediction-log.ts';
import { Metrics } from '../src/platform/metrics.ts';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { arg } from './common.ts';

const blocks = arg('--blocks', 1000);
const rowsPerBlock = arg('--rows', 2000);
const keep = arg('--keep', 10_000);

const dir = mkdtempSync(path.join(os.tmpdir(), 'log-retention-'));
try {
  const store = await openStore({ dataDir: dir, sqlitePath: path.join(dir, 'bench.db') });
  await migrateToLatest(store);
  const rows: LogRowValues[] = Array.from({ length: rowsPerBlock }, (_, i) => ({
    at: i,
    latencyMs: 0.2,
    kind: 'single',
    requestId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    output: '{"prediction":"setosa","probabilities":{"setosa":0.98,"versicolor":0.01,"virginica":0.01}}',
    inputs: new Uint8Array(Float32Array.of(5.1, 3.5, 1.4, 0.2).buffer),
  }));
  const block = encodeRows('bench', '1', rows);
  for (let b = 0; b < blocks; b += 50) await insertBlocks(store.db, Array.from({ length: Math.min(50, blocks - b) }, () => block));

  const log = new PredictionLog({ store, metrics: new Metrics(), log: pino({ level: 'warn' }) }, { sampleRate: 1, bufferRows: 10, retentionDays: 0, maxRows: keep, retentionMs: 3_600_000 });
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    worst = Math.max(worst, t - last);
    last = t;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  worst = 0;
  last = performance.now();
  const t0 = performance.now();
  await log.enforceRetention();
  const took = performance.now() - t0;
  worst = Math.max(worst, performance.now() - last);
  clearInterval(timer);
  console.log(`${blocks} blocks x ${rowsPerBlock} rows trimmed to ${keep}: retention ${took.toFixed(0)} ms, longest event-loop stall ${worst.toFixed(1)} ms`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
