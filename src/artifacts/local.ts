import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { ArtifactInfo, ArtifactStore } from './artifact-store.ts';
import { ArtifactNotFoundError, InvalidArtifactKeyError } from './errors.ts';
import { compareKeys, TEMP_SUFFIX, validateKey, validatePrefix } from './keys.ts';

/** How often `put` retries when a concurrent delete removed the folder it had just created. */
const PUT_ATTEMPTS = 5;

/**
 * Artifact store on a local directory. Keys map to files below the root; `put` writes a temp
 * file in the target folder, fsyncs it and renames it into place, so readers see either the old
 * or the new object, never a partial one. The etag is derived from the file's inode, size and
 * mtime (nanoseconds), so no side files are kept.
 */
export class LocalArtifactStore implements ArtifactStore {
  readonly description: string;
  /** Absolute root as given (made absolute); created on first use. */
  readonly root: string;
  #realRoot: Promise<string> | undefined;

  /** @param root folder that holds the objects; created on demand, relative paths resolve against the cwd. */
  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = `local:${this.root}`;
  }

  async put(key: string, body: Buffer | Uint8Array | Readable): Promise<ArtifactInfo> {
    let file: string;
    try {
      file = await this.#pathFor(key);
    } catch (err) {
      if (!(body instanceof Uint8Array)) body.destroy();
      throw err;
    }
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${randomBytes(9).toString('hex')}${TEMP_SUFFIX}`);
    let handle: FileHandle | undefined;
    try {
      handle = await this.#createTemp(key, dir, tmp);
      if (body instanceof Uint8Array) {
        await handle.writeFile(body);
      } else {
        // A plain write loop as the sink keeps the handle open for the fsync below (an fs
        // WriteStream would close it) and still gets pipeline's backpressure and teardown.
        const sink = handle;
        await pipeline(body, async (source: AsyncIterable<Uint8Array | string>) => {
          for await (const chunk of source) await sink.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
        });
      }
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(tmp, file).catch((err: unknown) => {
        if (errno(err) === 'EISDIR' || errno(err) === 'ENOTEMPTY' || errno(err) === 'EEXIST') {
          throw new InvalidArtifactKeyError(key, 'names an existing folder', { cause: err });
        }
        throw err;
      });
    } catch (err) {
      if (handle) await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      // A failed write (a refused upload) leaves no empty folders behind; a concurrent put
      // into the same folder retries when it finds the folder gone (#createTemp).
      await this.#pruneEmptyFolders([dir]).catch(() => undefined);
      if (!(body instanceof Uint8Array) && !body.destroyed) body.destroy();
      throw err;
    }
    await syncDirectory(dir);
    const info = await statFile(key, file);
    if (!info) throw new ArtifactNotFoundError(key);
    return info;
  }

  async getBuffer(key: string): Promise<Buffer> {
    const file = await this.#pathFor(key);
    try {
      return await readFile(file);
    } catch (err) {
      throw notFoundOr(key, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    const file = await this.#pathFor(key);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw notFoundOr(key, err);
    }
    // open() succeeds on folders; reading one fails later, so refuse it here as "not an object".
    const st = await handle.stat().catch(async (err: unknown) => {
      await handle.close();
      throw err;
    });
    if (!st.isFile()) {
      await handle.close();
      throw new ArtifactNotFoundError(key);
    }
    return handle.createReadStream();
  }

  async stat(key: string): Promise<ArtifactInfo | undefined> {
    return statFile(key, await this.#pathFor(key));
  }

  async list(prefix: string): Promise<ArtifactInfo[]> {
    validatePrefix(prefix);
    const realRoot = await this.#ensureRoot();
    // Start at the deepest folder the prefix fully names; the partial last segment is a filter.
    const slash = prefix.lastIndexOf('/');
    const startRel = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    const startDir = path.join(realRoot, ...startRel.split('/').filter(Boolean));
    // The walk below never follows symlinks, but the start folder is reached by path: make sure
    // a symlinked folder named by the prefix does not lead outside the root.
    let realStart: string;
    try {
      realStart = await realpath(startDir);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
    if (!isInside(realStart, realRoot)) throw new InvalidArtifactKeyError(prefix, 'resolves outside the artifact root');
    const out: ArtifactInfo[] = [];
    await walk(realStart, startRel, prefix, out);
    out.sort((a, b) => compareKeys(a.key, b.key));
    return out;
  }

  async delete(key: string): Promise<void> {
    const file = await this.#pathFor(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = errno(err);
      // Absent, or a folder (not an object): nothing to delete.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw err;
    }
    await this.#pruneEmptyFolders([path.dirname(file)]);
  }

  async deletePrefix(prefix: string): Promise<number> {
    const items = await this.list(prefix);
    const realRoot = await this.#ensureRoot();
    const dirs = new Set<string>();
    let deleted = 0;
    for (const item of items) {
      const file = path.join(realRoot, ...item.key.split('/'));
      try {
        await unlink(file);
        deleted++;
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err;
      }
      dirs.add(path.dirname(file));
    }
    await this.#pruneEmptyFolders([...dirs]);
    return deleted;
  }

  async sweepTemporary(prefix: string, before: number): Promise<number> {
    validatePrefix(prefix);
    const realRoot = await this.#ensureRoot();
    const start = path.join(realRoot, ...prefix.split('/').filter(Boolean));
    const dirs: string[] = [];
    let removed = 0;
    const walkTemp = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
        throw err;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          dirs.push(full);
          await walkTemp(full);
        } else if (entry.isFile() && entry.name.endsWith(TEMP_SUFFIX)) {
          const st = await stat(full).catch(() => undefined);
          if (st === undefined || st.mtimeMs >= before) continue;
          await unlink(full).catch(() => undefined);
          removed++;
        }
      }
    };
    await walkTemp(start);
    await this.#pruneEmptyFolders(dirs);
    return removed;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  /** Creates the root once and remembers its real path (symlinks resolved) for containment checks. */
  #ensureRoot(): Promise<string> {
    if (!this.#realRoot) {
      const pending = mkdir(this.root, { recursive: true }).then(() => realpath(this.root));
      // A failed creation must not poison later calls (e.g. a volume mounted late).
      pending.catch(() => {
        if (this.#realRoot === pending) this.#realRoot = undefined;
      });
      this.#realRoot = pending;
    }
    return this.#realRoot;
  }

  /**
   * Maps a key to its file path after validating it, and checks that the nearest existing
   * ancestor really lies under the root: a symlink inside the root must not lead outside.
   */
  async #pathFor(key: string): Promise<string> {
    validateKey(key);
    const realRoot = await this.#ensureRoot();
    const file = path.join(realRoot, ...key.split('/'));
    let probe = file;
    for (;;) {
      let real: string;
      try {
        real = await realpath(probe);
      } catch (err) {
        const code = errno(err);
        if ((code === 'ENOENT' || code === 'ENOTDIR') && probe !== realRoot) {
          probe = path.dirname(probe);
          continue;
        }
        throw err;
      }
      if (!isInside(real, realRoot)) throw new InvalidArtifactKeyError(key, 'resolves outside the artifact root');
      return file;
    }
  }

  async #createTemp(key: string, dir: string, tmp: string): Promise<FileHandle> {
    const realRoot = await this.#ensureRoot();
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOTDIR' || code === 'EEXIST') {
          throw new InvalidArtifactKeyError(key, 'has a parent that is an existing object', { cause: err });
        }
        throw err;
      }
      try {
        // The folder may have just been created through a symlink; re-check containment.
        if (!isInside(await realpath(dir), realRoot)) {
          throw new InvalidArtifactKeyError(key, 'resolves outside the artifact root');
        }
        return await open(tmp, 'wx', 0o644);
      } catch (err) {
        // A concurrent delete pruned the folder between mkdir and open: create it again.
        if (errno(err) === 'ENOENT' && attempt < PUT_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** Removes folders left empty, from each given folder up to (not including) the root. */
  async #pruneEmptyFolders(dirs: string[]): Promise<void> {
    const realRoot = await this.#ensureRoot();
    // Deepest first, so a parent is tried after its children are gone.
    dirs.sort((a, b) => b.length - a.length);
    for (const start of dirs) {
      let dir = start;
      while (dir !== realRoot && isInside(dir, realRoot)) {
        try {
          await rmdir(dir);
        } catch (err) {
          const code = errno(err);
          if (code === 'ENOTEMPTY' || code === 'EEXIST') break;
          if (code !== 'ENOENT') throw err;
        }
        dir = path.dirname(dir);
      }
    }
  }
}

/** Recursively collects regular files under `dir` whose key starts with `prefix`. */
async function walk(dir: string, rel: string, prefix: string, out: ArtifactInfo[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  const files: Promise<ArtifactInfo | undefined>[] = [];
  const subdirs: Promise<void>[] = [];
  for (const entry of entries) {
    const key = rel + entry.name;
    if (entry.isDirectory()) {
      const asFolder = `${key}/`;
      // Descend only where the folder and the prefix overlap.
      if (asFolder.startsWith(prefix) || prefix.startsWith(asFolder)) {
        subdirs.push(walk(path.join(dir, entry.name), asFolder, prefix, out));
      }
    } else if (entry.isFile() && key.startsWith(prefix) && !entry.name.endsWith(TEMP_SUFFIX)) {
      // Symlinks are not listed: the store never creates them and following them could leave the root.
      files.push(statFile(key, path.join(dir, entry.name)));
    }
  }
  for (const info of await Promise.all(files)) if (info) out.push(info);
  await Promise.all(subdirs);
}

async function statFile(key: string, file: string): Promise<ArtifactInfo | undefined> {
  try {
    const st = await stat(file, { bigint: true });
    if (!st.isFile()) return undefined;
    // mtime alone is coarse (kernel timestamps tick per jiffy); every put renames a new file
    // over the old one, so the inode always differs from the version it replaced.
    const etag = `${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}`;
    return { key, size: Number(st.size), etag, lastModified: new Date(Number(st.mtimeNs / 1_000_000n)) };
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** fsync of the folder makes the rename itself durable; some platforms refuse it, which is fine. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Durability of the folder entry is best-effort: the object is already in place.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function isInside(candidate: string, root: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function notFoundOr(key: string, err: unknown): unknown {
  const code = errno(err);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return new ArtifactNotFoundError(key, { cause: err });
  return err;
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
