import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, floatTensor } from '../../src/onnx/graph-builder.ts';
import { InvalidModelError, parseModel, serializeModel } from '../../src/onnx/model-file.ts';
import { onnx, type ModelProto } from '../../src/onnx/proto.ts';
import { buildModel, linearZipMapModel, tensorValue } from './helpers.ts';

/** `y = x + w` with `w` an initializer, input `x` float [N, 2]. */
function addModel(mutate?: (m: ModelProto, g: GraphBuilder) => void): ModelProto {
  const g = new GraphBuilder(['x', 'y']);
  const w = g.floatConst('w', [1, 2], [2]);
  g.node('Add', ['x', w], {}, { output: 'y' });
  const m = buildModel(g, [tensorValue('x', 1, ['N', 2])], [tensorValue('y', 1, ['N', 2])]);
  mutate?.(m, g);
  return m;
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseModel(bytes),
    (err: unknown) => {
      assert.ok(err instanceof InvalidModelError, `expected InvalidModelError, got ${String(err)}`);
      assert.match(err.reason, pattern);
      return true;
    },
  );
}

void describe('parseModel', () => {
  void test('round-trips a valid model', () => {
    const bytes = serializeModel(addModel());
    const m = parseModel(bytes);
    assert.equal(m.graph?.node?.[0]?.opType, 'Add');
    assert.deepEqual(serializeModel(m), bytes);
  });

  void test('refuses empty and garbage bytes', () => {
    rejects(new Uint8Array(), /empty/);
    rejects(new TextEncoder().encode('this is not a model, just some text\n'), /not an ONNX|no ir_version|no graph/);
    const random = new Uint8Array(512);
    let s = 12345;
    for (let i = 0; i < random.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      random[i] = s >>> 24;
    }
    rejects(random, /not an ONNX|no ir_version|no graph/);
    // A zip header (someone uploading a zipped model).
    rejects(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0]), /not an ONNX|no ir_version|no graph/);
  });

  void test('refuses a model without graph, inputs or outputs', () => {
    rejects(serializeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 15 }] }), /no graph/);
    rejects(serializeModel(addModel((m) => (m.graph!.input = []))), /no inputs/);
    rejects(serializeModel(addModel((m) => (m.graph!.output = []))), /no outputs/);
    // IR 3 style: the only "input" is an initializer, so nothing is fed.
    rejects(serializeModel(addModel((m) => (m.graph!.input = [tensorValue('w', 1, [2])]))), /no inputs/);
  });

  void test('refuses tensors stored in external files, naming the tensor', () => {
    const external = addModel((m) => {
      const t = m.graph!.initializer![0]!;
      t.rawData = new Uint8Array();
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [{ key: 'location', value: 'weights.bin' }];
    });
    rejects(serializeModel(external), /tensor 'w'.*external file \(weights\.bin\)/);

    const entriesOnly = addModel((m) => {
      m.graph!.initializer![0]!.externalData = [{ key: 'location', value: 'w.data' }];
    });
    rejects(serializeModel(entriesOnly), /tensor 'w'/);

    // Inside a Constant node's attribute.
    const constant = addModel((m, g) => {
      const t = floatTensor('c_value', [1, 1], [2]);
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      m.graph!.node!.unshift({ opType: 'Constant', name: 'c', output: ['c'], attribute: [{ name: 'value', type: 4, t }] });
      void g;
    });
    rejects(serializeModel(constant), /tensor 'c_value'.*node 'c'/);
  });

  void test('refuses unsupported operator domains', () => {
    const customOpset = addModel((m) => m.opsetImport!.push({ domain: 'ai.onnx.contrib', version: 1 }));
    rejects(serializeModel(customOpset), /domain 'ai.onnx.contrib'/);
    const customNode = addModel((m) => {
      m.graph!.node![0]!.domain = 'com.example';
    });
    rejects(serializeModel(customNode), /node .* unsupported operator domain 'com.example'/);
    rejects(serializeModel(addModel((m) => (m.opsetImport = []))), /opset_import is empty/);
  });

  void test('accepts converter models with ZipMap', () => {
    const m = parseModel(serializeModel(linearZipMapModel([0, 1, 2])));
    assert.equal(m.graph?.node?.length, 3);
  });
});
