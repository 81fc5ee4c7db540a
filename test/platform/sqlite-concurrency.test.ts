/**
 * The embedded SQLite store under concurrent writes of every kind (tracking, registry, datasets,
 * keys, training jobs): a writer waits its turn, it never surfaces as `database is locked`.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx, multipart } from '../registry/fixtures.ts';

const ROUNDS = 6;

/**
 * Another connection writing to the same file from another thread, as a training thread does
 * (it opens its own store): short write transactions, back to back, until told to stop.
 */
const OTHER_WRITER = `
const { parentPort, workerData } = require('node:worker_threads');
// The same SQLite library as the store's (src/store/database.ts: node:sqlite on Node 24 and later,
// better-sqlite3 before): two copies of SQLite in one process do not see each other's file locks,
// and their writers then corrupt the file, which is not what this test is about.
const db = workerData.nodeSqlite ? new (require('node:sqlite').DatabaseSync)(workerData.file) : new (require(workerData.driver))(workerData.file);
db.exec('PRAGMA busy_timeout = 5000');
db.exec('CREATE TABLE IF NOT EXISTS other_writer (n INTEGER)');
let stop = false;
parentPort.on('message', () => { stop = true; });
const insert = db.prepare('INSERT INTO other_writer (n) VALUES (?)');
let n = 0;
const loop = () => {
  if (stop) { db.close(); parentPort.postMessage(n); return; }
  for (let i = 0; i < 20; i += 1) {
    db.exec('BEGIN IMMEDIATE');
    insert.run(n++);
    db.exec('COMMIT');
  }
  // A short pause after each burst, as a training thread's writes have: a writer that never
  // pauses starves the others' busy-timeout retries (seen with node:sqlite on Node 24).
  setTimeout(loop, 2);
};
parentPort.postMessage('ready');
loop();
`;

describe('SQLite: concurrent writes of every kind', { timeout: 300_000 }, () => {
  let t: TestApp;
  const runs: string[] = [];
  before(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PER_MINUTE: '0' } });
    const h = t.headers('admin');
    for (let i = 0; i < 4; i += 1) {
      const r = await t.app.inject({ method: 'POST', url: '/experiments/e/runs', headers: h, payload: { create_experiment: true, tags: { k: 'v' } } });
      assert.equal(r.statusCode, 201, r.body);
      runs.push(r.json<{ run_id: string }>().run_id);
    }
  });
  after(async () => {
    await t?.close();
  });

  it('answers every request with a non-5xx status', async () => {
    const h = t.headers('admin');
    const model = classifierOnnx();
    const requests = (round: number) => {
      const run = runs[round % runs.length]!;
      const mp = multipart({}, { bytes: model });
      return [
        { method: 'POST', url: `/runs/${run}/log`, payload: { metrics: [{ key: 'm', value: round, step: round }], tags: { [`t${round}`]: 'x' } } },
        { method: 'DELETE', url: `/runs/${run}/tags/k` },
        { method: 'PATCH', url: `/runs/${run}`, payload: { run_name: `r${round}` } },
        { method: 'POST', url: '/experiments/e/runs', payload: {} },
        { method: 'POST', url: '/experiments', payload: { name: `x${round}` } },
        { method: 'PATCH', url: '/experiments/e', payload: { tags: { round: String(round) } } },
        { method: 'POST', url: '/models/cm/versions', headers: mp.headers, payload: mp.payload },
        { method: 'PATCH', url: '/models/cm', payload: { description: `d${round}` } },
        { method: 'POST', url: '/models/transition', payload: { name: 'cm', version: 1, stage: round % 2 === 0 ? 'Staging' : 'None' } },
        { method: 'PUT', url: '/models/cm/aliases/champion', payload: { version: 1 } },
        { method: 'POST', url: `/datasets/ds${round % 2}`, headers: { 'content-type': 'text/csv' }, payload: 'a,b,y\n1,2,0\n3,4,1\n' },
        { method: 'POST', url: '/keys', payload: { name: `k${round}`, role: 'read' } },
        { method: 'POST', url: '/train', payload: { dataset: 'iris', algorithm: 'logistic_regression', experiment_name: 'e' } },
      ];
    };
    const all = Array.from({ length: ROUNDS }, (_, round) => requests(round)).flat();
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const other = new Worker(OTHER_WRITER, { eval: true, workerData: { driver, nodeSqlite: Number(process.versions.node.split('.')[0]) >= 24, file: path.join(t.dataDir, 'modelplane.db') } });
    await new Promise((resolve, reject) => {
      other.once('message', resolve);
      other.once('error', reject);
    });
    const answers = await Promise.all(
      all.map((r) =>
        t.app.inject({
          method: r.method as 'POST',
          url: r.url,
          headers: { ...h, ...('headers' in r ? r.headers : {}) },
          ...('payload' in r ? { payload: r.payload as never } : {}),
        }),
      ),
    );
    const done = new Promise((resolve) => other.once('message', resolve));
    other.postMessage('stop');
    assert.ok(Number(await done) > 0, 'the other connection wrote');
    await other.terminate();
    const failed = answers.map((a, i) => ({ a, r: all[i]! })).filter(({ a }) => a.statusCode >= 500);
    assert.deepEqual(
      failed.map(({ a, r }) => `${r.method} ${r.url}: ${a.statusCode} ${a.body}`),
      [],
    );
    // The writes happened: not all refused for another reason.
    assert.ok(answers.filter((a) => a.statusCode < 300).length > all.length / 2, answers.map((a) => a.statusCode).join(' '));
  });
});
