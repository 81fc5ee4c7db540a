/**
 * SQL of experiment tracking. Every function takes a Kysely instance or a transaction, so the
 * service decides what runs atomically; rows come back as stored and the service maps them to
 * domain objects. Searches are translated from the parsed filter AST into EXISTS subqueries over
 * the indexed tables, with every user value bound as a parameter: the only raw SQL spliced in is
 * chosen from closed sets (operators, column and table names) by this file.
 */
import { CompiledQuery, sql, type Generated, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely';
import type { Dialect } from '../store/database.ts';
import type { Database } from '../store/schema.ts';
import type { Comparison, ComparisonOperator, OrderByClause } from './search-filter.ts';

declare module '../store/schema.ts' {
  interface Database {
    experiments: ExperimentTable;
    experiment_tags: ExperimentTagTable;
    runs: RunTable;
    params: ParamTable;
    tags: TagTable;
    metrics: MetricTable;
    latest_metrics: LatestMetricTable;
    run_outputs: RunOutputTable;
  }
}

export interface ExperimentTable {
  experiment_id: Generated<number>;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time: number;
  last_update_time: number;
}

export interface ExperimentTagTable {
  experiment_id: number;
  key: string;
  value: string;
}

export interface RunTable {
  run_id: string;
  experiment_id: number;
  run_name: string;
  status: string;
  start_time: number | null;
  end_time: number | null;
  lifecycle_stage: string;
  artifact_uri: string;
  user_id: string;
  dataset_name: string | null;
  dataset_version: number | null;
  dataset_digest: string | null;
  deleted_time: number | null;
}

export interface ParamTable {
  run_id: string;
  key: string;
  value: string;
}

export interface TagTable {
  run_id: string;
  key: string;
  value: string;
}

export interface MetricTable {
  id: Generated<number>;
  run_id: string;
  key: string;
  /** 0 when `is_nan` (SQLite cannot store NaN); ±Infinity is stored as is. */
  value: number;
  timestamp: number;
  step: number;
  is_nan: number;
}

export interface LatestMetricTable {
  run_id: string;
  key: string;
  value: number;
  timestamp: number;
  step: number;
  is_nan: number;
}

export interface RunOutputTable {
  run_id: string;
  model_name: string;
  model_version: number;
  created_time: number;
}

export type ExperimentRow = { experiment_id: number } & Omit<ExperimentTable, 'experiment_id'>;
export type RunRow = RunTable;
export type MetricRow = Omit<MetricTable, 'id'>;
export type LatestMetricRow = LatestMetricTable;

type Db = Kysely<Database>;

/** Length of the value prefix covered by the params/tags (key, value) indexes (see migration 003). */
const INDEXED_VALUE_CHARS = 200;
/** Rows per multi-row INSERT: far below SQLite's and PostgreSQL's bound-parameter limits. */
const INSERT_CHUNK = 500;

function chunks<T>(rows: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) out.push(rows.slice(i, i + INSERT_CHUNK));
  return out;
}

export { isUniqueViolation } from '../store/database.ts';

// ---------------------------------------------------------------------------------------------
// Experiments

