/**
 * Wire schemas of the native registry API and the mappers from domain objects to them
 * (snake_case, ISO-8601 timestamps).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Stage } from '../config.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import type { HistoryEntry, ModelVersion, RegisteredModel, RegisteredModelDetail, StoredTraffic } from './registry.model.ts';

const Iso = Type.String({ format: 'date-time' });
const Tags = Type.Record(Type.String(), Type.String(), { description: 'string tags' });
const Label = Type.Union([Type.Number(), Type.String()]);
/** Version numbers are 32-bit integer columns. */
const VersionNumber = () => Type.Integer({ minimum: 1, maximum: 2147483647 });

export const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) });
export const VersionParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  version: VersionNumber(),
});
export const AliasParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  alias: Type.String({ minLength: 1, maxLength: 255 }),
});

export const SignatureSchema = Type.Object(
  {
    input: Type.Object({
      name: Type.String(),
      element_type: Type.Union([Type.Literal('float32'), Type.Literal('double')]),
      n_features: Type.Integer(),
      fixed_batch: Type.Union([Type.Integer(), Type.Null()], { description: 'rows per run when the model has a fixed batch size' }),
      rank: Type.Integer(),
    }),
    feature_names: Type.Array(Type.String()),
    feature_types: Type.Array(Type.Union([Type.Literal('numeric'), Type.Literal('categorical')])),
    categories: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
    task: Type.Union([Type.Literal('classification'), Type.Literal('regression')]),
    class_labels: Type.Union([Type.Array(Label), Type.Null()]),
    label_type: Type.Union([Type.Literal('int64'), Type.Literal('string'), Type.Literal('float'), Type.Null()]),
    outputs: Type.Object({
      label: Type.Optional(Type.String()),
      probabilities: Type.Optional(Type.String()),
      value: Type.Optional(Type.String()),
    }),
  },
  { description: 'how the model is called: input tensor, feature order, task, classes, output names' },
);

const DatasetSchema = Type.Union([Type.Object({ name: Type.String(), version: Type.Union([Type.Integer(), Type.Null()]) }), Type.Null()]);

export const VersionSummarySchema = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  stage: Stage,
  description: Type.Union([Type.String(), Type.Null()]),
  tags: Tags,
  aliases: Type.Array(Type.String()),
  run_id: Type.Union([Type.String(), Type.Null()]),
  dataset: DatasetSchema,
  metrics: Type.Record(Type.String(), Type.Number()),
  task: Type.Union([Type.Literal('classification'), Type.Literal('regression')]),
  n_features: Type.Integer(),
  size_bytes: Type.Integer(),
  sha256: Type.String(),
  created_at: Iso,
  updated_at: Iso,
  created_by: Type.String({ description: 'id of the API key that registered it' }),
});

export const VersionSchema = Type.Composite([
  VersionSummarySchema,
  Type.Object({
    signature: SignatureSchema,
    source: Type.String({ description: 'upload, runs:/<run_id>/<path>, training, ...' }),
    artifact_key: Type.String({ description: 'key of model.onnx in the artifact store' }),
    has_reference: Type.Boolean({ description: 'whether the bundle holds reference.json (training statistics)' }),
    rewrites: Type.Array(Type.String(), { description: 'graph rewrites applied at registration' }),
    warnings: Type.Array(Type.String()),
  }),
]);

export const ModelSummarySchema = Type.Object({
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  tags: Tags,
  latest_version: Type.Union([Type.Integer(), Type.Null()]),
  latest_versions: Type.Array(Type.Object({ stage: Stage, version: Type.Integer() }), {
    description: 'highest version in each stage that has one',
  }),
  aliases: Type.Record(Type.String(), Type.Integer(), { description: 'alias -> version' }),
  created_at: Iso,
  updated_at: Iso,
});

export const TrafficSchema = Type.Object({
  name: Type.String(),
  routes: Type.Array(Type.Object({ version: Type.Integer(), weight: Type.Number({ description: 'percent' }) })),
  shadow: Type.Array(Type.Integer()),
  updated_at: Type.Union([Iso, Type.Null()]),
  updated_by: Type.Union([Type.String(), Type.Null()]),
});

export const ModelDetailSchema = Type.Composite([
  ModelSummarySchema,
  Type.Object({
    versions: Type.Array(VersionSummarySchema),
    traffic: Type.Union([TrafficSchema, Type.Null()]),
  }),
]);

export const HistorySchema = Type.Object({
  id: Type.Integer(),
  at: Iso,
  actor: Type.String({ description: 'id of the API key that made the change' }),
  action: Type.String({ description: 'model.create, version.create, version.delete, stage, alias, traffic' }),
  version: Type.Union([Type.Integer(), Type.Null()]),
  alias: Type.Union([Type.String(), Type.Null()]),
  from: Type.Union([Type.String(), Type.Null()]),
  to: Type.Union([Type.String(), Type.Null()]),
});

export const CreateModelBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 10000 })),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);

