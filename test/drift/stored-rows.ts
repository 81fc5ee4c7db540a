/**
 * Test helpers over the prediction log's blocks: rows written as blocks (one per model version of
 * each call), every stored row read back, decoded, in sequence order, and a drift service that
 * reads them.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import type { DatasetService } from '../../src/datasets/dataset.service.ts';
import { DriftService } from '../../src/drift/drift.service.ts';
import { PredictionLog } from '../../src/drift/prediction-log.ts';
import { Metrics } from '../../src/platform/metrics.ts';
import type { Registry } from '../../src/registry/registry.service.ts';
import type { Store } from '../../src/store/database.ts';
import { insertBlocks } from '../../src/drift/drift.repository.ts';
import { encodeRows, LogBlock, type LogRowValues } from '../../src/drift/log-block.ts';
import type { FloatRows } from '../../src/serving/runtime.ts';
import type { Database } from '../../src/store/schema.ts';

/**
 * A drift service over the store alone (no registry or datasets: for the prediction log's reads),
 * silent, with the periodic check off.
 */
export function logReadingDrift(store: Store): DriftService {
  const metrics = new Metrics();
  const log = pino({ level: 'silent' });
  return new DriftService({
    store,
    registry: {} as Registry,
    datasets: {} as DatasetService,
    metrics,
    log,
    predictionLog: new PredictionLog({ store, metrics, log }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 }),
    settings: { checkIntervalSeconds: 0, window: 1000, minWindow: 1, shareThreshold: 0.5 },
  });
}

/** A logged row as the old table held it, with its inputs as bytes. */
export interface StoredRow {
  readonly id: number;
  readonly at: number;
  readonly model: string;
  readonly version: string;
  readonly request_id: string | null;
  readonly kind: string;
  readonly latency_ms: number;
  readonly inputs: Uint8Array;
  readonly output: string;
}

export type NewRow = Omit<StoredRow, 'id' | 'inputs'> & { readonly inputs: Uint8Array };

/** Row `r` of `input` (`f` values a row) as a block stores it. */
export function inputBytes(input: FloatRows, r: number, f: number): Uint8Array {
  const bytes = input.BYTES_PER_ELEMENT * f;
  return new Uint8Array(input.buffer, input.byteOffset + r * bytes, bytes);
}

/** Writes rows as one block per model version (in order of first appearance). */
export async function insertRows(db: Kysely<Database>, rows: readonly NewRow[]): Promise<void> {
  const groups = new Map<string, LogRowValues[]>();
  for (const r of rows) {
    const key = `${r.model}\u0000${r.version}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push({ at: r.at, latencyMs: r.latency_ms, kind: r.kind, requestId: r.request_id, output: r.output, inputs: r.inputs });
  }
  const blocks = [...groups].map(([key, values]) => {
    const [model, version] = key.split('\u0000') as [string, string];
    return encodeRows(model, version, values);
  });
  await insertBlocks(db, blocks);
}

/** Every stored row, in sequence order. */
export async function storedRows(db: Kysely<Database>): Promise<StoredRow[]> {
  const blocks = await db.selectFrom('prediction_log_blocks').selectAll().orderBy('first_seq').execute();
  const out: StoredRow[] = [];
  for (const b of blocks) {
    const block = new LogBlock(b.data);
    for (let i = 0; i < block.rows; i++) {
      out.push({
        id: Number(b.first_seq) + i,
        at: block.at[i]!,
        model: b.model,
        version: b.version,
        request_id: block.requestId(i),
        kind: block.kindOf(i),
        latency_ms: block.latency[i]!,
        inputs: block.input(i),
        output: block.output(i),
      });
    }
  }
  return out;
}

/** Rows stored. */
export async function countRows(db: Kysely<Database>): Promise<number> {
  const r = await db.selectFrom('prediction_log_blocks').select((eb) => eb.fn.sum<number>('row_count').as('n')).executeTakeFirstOrThrow();
  return Number(r.n ?? 0);
}