export const experimentsRepository = {
  async insert(db: Db, row: Omit<ExperimentRow, 'experiment_id'>): Promise<number> {
    const { experiment_id } = await db.insertInto('experiments').values(row).returning('experiment_id').executeTakeFirstOrThrow();
    return Number(experiment_id);
  },

  byId(db: Db, id: number): Promise<ExperimentRow | undefined> {
    return db.selectFrom('experiments').selectAll().where('experiment_id', '=', id).executeTakeFirst();
  },

  byName(db: Db, name: string): Promise<ExperimentRow | undefined> {
    return db.selectFrom('experiments').selectAll().where('name', '=', name).executeTakeFirst();
  },

  async update(db: Db, id: number, patch: Partial<Omit<ExperimentRow, 'experiment_id'>>): Promise<void> {
    await db.updateTable('experiments').set(patch).where('experiment_id', '=', id).execute();
  },

  async tagsOf(db: Db, ids: readonly number[]): Promise<ExperimentTagTable[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('experiment_tags').selectAll().where('experiment_id', 'in', ids).orderBy('key').execute();
  },

  async setTag(db: Db, id: number, key: string, value: string): Promise<void> {
    await db
      .insertInto('experiment_tags')
      .values({ experiment_id: id, key, value })
      .onConflict((oc) => oc.columns(['experiment_id', 'key']).doUpdateSet({ value: (eb) => eb.ref('excluded.value') }))
      .execute();
  },

  async deleteTag(db: Db, id: number, key: string): Promise<number> {
    const r = await db.deleteFrom('experiment_tags').where('experiment_id', '=', id).where('key', '=', key).executeTakeFirst();
    return Number(r.numDeletedRows);
  },

  /** One page of experiments matching a parsed filter, in the given order. */
  search(
    db: Db,
    dialect: Dialect,
    q: { stages: readonly string[]; comparisons: readonly Comparison[]; orderBy: readonly OrderByClause[]; limit: number; offset: number },
  ): Promise<ExperimentRow[]> {
    let query = db.selectFrom('experiments').selectAll('experiments').where('experiments.lifecycle_stage', 'in', q.stages);
    for (const c of q.comparisons) query = query.where(experimentPredicate(dialect, c));
    let byId = false;
    for (const o of q.orderBy) {
      const { rank, value } = experimentOrderExpressions(o);
      if (o.identifier.type === 'attribute' && o.identifier.key === 'experiment_id') byId = true;
      query = query.orderBy(rank, 'asc').orderBy(value, o.ascending ? 'asc' : 'desc');
    }
    if (q.orderBy.length === 0) query = query.orderBy('experiments.last_update_time', 'desc');
    if (!byId) query = query.orderBy('experiments.experiment_id', 'asc');
    return query.limit(q.limit).offset(q.offset).execute();
  },
};

// ---------------------------------------------------------------------------------------------
// Runs

