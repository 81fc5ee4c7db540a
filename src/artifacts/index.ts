import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config } from '../config.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { LocalArtifactStore } from './local.ts';
import type { S3ArtifactStoreOptions } from './s3.ts';

export type { ArtifactInfo, ArtifactStore } from './artifact-store.ts';
export { ArtifactNotFoundError, ArtifactStoreUnavailableError, InvalidArtifactKeyError } from './errors.ts';
export { compareKeys, validateKey, validatePrefix } from './keys.ts';
export { LocalArtifactStore } from './local.ts';
export type { S3ArtifactStoreOptions } from './s3.ts';

/**
 * Builds the artifact store named by `ARTIFACT_ROOT`.
 * - `undefined` or `''`: local folder `<dataDir>/artifacts`
 * - a plain path (relative to the cwd) or a `file://` URL: local folder
 * - `s3://bucket[/prefix]`: S3 bucket, configured by `s3Options`
 * Any other scheme is refused, so a typo never silently becomes a local folder named `gs:`.
 */
export async function createArtifactStore(root: string | undefined, dataDir: string, s3Options: S3ArtifactStoreOptions = {}): Promise<ArtifactStore> {
  if (root === undefined || root.trim() === '') return new LocalArtifactStore(path.join(dataDir, 'artifacts'));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(root)?.[1]?.toLowerCase();
  if (scheme === undefined) return new LocalArtifactStore(root);
  if (scheme === 'file') return new LocalArtifactStore(fileURLToPath(root));
  if (scheme === 's3') {
    // The AWS SDK takes a noticeable share of start-up time; load it only when S3 is configured.
    const { S3ArtifactStore } = await import('./s3.ts');
    return new S3ArtifactStore(root, s3Options);
  }
  throw new Error(`unsupported artifact root scheme "${scheme}://" (use a path, file:// or s3://): ${root}`);
}

/** S3 client settings of the configuration (artifact store and `MODEL_PATH=s3://...`). */
export function s3Options(config: Pick<Config, 's3'>): S3ArtifactStoreOptions {
  return {
    ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
    ...(config.s3.region === undefined ? {} : { region: config.s3.region }),
    forcePathStyle: config.s3.forcePathStyle,
  };
}
