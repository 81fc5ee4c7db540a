/**
 * MLflow's `search_registered_models` and `search_model_versions` over the registry. The filter and
 * order_by text is parsed by the tracking feature's parser (search-filter.ts) with the registry's
 * attributes; the comparisons are then applied to the registry's domain objects in memory: a
 * registry holds models by the hundreds, not runs by the million, and its tags are stored as JSON
 * documents that SQL could not index anyway.
 */
import type { Comparison, OrderByClause, SearchSchema } from '../tracking/search-filter.ts';
import { parseFilter, parseOrderBy } from '../tracking/search-filter.ts';
import { decodePageToken, encodePageToken } from '../platform/schemas.ts';
import { invalidValue } from './wire.ts';

/** `search_registered_models`: name, timestamps and tags. */
export const REGISTERED_MODEL_SEARCH: SearchSchema = {
  name: 'registered models',
  attributes: { name: 'string', creation_timestamp: 'numeric', last_updated_timestamp: 'numeric' },
  attributeAliases: { timestamp: 'last_updated_timestamp' },
  entities: ['tag'],
};

/** `search_model_versions`: name, version number, run id, source path, timestamps and tags. */
export const MODEL_VERSION_SEARCH: SearchSchema = {
  name: 'model versions',
  attributes: {
    name: 'string',
    version_number: 'numeric',
    run_id: 'string',
    source_path: 'string',
    current_stage: 'string',
    creation_timestamp: 'numeric',
    last_updated_timestamp: 'numeric',
  },
  attributeAliases: { version: 'version_number', timestamp: 'last_updated_timestamp', source: 'source_path' },
  entities: ['tag'],
};

/** What an item exposes to search: attribute values and tags. */
export interface Searchable {
  attribute(name: string): string | number | null;
  readonly tags: Readonly<Record<string, string>>;
}

export interface SearchRequest {
  readonly filter: string | undefined;
  readonly orderBy: readonly string[];
  readonly maxResults: number | undefined;
  readonly pageToken: string | undefined;
}

/** Compiles a SQL LIKE pattern (`%`, `_`) into a regular expression. */
function likePattern(pattern: string, caseInsensitive: boolean): RegExp {
  let source = '';
  for (const c of pattern) source += c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  return new RegExp(`^${source}$`, caseInsensitive ? 'isu' : 'su');
}

function valueOf(item: Searchable, c: Pick<Comparison, 'identifier'>): string | number | null {
  return c.identifier.type === 'tag' ? (item.tags[c.identifier.key] ?? null) : item.attribute(c.identifier.key);
}

function matches(item: Searchable, c: Comparison): boolean {
  const v = valueOf(item, c);
  switch (c.operator) {
    case 'IS NULL':
      return v === null;
    case 'IS NOT NULL':
      return v !== null;
    case 'IN':
    case 'NOT IN': {
      const list = c.value.kind === 'list' ? c.value.values : [];
      const inList = v !== null && list.includes(String(v));
      return c.operator === 'IN' ? inList : v !== null && !inList;
    }
    default:
      break;
  }
  if (v === null) return false;
  const target = c.value.kind === 'number' ? c.value.value : c.value.kind === 'string' ? c.value.value : undefined;
  if (target === undefined) return false;
  switch (c.operator) {
    case '=':
      return v === target;
    case '!=':
      return v !== target;
    case '>':
      return v > target;
    case '>=':
      return v >= target;
    case '<':
      return v < target;
    case '<=':
      return v <= target;
    case 'LIKE':
    case 'ILIKE':
      return likePattern(String(target), c.operator === 'ILIKE').test(String(v));
  }
}

function compare(a: Searchable, b: Searchable, clauses: readonly OrderByClause[]): number {
  for (const clause of clauses) {
    const x = valueOf(a, clause);
    const y = valueOf(b, clause);
    if (x === y) continue;
    // Missing values sort last either way, as MLflow's stores do.
    if (x === null) return 1;
    if (y === null) return -1;
    const order = x < y ? -1 : 1;
    return clause.ascending ? order : -order;
  }
  return 0;
}

/**
 * Filters, orders and pages `items`. `defaultOrder` applies after the caller's clauses (MLflow
 * breaks ties the same way).
 */
export function searchItems<T extends Searchable>(
  items: readonly T[],
  request: SearchRequest,
  schema: SearchSchema,
  limits: { readonly defaultMax: number; readonly max: number; readonly defaultOrder: readonly string[] },
): { items: T[]; nextPageToken?: string } {
  const max = request.maxResults ?? limits.defaultMax;
  if (!Number.isInteger(max) || max < 1 || max > limits.max) {
    throw invalidValue(`invalid value ${max} for parameter 'max_results': it must be an integer between 1 and ${limits.max}`);
  }
  const comparisons = parseFilter(request.filter, schema);
  const order = [...parseOrderBy(request.orderBy, schema), ...parseOrderBy(limits.defaultOrder, schema)];
  const offset = decodePageToken(request.pageToken);
  const found = items.filter((item) => comparisons.every((c) => matches(item, c))).sort((a, b) => compare(a, b, order));
  const page = found.slice(offset, offset + max);
  return { items: page, ...(found.length > offset + max ? { nextPageToken: encodePageToken(offset + max) } : {}) };
}