export const runsRepository = {
  async insert(db: Db, row: RunRow): Promise<void> {
    await db.insertInto('runs').values(row).execute();
  },

  byId(db: Db, runId: string): Promise<RunRow | undefined> {
    return db.selectFrom('runs').selectAll().where('run_id', '=', runId).executeTakeFirst();
  },

  async byIds(db: Db, runIds: readonly string[]): Promise<RunRow[]> {
    if (runIds.length === 0) return [];
    return db.selectFrom('runs').selectAll().where('run_id', 'in', runIds).execute();
  },

  async update(db: Db, runId: string, patch: Partial<Omit<RunRow, 'run_id'>>): Promise<void> {
    await db.updateTable('runs').set(patch).where('run_id', '=', runId).execute();
  },

  /** Soft-deletes every active run of an experiment (the experiment is being deleted). */
  async deleteAllOf(db: Db, experimentId: number, at: number): Promise<void> {
    await db
      .updateTable('runs')
      .set({ lifecycle_stage: 'deleted', deleted_time: at })
      .where('experiment_id', '=', experimentId)
      .where('lifecycle_stage', '=', 'active')
      .execute();
  },

  /** Restores the runs deleted together with their experiment (deleted at or after `since`). */
  async restoreDeletedSince(db: Db, experimentId: number, since: number): Promise<void> {
    await db
      .updateTable('runs')
      .set({ lifecycle_stage: 'active', deleted_time: null })
      .where('experiment_id', '=', experimentId)
      .where('lifecycle_stage', '=', 'deleted')
      .where('deleted_time', '>=', since)
      .execute();
  },

  /** Active run counts per experiment. */
  async countActive(db: Db, experimentIds: readonly number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (experimentIds.length === 0) return out;
    const rows = await db
      .selectFrom('runs')
      .select(['experiment_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('experiment_id', 'in', experimentIds)
      .where('lifecycle_stage', '=', 'active')
      .groupBy('experiment_id')
      .execute();
    for (const r of rows) out.set(Number(r.experiment_id), Number(r.n));
    return out;
  },

  /** Which of `keys` appear as (non-NaN) latest metrics of candidate runs, per experiment. */
  async metricKeysPresent(db: Db, experimentIds: readonly number[], keys: readonly string[], statuses: readonly string[]): Promise<Map<number, Set<string>>> {
    const out = new Map<number, Set<string>>();
    if (experimentIds.length === 0 || keys.length === 0) return out;
    const rows = await db
      .selectFrom('latest_metrics as lm')
      .innerJoin('runs as r', 'r.run_id', 'lm.run_id')
      .select(['r.experiment_id', 'lm.key'])
      .distinct()
      .where('r.experiment_id', 'in', experimentIds)
      .where('r.lifecycle_stage', '=', 'active')
      .where('r.status', 'in', statuses)
      .where('lm.key', 'in', keys)
      .where('lm.is_nan', '=', 0)
      .execute();
    for (const r of rows) {
      const id = Number(r.experiment_id);
      let set = out.get(id);
      if (set === undefined) out.set(id, (set = new Set()));
      set.add(r.key);
    }
    return out;
  },

  /** The run with the best non-NaN latest value of `key` (ties: latest start, then run id). */
  bestByMetric(db: Db, experimentId: number, key: string, goal: 'max' | 'min', statuses: readonly string[]) {
    return db
      .selectFrom('latest_metrics as lm')
      .innerJoin('runs as r', 'r.run_id', 'lm.run_id')
      .select(['r.run_id', 'r.run_name', 'lm.value'])
      .where('r.experiment_id', '=', experimentId)
      .where('r.lifecycle_stage', '=', 'active')
      .where('r.status', 'in', statuses)
      .where('lm.key', '=', key)
      .where('lm.is_nan', '=', 0)
      .orderBy('lm.value', goal === 'max' ? 'desc' : 'asc')
      .orderBy('r.start_time', 'desc')
      .orderBy('r.run_id', 'asc')
      .limit(1)
      .executeTakeFirst();
  },

  latestStarted(db: Db, experimentId: number, statuses: readonly string[]) {
    return db
      .selectFrom('runs')
      .select(['run_id', 'run_name'])
      .where('experiment_id', '=', experimentId)
      .where('lifecycle_stage', '=', 'active')
      .where('status', 'in', statuses)
      .orderBy('start_time', 'desc')
      .orderBy('run_id', 'asc')
      .limit(1)
      .executeTakeFirst();
  },

  /**
   * One page of runs of the given experiments that match every comparison, ordered by the
   * clauses with MLflow's rules: missing values (and NaN metrics) last whatever the direction,
   * then `start_time DESC` and `run_id` as tie-breakers so pages are stable.
   */
  search(
    db: Db,
    dialect: Dialect,
    q: {
      experimentIds: readonly number[];
      stages: readonly string[];
      comparisons: readonly Comparison[];
      orderBy: readonly OrderByClause[];
      limit: number;
      offset: number;
    },
  ): Promise<RunRow[]> {
    const driving = drivingMetric(q.comparisons, q.orderBy);
    // Ordered by a metric the filter also bounds (`metrics.acc > 0.9`, ordered by it): every
    // match has the metric and it is not NaN, so the search walks the (key, value) index of
    // latest_metrics in order and stops at the page's end instead of visiting every run.
    const from = (
      driving === undefined
        ? db.selectFrom('runs')
        : db
            .selectFrom('latest_metrics as o')
            .innerJoin('runs', 'runs.run_id', 'o.run_id')
            .where('o.key', '=', driving.comparison.identifier.key)
            .where('o.is_nan', '=', 0)
            .where(numericPredicate(sql.ref('o.value'), driving.comparison.operator, driving.comparison.value))
    ) as unknown as SelectQueryBuilder<Database, 'runs', object>;
    let chosen = from.selectAll('runs').where('runs.experiment_id', 'in', q.experimentIds).where('runs.lifecycle_stage', 'in', q.stages);
    for (const c of q.comparisons) if (c !== driving?.comparison) chosen = chosen.where(runPredicate(dialect, c));
    let byStart = false;
    let byRunId = false;
    for (const o of q.orderBy) {
      if (o.identifier.type === 'attribute' && o.identifier.key === 'start_time') byStart = true;
      if (o.identifier.type === 'attribute' && o.identifier.key === 'run_id') byRunId = true;
      if (o === driving?.order) {
        chosen = chosen.orderBy(sql.ref('o.value'), o.ascending ? 'asc' : 'desc');
        continue;
      }
      const { rank, value } = runOrderExpressions(o);
      chosen = chosen.orderBy(rank, 'asc').orderBy(value, o.ascending ? 'asc' : 'desc');
    }
    if (!byStart) chosen = chosen.orderBy('runs.start_time', 'desc');
    if (!byRunId) chosen = chosen.orderBy('runs.run_id', 'asc');
    return chosen.limit(q.limit).offset(q.offset).execute();
  },
};

// ---------------------------------------------------------------------------------------------
// Params, tags, metrics, outputs

export const runDataRepository = {
  /** Inserts params, leaving existing keys untouched (the service then checks their values). */
  async insertParams(db: Db, rows: readonly ParamTable[]): Promise<void> {
    for (const chunk of chunks(rows)) {
      await db.insertInto('params').values(chunk).onConflict((oc) => oc.columns(['run_id', 'key']).doNothing()).execute();
    }
  },

  async params(db: Db, runIds: readonly string[], keys?: readonly string[]): Promise<ParamTable[]> {
    if (runIds.length === 0 || keys?.length === 0) return [];
    let q = db.selectFrom('params').selectAll().where('run_id', 'in', runIds);
    if (keys !== undefined) q = q.where('key', 'in', keys);
    return q.orderBy('key').execute();
  },

  async upsertTags(db: Db, rows: readonly TagTable[]): Promise<void> {
    for (const chunk of chunks(rows)) {
      await db
        .insertInto('tags')
        .values(chunk)
        .onConflict((oc) => oc.columns(['run_id', 'key']).doUpdateSet({ value: (eb) => eb.ref('excluded.value') }))
        .execute();
    }
  },

  async deleteTag(db: Db, runId: string, key: string): Promise<number> {
    const r = await db.deleteFrom('tags').where('run_id', '=', runId).where('key', '=', key).executeTakeFirst();
    return Number(r.numDeletedRows);
  },

  async tags(db: Db, runIds: readonly string[]): Promise<TagTable[]> {
    if (runIds.length === 0) return [];
    return db.selectFrom('tags').selectAll().where('run_id', 'in', runIds).orderBy('key').execute();
  },

  /**
   * Appends metric points; a point identical to a stored one is skipped (MLflow's identity).
   * Metrics arrive a thousand at a time (MLflow's log-batch), so the statement text is written
   * here with positional parameters instead of through the query builder, whose per-value node
   * tree cost more than SQLite's insert itself.
   */
  async insertMetrics(db: Db, dialect: Dialect, rows: readonly MetricRow[]): Promise<void> {
    for (const chunk of chunks(rows)) {
      const params: unknown[] = [];
      const tuples: string[] = [];
      for (const r of chunk) {
        const n = params.push(r.run_id, r.key, r.value, r.is_nan, r.timestamp, r.step);
        tuples.push(dialect === 'postgres' ? `($${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})` : '(?, ?, ?, ?, ?, ?)');
      }
      const text = `insert into metrics (run_id, key, value, is_nan, timestamp, step) values ${tuples.join(', ')} on conflict do nothing`;
      await db.executeQuery(CompiledQuery.raw(text, params));
    }
  },

  /**
   * Moves each key's latest value forward when the new point is greater by MLflow's rule: compare
   * (step, timestamp, value) lexicographically. Done in the upsert's WHERE so concurrent writers
   * cannot move it backwards. At most one row per (run, key) per call.
   */
  async upsertLatest(db: Db, rows: readonly LatestMetricRow[]): Promise<void> {
    for (const chunk of chunks(rows)) {
      await db
        .insertInto('latest_metrics')
        .values(chunk)
        .onConflict((oc) =>
          oc
            .columns(['run_id', 'key'])
            .doUpdateSet({
              value: (eb) => eb.ref('excluded.value'),
              timestamp: (eb) => eb.ref('excluded.timestamp'),
              step: (eb) => eb.ref('excluded.step'),
              is_nan: (eb) => eb.ref('excluded.is_nan'),
            })
            .where(sql<boolean>`(excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)`),
        )
        .execute();
    }
  },

  async latest(db: Db, runIds: readonly string[]): Promise<LatestMetricRow[]> {
    if (runIds.length === 0) return [];
    return db.selectFrom('latest_metrics').selectAll().where('run_id', 'in', runIds).orderBy('key').execute();
  },

  /** One page of a metric's history in (step, timestamp, insertion) order. */
  history(db: Db, runId: string, key: string, limit: number, offset: number): Promise<MetricRow[]> {
    return db
      .selectFrom('metrics')
      .select(['run_id', 'key', 'value', 'timestamp', 'step', 'is_nan'])
      .where('run_id', '=', runId)
      .where('key', '=', key)
      .orderBy('step')
      .orderBy('timestamp')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  },

  async insertOutput(db: Db, row: RunOutputTable): Promise<void> {
    await db.insertInto('run_outputs').values(row).onConflict((oc) => oc.doNothing()).execute();
  },

  async outputs(db: Db, runIds: readonly string[]): Promise<RunOutputTable[]> {
    if (runIds.length === 0) return [];
    return db.selectFrom('run_outputs').selectAll().where('run_id', 'in', runIds).orderBy('model_name').orderBy('model_version').execute();
  },
};

// ---------------------------------------------------------------------------------------------
// Filter and order_by translation

const NUMERIC_OPS: Readonly<Partial<Record<ComparisonOperator, string>>> = { '=': '=', '!=': '<>', '>': '>', '>=': '>=', '<': '<', '<=': '<=' };

/** Run attribute -> column (closed set; the parser only lets these through). */
const RUN_COLUMNS: Readonly<Record<string, string>> = {
  run_id: 'run_id',
  run_name: 'run_name',
  status: 'status',
  user_id: 'user_id',
  artifact_uri: 'artifact_uri',
  start_time: 'start_time',
  end_time: 'end_time',
};
const DATASET_COLUMNS: Readonly<Record<string, string>> = { name: 'dataset_name', version: 'dataset_version', digest: 'dataset_digest' };
const EXPERIMENT_COLUMNS: Readonly<Record<string, string>> = {
  name: 'name',
  creation_time: 'creation_time',
  last_update_time: 'last_update_time',
  experiment_id: 'experiment_id',
};

function column(table: 'runs' | 'experiments', map: Readonly<Record<string, string>>, key: string): RawBuilder<unknown> {
  const col = map[key];
  if (col === undefined) throw new Error(`no column for ${table} field ${key}`);
  return sql.ref(`${table}.${col}`);
}

/** First `INDEXED_VALUE_CHARS` code points, matching SQL `substr` on both backends. */
function indexedPrefix(value: string): string {
  if (value.length <= INDEXED_VALUE_CHARS) return value;
  return Array.from(value).slice(0, INDEXED_VALUE_CHARS).join('');
}

/**
 * Backslash escapes (`\%`, `\_`, `\\`) mean literal characters on both backends; a trailing lone
 * backslash is made literal, since PostgreSQL rejects a pattern ending in its escape character.
 */
function normalizeLike(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const d = pattern[i + 1];
      if (d === undefined) {
        out += '\\\\';
      } else {
        out += c + d;
        i++;
      }
    } else {
      out += c;
    }
  }
  return out;
}