export const PatchBody = Type.Object(
  {
    // Null first: with type coercion on, a null would otherwise be coerced to ''.
    description: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 10000 })])),
    tags: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Null(), Type.String()]), { description: 'merge patch: null removes a tag' })),
  },
  { additionalProperties: false },
);

export const UploadJsonBody = Type.Object(
  {
    source: Type.String({ description: "runs:/<run_id>/<path>: a file (or folder holding model.onnx) logged by a run" }),
    feature_names: Type.Optional(Type.Union([Type.Array(Type.String()), Type.String()])),
    class_labels: Type.Optional(Type.Union([Type.Array(Label), Type.String()])),
    task: Type.Optional(Type.Union([Type.Literal('classification'), Type.Literal('regression')])),
    description: Type.Optional(Type.String({ maxLength: 10000 })),
    run_id: Type.Optional(Type.String()),
    reference_dataset: Type.Optional(Type.Union([Type.String(), Type.Object({ name: Type.String(), version: Type.Optional(Type.Integer()) })])),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);

export const UploadQuery = Type.Object({
  feature_names: Type.Optional(Type.String({ description: 'JSON array or comma-separated list' })),
  class_labels: Type.Optional(Type.String({ description: 'JSON array or comma-separated list' })),
  task: Type.Optional(Type.Union([Type.Literal('classification'), Type.Literal('regression')])),
  description: Type.Optional(Type.String()),
  run_id: Type.Optional(Type.String()),
  reference_dataset: Type.Optional(Type.String({ description: 'name or name:version' })),
});

export const TransitionBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    version: VersionNumber(),
    stage: Stage,
    archive_existing_versions: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

export const AliasBody = Type.Object({ version: VersionNumber() }, { additionalProperties: false });

export const TrafficBody = Type.Object(
  {
    routes: Type.Array(Type.Object({ version: VersionNumber(), weight: Type.Number({ exclusiveMinimum: 0, maximum: 100 }) }, { additionalProperties: false }), {
      description: 'weights are percentages adding up to 100',
      maxItems: 100,
    }),
    shadow: Type.Optional(Type.Array(VersionNumber(), { maxItems: 100, description: 'versions that get a copy of the traffic' })),
  },
  { additionalProperties: false },
);

const iso = (ms: number): string => new Date(ms).toISOString();

export function signatureReply(s: ModelSignature): Static<typeof SignatureSchema> {
  return {
    input: {
      name: s.input.name,
      element_type: s.input.elementType,
      n_features: s.input.nFeatures,
      fixed_batch: s.input.fixedBatch,
      rank: s.input.rank,
    },
    feature_names: s.featureNames,
    feature_types: s.featureTypes,
    ...(s.categories === undefined ? {} : { categories: s.categories }),
    task: s.task,
    class_labels: s.classLabels,
    label_type: s.labelType,
    outputs: { ...s.outputs },
  };
}

export function versionSummaryReply(v: ModelVersion): Static<typeof VersionSummarySchema> {
  return {
    name: v.name,
    version: v.version,
    stage: v.stage,
    description: v.description,
    tags: { ...v.tags },
    aliases: [...v.aliases],
    run_id: v.runId,
    dataset: v.dataset,
    metrics: { ...v.metrics },
    task: v.signature.task,
    n_features: v.signature.input.nFeatures,
    size_bytes: v.size,
    sha256: v.sha256,
    created_at: iso(v.createdAt),
    updated_at: iso(v.updatedAt),
    created_by: v.createdBy,
  };
}

export function versionReply(v: ModelVersion): Static<typeof VersionSchema> {
  return {
    ...versionSummaryReply(v),
    signature: signatureReply(v.signature),
    source: v.source,
    artifact_key: v.artifactKey,
    has_reference: v.hasReference,
    rewrites: [...v.rewrites],
    warnings: [...v.warnings],
  };
}

export function modelSummaryReply(m: RegisteredModel): Static<typeof ModelSummarySchema> {
  return {
    name: m.name,
    description: m.description,
    tags: { ...m.tags },
    latest_version: m.latestVersion,
    latest_versions: m.latestVersions.map((l) => ({ stage: l.stage, version: l.version })),
    aliases: { ...m.aliases },
    created_at: iso(m.createdAt),
    updated_at: iso(m.updatedAt),
  };
}

export function trafficReply(name: string, t: StoredTraffic | null): Static<typeof TrafficSchema> {
  return {
    name,
    routes: (t?.routes ?? []).map((r) => ({ version: r.version, weight: r.weight })),
    shadow: [...(t?.shadow ?? [])],
    updated_at: t === null ? null : iso(t.updatedAt),
    updated_by: t?.updatedBy ?? null,
  };
}

export function modelDetailReply(m: RegisteredModelDetail): Static<typeof ModelDetailSchema> {
  return {
    ...modelSummaryReply(m),
    versions: m.versions.map(versionSummaryReply),
    traffic: m.traffic === null ? null : trafficReply(m.name, m.traffic),
  };
}

export function historyReply(h: HistoryEntry): Static<typeof HistorySchema> {
  return { id: h.id, at: iso(h.at), actor: h.actor, action: h.action, version: h.version, alias: h.alias, from: h.from, to: h.to };
}
