/**
 * The drift report as API.md ("Drift") describes it. The drift endpoints are not in the server's
 * OpenAPI document yet, so these types cannot be generated; they are written from the contract and
 * read leniently (features as a map by name or as a list, unknown layouts of the distributions
 * ignored, missing fields shown as dashes). Once `/drift/...` exists, `npm run gen:api-types`
 * brings its generated types and these should give way to them.
 */

export interface DriftFeature {
  readonly feature: string;
  readonly method?: string;
  readonly statistic?: number | null;
  readonly p_value?: number | null;
  readonly threshold?: number | null;
  readonly drifted?: boolean;
  readonly null_rate?: number | null;
  readonly unseen_rate?: number | null;
  /** Reference against live distribution, when the report carries one (bins or categories). */
  readonly distribution?: { labels: string[]; reference: number[]; current: number[] };
}

export interface DriftReport {
  readonly features: DriftFeature[];
  readonly share_drifted?: number;
  readonly dataset_drift?: boolean;
  /** Sample sizes and other top-level numbers (reference rows, live rows, window). */
  readonly figures: [string, number | string][];
  readonly reference?: unknown;
  readonly at?: string;
  readonly raw: unknown;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v: unknown): number | null | undefined => (typeof v === 'number' ? v : v === null ? null : undefined);

function distributionOf(f: Obj): DriftFeature['distribution'] {
  const d = isObj(f['distribution']) ? f['distribution'] : isObj(f['histogram']) ? f['histogram'] : f;
  const reference = d['reference'] ?? d['reference_counts'] ?? d['expected'];
  const current = d['current'] ?? d['current_counts'] ?? d['live'] ?? d['actual'];
  if (!Array.isArray(reference) || !Array.isArray(current) || reference.length !== current.length) return undefined;
  const edges = d['edges'] ?? d['bin_edges'] ?? d['bins'];
  const labels = Array.isArray(d['labels'] ?? d['categories'])
    ? ((d['labels'] ?? d['categories']) as unknown[]).map(String)
    : Array.isArray(edges) && edges.length === reference.length + 1
      ? reference.map((_, i) => `${String(edges[i])}–${String(edges[i + 1])}`)
      : reference.map((_, i) => String(i + 1));
  return { labels, reference: reference.map(Number), current: current.map(Number) };
}

/** Reads a report whatever its exact layout: features as a map by name or as a list. */
export function readReport(raw: unknown): DriftReport {
  const r = isObj(raw) ? raw : {};
  const list = r['features'];
  const entries: [string, Obj][] = Array.isArray(list)
    ? list.filter(isObj).map((f) => [typeof f['feature'] === 'string' ? f['feature'] : typeof f['name'] === 'string' ? f['name'] : '', f])
    : isObj(list)
      ? Object.entries(list).filter((e): e is [string, Obj] => isObj(e[1]))
      : [];
  const features = entries.map(([feature, f]) => {
    const distribution = distributionOf(f);
    return {
      feature,
      ...(typeof f['method'] === 'string' ? { method: f['method'] } : {}),
      statistic: num(f['statistic'] ?? f['score']),
      p_value: num(f['p_value']),
      threshold: num(f['threshold']),
      ...(typeof f['drifted'] === 'boolean' ? { drifted: f['drifted'] } : {}),
      null_rate: num(f['null_rate']),
      unseen_rate: num(f['unseen_rate']),
      ...(distribution === undefined ? {} : { distribution }),
    };
  });
  const figures = Object.entries(r).filter((e): e is [string, number | string] => (typeof e[1] === 'number' || typeof e[1] === 'string') && e[0] !== 'share_drifted');
  const at = r['computed_at'] ?? r['timestamp'] ?? r['at'] ?? r['created_at'];
  return {
    features,
    ...(typeof r['share_drifted'] === 'number' ? { share_drifted: r['share_drifted'] } : {}),
    ...(typeof r['dataset_drift'] === 'boolean' ? { dataset_drift: r['dataset_drift'] } : {}),
    figures,
    reference: r['reference'],
    ...(typeof at === 'string' ? { at } : {}),
    raw,
  };
}