/** LIKE pattern -> SQLite GLOB pattern, so LIKE stays case-sensitive on SQLite as on PostgreSQL. */
function likeToGlob(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    let c = pattern[i]!;
    let literal = false;
    if (c === '\\' && i + 1 < pattern.length) {
      c = pattern[++i]!;
      literal = true;
    }
    if (!literal && c === '%') out += '*';
    else if (!literal && c === '_') out += '?';
    else if (c === '*' || c === '?' || c === '[') out += `[${c}]`;
    else out += c;
  }
  return out;
}

function stringPredicate(dialect: Dialect, col: RawBuilder<unknown>, op: ComparisonOperator, value: Comparison['value'], indexed: boolean): RawBuilder<boolean> {
  switch (op) {
    case 'IS NULL':
      return sql<boolean>`${col} is null`;
    case 'IS NOT NULL':
      return sql<boolean>`${col} is not null`;
    case 'IN':
    case 'NOT IN': {
      if (value.kind !== 'list') throw new Error('IN needs a list');
      const list = sql.join(value.values.map((v) => sql`${v}`));
      return op === 'IN' ? sql<boolean>`${col} in (${list})` : sql<boolean>`${col} not in (${list})`;
    }
    case '=':
    case '!=': {
      if (value.kind !== 'string') throw new Error('string comparison needs a string');
      if (op === '!=') return sql<boolean>`${col} <> ${value.value}`;
      // The prefix predicate lets the planner use the (key, substr(value)) index.
      return indexed
        ? sql<boolean>`substr(${col}, 1, ${sql.lit(INDEXED_VALUE_CHARS)}) = ${indexedPrefix(value.value)} and ${col} = ${value.value}`
        : sql<boolean>`${col} = ${value.value}`;
    }
    case 'LIKE':
    case 'ILIKE': {
      if (value.kind !== 'string') throw new Error('LIKE needs a string');
      if (dialect === 'postgres') {
        const p = normalizeLike(value.value);
        return op === 'LIKE' ? sql<boolean>`${col} like ${p}` : sql<boolean>`${col} ilike ${p}`;
      }
      // SQLite: LIKE is case-insensitive (ASCII) there, so case-sensitive LIKE becomes GLOB.
      return op === 'LIKE' ? sql<boolean>`${col} glob ${likeToGlob(value.value)}` : sql<boolean>`${col} like ${normalizeLike(value.value)} escape '\\'`;
    }
    default:
      throw new Error(`operator ${op} is not a string comparison`);
  }
}

