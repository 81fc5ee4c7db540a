/**
 * What a registry change does to live traffic, worked out from the model's detail the same way
 * the server routes requests: the default route of a model (a request that names the model but
 * no version, stage or alias) follows its traffic split when one has weights, else the highest
 * version in Production, else the highest in the fallback stage (Staging unless the server's
 * MODEL_FALLBACK_STAGE says otherwise). `stage=` and `alias=` requests follow their stage/alias.
 */
import type { paths } from '../api/schema.d.ts';
import type { Role } from './roles.ts';

export type ModelDetail = paths['/models/{name}']['get']['responses'][200]['content']['application/json'];
export type Stage = ModelDetail['versions'][number]['stage'];
export type Split = { readonly routes: readonly { version: number; weight: number }[]; readonly shadow: readonly number[] };

const FALLBACK: Stage = 'Staging';

/** The role a stage move needs (as the server's rule: admin to enter Production/Archived or to leave Production). */
export function roleForTransition(from: Stage, to: Stage): Role {
  return to === 'Production' || to === 'Archived' || from === 'Production' ? 'admin' : 'train';
}

function highestIn(stages: ReadonlyMap<number, Stage>, stage: Stage): number | undefined {
  let best: number | undefined;
  for (const [v, s] of stages) if (s === stage && (best === undefined || v > best)) best = v;
  return best;
}

/** A sentence for what the default route serves. */
export function describeDefaultRoute(stages: ReadonlyMap<number, Stage>, split: Split | null): string {
  if (split !== null && split.routes.some((r) => r.weight > 0)) {
    const routes = split.routes.map((r) => `version ${r.version} ${formatWeight(r.weight)}`).join(', ');
    return `the traffic split (${routes})${split.shadow.length > 0 ? `, shadowed by ${split.shadow.map((v) => `version ${v}`).join(', ')}` : ''}`;
  }
  const prod = highestIn(stages, 'Production');
  if (prod !== undefined) return `version ${prod} (Production)`;
  const fallback = highestIn(stages, FALLBACK);
  if (fallback !== undefined) return `version ${fallback} (${FALLBACK}, the fallback while nothing is in Production)`;
  return 'nothing: requests get 503 (no version in Production or Staging)';
}

const formatWeight = (w: number) => `${Number(w.toFixed(2))} %`;

export function stagesOf(model: ModelDetail): Map<number, Stage> {
  return new Map(model.versions.map((v) => [v.version, v.stage]));
}

export function splitOf(model: ModelDetail): Split | null {
  return model.traffic === null ? null : { routes: model.traffic.routes, shadow: model.traffic.shadow };
}

/** The effect of moving `version` to `stage`, as sentences for the confirmation. */
export function transitionImpact(model: ModelDetail, version: number, stage: Stage, archiveExisting: boolean): string[] {
  const before = stagesOf(model);
  const after = new Map(before);
  if (archiveExisting && (stage === 'Staging' || stage === 'Production')) {
    for (const [v, s] of after) if (s === stage && v !== version) after.set(v, 'Archived');
  }
  after.set(version, stage);
  const lines: string[] = [];
  const from = before.get(version) ?? 'None';
  lines.push(`Version ${version} moves from ${from} to ${stage}.`);
  const archived = [...after].filter(([v, s]) => s === 'Archived' && before.get(v) !== 'Archived' && v !== version).map(([v]) => v);
  if (archived.length > 0) lines.push(`Archived with it: ${archived.map((v) => `version ${v}`).join(', ')}.`);
  const split = splitOf(model);
  const was = describeDefaultRoute(before, split);
  const will = describeDefaultRoute(after, split);
  lines.push(
    was === will
      ? `Live traffic on the default route of '${model.name}' does not change: it stays on ${was}.`
      : `Live traffic on the default route of '${model.name}' moves from ${was} to ${will}, once the new version is loaded and warmed; requests in flight finish on the old one.`,
  );
  for (const s of ['Production', 'Staging'] as const) {
    const b = highestIn(before, s);
    const a = highestIn(after, s);
    if (a !== b) lines.push(`Requests with stage=${s} go to ${a === undefined ? 'no version (404)' : `version ${a}`} instead of ${b === undefined ? 'none' : `version ${b}`}.`);
  }
  return lines;
}

/** The effect of pointing `alias` at `version`. */
export function aliasImpact(model: ModelDetail, alias: string, version: number | null): string[] {
  const current = model.aliases[alias];
  if (version === null) return [`Requests with alias=${alias} (now version ${current ?? '—'}) will get 404.`, 'The default route does not change.'];
  return [
    current === undefined ? `The alias '${alias}' is created on version ${version}.` : `The alias '${alias}' moves from version ${current} to version ${version}.`,
    `Requests with alias=${alias} are served by version ${version} from then on. The default route does not change.`,
  ];
}

/** The effect of replacing the traffic split. */
export function splitImpact(model: ModelDetail, next: Split): string[] {
  const stages = stagesOf(model);
  const was = describeDefaultRoute(stages, splitOf(model));
  const empty = next.routes.length === 0 && next.shadow.length === 0;
  const will = describeDefaultRoute(stages, empty ? null : next);
  const lines = [was === will ? `The default route of '${model.name}' keeps serving ${was}.` : `The default route of '${model.name}' moves from ${was} to ${will}.`];
  if (empty) lines.push('The split is cleared: the default route follows the stages again.');
  if (next.shadow.length > 0) lines.push(`Shadow versions (${next.shadow.join(', ')}) get a copy of each request; their answers are not returned to callers.`);
  lines.push('Requests that name a version, stage or alias are not affected.');
  return lines;
}
