/**
 * The reference peer's random forest (../shared/peers/fastapi-sklearn, breast cancer, max depth 8)
 * as an ONNX file modelplane serves: the peer exports its own trees (`app.py --export-onnx`) and
 * the file is given the feature names `feature_1..feature_30`, so named requests work and both
 * servers answer the same body with the same trees.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseModel, serializeModel } from '../src/onnx/model-file.ts';
import { ROOT } from './compiled-server.ts';

/** The peer's folder (app.py, forest_onnx.py). */
export const PEER_DIR = path.resolve(ROOT, '../shared/peers/fastapi-sklearn');

/** Debian's interpreter, which has python3-sklearn, python3-fastapi and python3-onnx. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Features of the breast cancer data set the peer trains on. */
export const N_FEATURES = 30;

/** `feature_1..feature_30`, the peer's request field names. */
export const FEATURE_NAMES: readonly string[] = Array.from({ length: N_FEATURES }, (_, i) => `feature_${i + 1}`);

/**
 * Trains the peer's forest with `trees` estimators (the peer's default is 100), exports it through
 * the peer's own exporter and writes it to `outFile` with the feature names in the model metadata.
 */
export function exportPeerForest(outFile: string, trees = 100): void {
  const raw = `${outFile}.raw`;
  const exp = spawnSync(PYTHON, [path.join(PEER_DIR, 'app.py'), '--trees', String(trees), '--export-onnx', raw], { encoding: 'utf8' });
  if (exp.status !== 0) throw new Error(`peer export failed: ${exp.stderr}`);
  const model = parseModel(readFileSync(raw));
  rmSync(raw);
  model.metadataProps = [...(model.metadataProps ?? []), { key: 'feature_names', value: JSON.stringify(FEATURE_NAMES) }];
  writeFileSync(outFile, serializeModel(model));
}