function numericPredicate(col: RawBuilder<unknown>, op: ComparisonOperator, value: Comparison['value']): RawBuilder<boolean> {
  if (op === 'IS NULL') return sql<boolean>`${col} is null`;
  if (op === 'IS NOT NULL') return sql<boolean>`${col} is not null`;
  const sqlOp = NUMERIC_OPS[op];
  if (sqlOp === undefined || value.kind !== 'number') throw new Error(`operator ${op} is not a numeric comparison`);
  return sql<boolean>`${col} ${sql.raw(sqlOp)} ${value.value}`;
}

/** EXISTS over a key/value table (params, tags, experiment_tags) for one comparison. */
function keyValuePredicate(dialect: Dialect, table: 'params' | 'tags' | 'experiment_tags', owner: RawBuilder<unknown>, c: Comparison): RawBuilder<boolean> {
  const ownerCol = sql.ref(table === 'experiment_tags' ? 'kv.experiment_id' : 'kv.run_id');
  const base = sql`select 1 from ${sql.table(table)} kv where ${ownerCol} = ${owner} and kv.key = ${c.identifier.key}`;
  if (c.operator === 'IS NULL') return sql<boolean>`not exists (${base})`;
  if (c.operator === 'IS NOT NULL') return sql<boolean>`exists (${base})`;
  const pred = stringPredicate(dialect, sql.ref('kv.value'), c.operator, c.value, table !== 'experiment_tags');
  return sql<boolean>`exists (${base} and ${pred})`;
}

