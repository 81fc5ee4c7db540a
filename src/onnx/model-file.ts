/**
 * Reading and writing `.onnx` files, with the checks that decide whether a user's file can be
 * registered at all. Everything here is pure (no onnxruntime): the registry still loads the
 * rewritten model and runs it once before accepting it.
 */
import {
  onnx,
  feedInputs,
  int64ToNumber,
  isDefaultDomain,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.ts';

export { InvalidModelError } from './errors.ts';
import { InvalidModelError } from './errors.ts';

/**
 * Operator domains onnxruntime-node runs out of the box: the standard ONNX and ONNX-ML operator
 * sets and onnxruntime's own contrib operators (which graph optimisers such as the transformers
 * optimiser emit). Anything else needs a custom-op library the server does not load.
 */
export const SUPPORTED_DOMAINS: ReadonlySet<string> = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft']);

/**
 * Decodes and validates an ONNX model.
 *
 * Refused (as {@link InvalidModelError}): empty or non-protobuf bytes, bytes that decode but are
 * not a model (no `ir_version`, no graph), a graph without feedable inputs or without outputs,
 * any tensor (initializer, Constant attribute, subgraph tensor) whose data lives in an external
 * file, and operators or opset imports from domains onnxruntime cannot run (see
 * {@link SUPPORTED_DOMAINS}; domains of the model's own local functions are accepted).
 * @param bytes the file content
 * @returns the decoded model (protobufjs message; int64 fields may be `Long` objects, see
 *   {@link int64ToNumber})
 */
export function parseModel(bytes: Uint8Array): ModelProto {
  if (bytes.length === 0) throw new InvalidModelError('the file is empty');
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new InvalidModelError(`not an ONNX file (protobuf decoding failed: ${why})`, { cause: err });
  }
  validateModel(model);
  return model;
}

/**
 * Encodes a model to `.onnx` bytes. Fields that the bundled schema (ONNX 1.10, IR 8) does not know
 * were dropped when the model was decoded, so callers keep the original bytes when they changed
 * nothing (as `prepareForServing` does).
 */
export function serializeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The structural checks of {@link parseModel}, for models built in memory.
 * @throws InvalidModelError with the first problem found
 */
export function validateModel(model: ModelProto): void {
  if (int64ToNumber(model.irVersion) <= 0) {
    throw new InvalidModelError('not an ONNX model (no ir_version; is this really a .onnx file?)');
  }
  const graph = model.graph;
  if (!graph) throw new InvalidModelError('the model has no graph');
  if (feedInputs(graph).length === 0) throw new InvalidModelError('the graph has no inputs');
  if ((graph.output ?? []).length === 0) throw new InvalidModelError('the graph has no outputs');

  const functionDomains = new Set<string>();
  for (const f of model.functions ?? []) functionDomains.add(f.domain ?? '');
  const domainOk = (d: string | null | undefined): boolean =>
    SUPPORTED_DOMAINS.has(d ?? '') || functionDomains.has(d ?? '');

  const imported = new Set<string>();
  for (const o of model.opsetImport ?? []) {
    const d = o.domain ?? '';
    if (!domainOk(d)) {
      throw new InvalidModelError(
        `opset domain '${d}' is not supported (onnxruntime runs ${[...SUPPORTED_DOMAINS].filter(Boolean).join(', ')} and the default domain)`,
      );
    }
    imported.add(isDefaultDomain(d) ? '' : d);
  }
  if (imported.size === 0) throw new InvalidModelError('the model imports no operator set (opset_import is empty)');

  walkGraph(graph, graph.name || 'main', (node, where) => {
    const d = node.domain ?? '';
    if (!domainOk(d)) {
      throw new InvalidModelError(
        `node '${node.name || node.opType}' (${node.opType}) in ${where} uses unsupported operator domain '${d}'`,
      );
    }
  }, (tensor, where) => {
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (tensor.externalData ?? []).length > 0) {
      const location = tensor.externalData?.find((e) => e.key === 'location')?.value;
      throw new InvalidModelError(
        `tensor '${tensor.name ?? ''}' (${where}) keeps its data in an external file` +
          (location ? ` (${location})` : '') +
          '; save the model as one self-contained .onnx file (e.g. onnx.save(model, path, save_as_external_data=False))',
      );
    }
  });
  for (const f of model.functions ?? []) {
    for (const n of f.node ?? []) {
      if (!domainOk(n.domain)) {
        throw new InvalidModelError(`function '${f.name ?? ''}' uses unsupported operator domain '${n.domain ?? ''}'`);
      }
    }
  }
}

/**
 * Visits every node and every stored tensor of a graph and of its subgraphs (If/Loop/Scan bodies),
 * telling where each was found, for error messages.
 */
function walkGraph(
  graph: GraphProto,
  where: string,
  onNode: (node: NodeProto, where: string) => void,
  onTensor: (tensor: TensorProto, where: string) => void,
): void {
  for (const t of graph.initializer ?? []) onTensor(t, `initializer of graph '${where}'`);
  for (const s of graph.sparseInitializer ?? []) {
    if (s.values) onTensor(s.values, `sparse initializer of graph '${where}'`);
    if (s.indices) onTensor(s.indices, `sparse initializer of graph '${where}'`);
  }
  for (const node of graph.node ?? []) {
    onNode(node, `graph '${where}'`);
    const nodeWhere = `attribute of node '${node.name || node.opType}' in graph '${where}'`;
    for (const a of node.attribute ?? []) {
      if (a.t) onTensor(a.t, nodeWhere);
      for (const t of a.tensors ?? []) onTensor(t, nodeWhere);
      if (a.sparseTensor?.values) onTensor(a.sparseTensor.values, nodeWhere);
      if (a.g) walkGraph(a.g, `${where}/${node.name || node.opType}.${a.name ?? ''}`, onNode, onTensor);
      for (const g of a.graphs ?? []) walkGraph(g, `${where}/${node.name || node.opType}.${a.name ?? ''}`, onNode, onTensor);
    }
  }
}
