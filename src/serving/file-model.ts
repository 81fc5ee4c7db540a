/**
 * Single-file mode (`MODEL_PATH`, local or `s3://`): the default route serves one ONNX file,
 * prepared as a registration would (ZipMap removal, signature inference), and reloaded when the
 * file's content tag changes (checked every `MODEL_CACHE_TTL` seconds) or on demand.
 */
import type { ModelIdentity } from './loaded-model.ts';
import type { ModelFileSource } from './model-source.ts';
import type { ModelRouter } from './router.ts';
import type { SessionCache } from './sessions.ts';

export class FileModel {
  private tag: string | undefined;
  private loads = 0;

  constructor(
    private readonly file: ModelFileSource,
    /** The model's name: `MODEL_NAME`, else the file's base name. */
    private readonly name: string | undefined,
    private readonly sessions: SessionCache,
    private readonly router: ModelRouter,
  ) {}

  get location(): string {
    return this.file.location;
  }

  /**
   * Loads the file when its tag changed (always when `force`), then makes it the default route.
   * The first load throws when the file cannot be read or served (the process must not start).
   * @returns whether a new model was loaded
   */
  async load(first: boolean, force = false): Promise<boolean> {
    const file = this.file;
    if (!first && !force && (await file.tag()) === this.tag) return false;
    let read: { bytes: Uint8Array; tag: string };
    try {
      read = await file.read();
    } catch (err) {
      if (first) throw new Error(`MODEL_PATH ${file.location} cannot be read: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    const { prepareForServing } = await import('../onnx/prepare.ts');
    const prepared = prepareForServing(read.bytes);
    this.loads++;
    const name = this.name ?? fileBaseName(file.location);
    const identity: ModelIdentity = {
      name,
      version: `file:${this.loads}`,
      stage: null,
      aliases: [],
      metrics: {},
      runId: null,
      createdAt: null,
      source: file.location,
      cacheTag: `${name}\u0000file\u0000${read.tag}\u0000`,
    };
    const model = await this.sessions.create(identity, prepared.bytes, prepared.signature);
    this.sessions.adopt(`file\u0000${name}`, model);
    this.router.setDefault(model);
    this.tag = read.tag;
    return true;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

function fileBaseName(location: string): string {
  const base = location.slice(location.lastIndexOf('/') + 1);
  return base.replace(/\.onnx$/i, '') || 'model';
}