/**
 * The first order_by clause when it is a metric that a comparison bounds with `= < <= > >=`
 * (which only present, non-NaN values satisfy), with that comparison: the search can then be
 * driven by the metric's (key, value) index.
 */
function drivingMetric(comparisons: readonly Comparison[], orderBy: readonly OrderByClause[]): { order: OrderByClause; comparison: Comparison } | undefined {
  const order = orderBy[0];
  if (order?.identifier.type !== 'metric') return undefined;
  const comparison = comparisons.find(
    (c) => c.identifier.type === 'metric' && c.identifier.key === order.identifier.key && c.value.kind === 'number' && ['=', '<', '<=', '>', '>='].includes(c.operator),
  );
  return comparison === undefined ? undefined : { order, comparison };
}

/**
 * One run comparison as a boolean SQL expression. Like MLflow (which joins), a run without the
 * metric/param/tag never matches, not even `!=`. A NaN metric only matches `!=`.
 */
function runPredicate(dialect: Dialect, c: Comparison): RawBuilder<boolean> {
  const id = c.identifier;
  switch (id.type) {
    case 'metric': {
      const base = sql`select 1 from latest_metrics lm where lm.run_id = runs.run_id and lm.key = ${id.key}`;
      if (c.operator === 'IS NULL') return sql<boolean>`not exists (${base})`;
      if (c.operator === 'IS NOT NULL') return sql<boolean>`exists (${base})`;
      if (c.value.kind !== 'number') throw new Error('metric comparison needs a number');
      if (c.operator === '!=') return sql<boolean>`exists (${base} and (lm.is_nan = 1 or lm.value <> ${c.value.value}))`;
      return sql<boolean>`exists (${base} and lm.is_nan = 0 and ${numericPredicate(sql.ref('lm.value'), c.operator, c.value)})`;
    }
    case 'param':
      return keyValuePredicate(dialect, 'params', sql.ref('runs.run_id'), c);
    case 'tag':
      return keyValuePredicate(dialect, 'tags', sql.ref('runs.run_id'), c);
    case 'dataset': {
      const col = column('runs', DATASET_COLUMNS, id.key);
      return id.key === 'version' ? numericPredicate(col, c.operator, c.value) : stringPredicate(dialect, col, c.operator, c.value, false);
    }
    case 'attribute': {
      const col = column('runs', RUN_COLUMNS, id.key);
      return id.key === 'start_time' || id.key === 'end_time'
        ? numericPredicate(col, c.operator, c.value)
        : stringPredicate(dialect, col, c.operator, c.value, false);
    }
  }
}

