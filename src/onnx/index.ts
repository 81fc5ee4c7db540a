/**
 * ONNX model files: parsing and validation, inspection, ZipMap removal, serving signatures, and
 * export of the built-in models. Pure functions; onnxruntime itself lives in `serving/`.
 */
export { InvalidModelError, SUPPORTED_DOMAINS, parseModel, serializeModel, validateModel } from './model-file.ts';
export { inspectModel, type ModelInfo, type OpsetDescription, type ValueDescription, type ValueKind } from './inspect.ts';
export { removeZipMap, type ZipMapRemoval, type ZipMapRewrite } from './zipmap.ts';
export {
  METADATA_KEYS,
  inferSignature,
  signatureFromInfo,
  type ClassLabel,
  type FeatureType,
  type ModelSignature,
  type RewriteFindings,
  type SignatureHints,
} from './signature.ts';
export { prepareForServing, type PreparedModel, type PreparedModelInfo } from './prepare.ts';
export {
  INPUT_NAME,
  LABEL_OUTPUT,
  PROBABILITY_OUTPUT,
  VALUE_OUTPUT,
  exportModel,
  treeCoverJson,
  type ExportMeta,
} from './export.ts';
export { ModelTooLargeError, ONNX_MAX_BYTES } from './errors.ts';
export { treeOnnxBytes } from './tree-ensemble.ts';
export type { ModelProto } from './proto.ts';
