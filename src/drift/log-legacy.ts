/**
 * Rows of the prediction log's table before blocks (`prediction_log`, one row per predicted row)
 * moved into blocks. Migration 008 moves every row there was, keeping each row's id as its sequence
 * number; the table stays (migrations are additive), so a replica of the previous version still
 * running during a rolling upgrade goes on writing into it, and the log's maintenance run moves
 * what it wrote into blocks numbered after the rows stored by then.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../store/schema.ts';
import { deleteLegacyRows, insertBlocks, legacyRows, type LegacyPredictionLogTable } from './drift.repository.ts';
import { encodeRows, type EncodedBlock } from './log-block.ts';

/** Rows read (and moved) per transaction. */
const CHUNK = 5000;
/** Most rows per block made from old rows. */
const BLOCK_ROWS = 4096;

type LegacyRow = Selectable<LegacyPredictionLogTable>;

/**
 * Moves every row of `prediction_log` into blocks, a chunk of rows per transaction (a chunk's
 * blocks are stored and its rows deleted together, so a move cut short is resumed, never doubled).
 * `keepIds`: each row's id becomes its sequence number (a block is a run of consecutive ids of one
 * model version); only while no block is numbered past those ids (the migration, on an empty block
 * table). Otherwise the rows are numbered after the last stored row, in id order. Resolves with
 * the number of rows moved. @throws Error naming a row whose kind is not a served kind
 */
export async function foldLegacyRows(db: Kysely<Database>, keepIds: boolean): Promise<number> {
  let moved = 0;
  for (;;) {
    const rows = await legacyRows(db, CHUNK);
    if (rows.length === 0) return moved;
    const runs = runsOf(rows, keepIds);
    const store = async (trx: Kysely<Database>): Promise<void> => {
      if (keepIds) {
        for (const run of runs) await insertBlocks(trx, [run.block], run.firstId);
      } else {
        await insertBlocks(
          trx,
          runs.map((r) => r.block),
        );
      }
      await deleteLegacyRows(trx, Number(rows[rows.length - 1]!.id));
    };
    if (db.isTransaction) await store(db);
    else await db.transaction().execute(store);
    moved += rows.length;
  }
}

/** Rows cut into runs of one model version (and, keeping ids, of consecutive ids), each a block. */
function runsOf(rows: readonly LegacyRow[], keepIds: boolean): { firstId: number; block: EncodedBlock }[] {
  const out: { firstId: number; block: EncodedBlock }[] = [];
  let start = 0;
  for (let i = 1; i <= rows.length; i++) {
    const prev = rows[i - 1]!;
    const row = rows[i];
    const continues = row !== undefined && row.model === prev.model && row.version === prev.version && i - start < BLOCK_ROWS && (!keepIds || Number(row.id) === Number(prev.id) + 1);
    if (continues) continue;
    const run = rows.slice(start, i);
    out.push({
      firstId: Number(run[0]!.id),
      block: encodeRows(
        prev.model,
        prev.version,
        run.map((r) => ({
          at: Number(r.at),
          latencyMs: Number(r.latency_ms),
          kind: r.kind,
          requestId: r.request_id,
          output: r.output,
          inputs: Buffer.from(r.inputs, 'base64'),
        })),
      ),
    });
    start = i;
  }
  return out;
}