function experimentPredicate(dialect: Dialect, c: Comparison): RawBuilder<boolean> {
  const id = c.identifier;
  if (id.type === 'tag') return keyValuePredicate(dialect, 'experiment_tags', sql.ref('experiments.experiment_id'), c);
  if (id.type !== 'attribute') throw new Error(`experiments cannot be filtered by ${id.type}`);
  const col = column('experiments', EXPERIMENT_COLUMNS, id.key);
  return id.key === 'name' ? stringPredicate(dialect, col, c.operator, c.value, false) : numericPredicate(col, c.operator, c.value);
}

/**
 * The two ORDER BY terms of one clause: a rank (0 present, 1 NaN metric, 2 missing) always
 * ascending, so missing values sort last in both directions as in MLflow, then the value itself.
 * Metric/param/tag values are correlated scalar subqueries on the (run_id, key) primary keys.
 */
function runOrderExpressions(o: OrderByClause): { rank: RawBuilder<number>; value: RawBuilder<unknown> } {
  const id = o.identifier;
  if (id.type === 'metric') {
    return {
      rank: sql<number>`coalesce((select lm.is_nan from latest_metrics lm where lm.run_id = runs.run_id and lm.key = ${id.key}), 2)`,
      value: sql`(select lm.value from latest_metrics lm where lm.run_id = runs.run_id and lm.key = ${id.key})`,
    };
  }
  if (id.type === 'param' || id.type === 'tag') {
    const table = sql.table(id.type === 'param' ? 'params' : 'tags');
    return {
      rank: sql<number>`coalesce((select 0 from ${table} kv where kv.run_id = runs.run_id and kv.key = ${id.key}), 1)`,
      value: sql`(select kv.value from ${table} kv where kv.run_id = runs.run_id and kv.key = ${id.key})`,
    };
  }
  const col = column('runs', id.type === 'dataset' ? DATASET_COLUMNS : RUN_COLUMNS, id.key);
  return { rank: sql<number>`case when ${col} is null then 1 else 0 end`, value: col };
}

function experimentOrderExpressions(o: OrderByClause): { rank: RawBuilder<number>; value: RawBuilder<unknown> } {
  const id = o.identifier;
  if (id.type === 'tag') {
    return {
      rank: sql<number>`coalesce((select 0 from experiment_tags kv where kv.experiment_id = experiments.experiment_id and kv.key = ${id.key}), 1)`,
      value: sql`(select kv.value from experiment_tags kv where kv.experiment_id = experiments.experiment_id and kv.key = ${id.key})`,
    };
  }
  const col = column('experiments', EXPERIMENT_COLUMNS, id.key);
  return { rank: sql<number>`case when ${col} is null then 1 else 0 end`, value: col };
}
