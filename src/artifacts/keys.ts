import { InvalidArtifactKeyError } from './errors.ts';

/** Longest key accepted, in UTF-8 bytes (the S3 limit). */
export const MAX_KEY_BYTES = 1024;
/** Longest single segment, in UTF-8 bytes: the usual file-name limit, so local and S3 accept the same keys. */
export const MAX_SEGMENT_BYTES = 255;
/**
 * Suffix of the local store's in-flight temp files. Keys whose last segment ends with it are
 * refused by every backend, so a temp file can never be mistaken for (or collide with) an object.
 */
export const TEMP_SUFFIX = '.modelplane-tmp';

/**
 * Checks one object key and returns it unchanged, or throws `InvalidArtifactKeyError`.
 * Refused: empty keys, absolute paths, empty segments (`a//b`, trailing `/`), `.` and `..`
 * segments, backslashes, NUL, keys over 1024 bytes, segments over 255 bytes, and the reserved
 * temp-file suffix.
 */
export function validateKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArtifactKeyError(String(key), 'is empty');
  checkCharacters(key);
  if (key.startsWith('/')) throw new InvalidArtifactKeyError(key, 'is an absolute path');
  checkSegments(key, key);
  if (key.endsWith(TEMP_SUFFIX)) throw new InvalidArtifactKeyError(key, `ends with the reserved suffix ${TEMP_SUFFIX}`);
  return key;
}

/**
 * Checks a list/delete prefix and returns it unchanged. A prefix is a plain string prefix of keys
 * (S3 semantics): `''` means everything, `models/` a folder, `models/ab` every key starting so.
 * Every complete segment (before the last `/`) follows the key rules; the trailing partial
 * segment is only checked for forbidden characters, since it never names a path by itself.
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new InvalidArtifactKeyError(String(prefix), 'is not a string');
  if (prefix.length === 0) return prefix;
  checkCharacters(prefix);
  if (prefix.startsWith('/')) throw new InvalidArtifactKeyError(prefix, 'is an absolute path');
  const slash = prefix.lastIndexOf('/');
  if (slash >= 0) checkSegments(prefix.slice(0, slash), prefix);
  return prefix;
}

function checkCharacters(key: string): void {
  if (key.includes('\0')) throw new InvalidArtifactKeyError(key, 'contains NUL');
  if (key.includes('\\')) throw new InvalidArtifactKeyError(key, 'contains a backslash');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidArtifactKeyError(key, `is longer than ${MAX_KEY_BYTES} bytes`);
  }
}

function checkSegments(path: string, key: string): void {
  for (const segment of path.split('/')) {
    if (segment.length === 0) throw new InvalidArtifactKeyError(key, 'has an empty segment');
    if (segment === '.' || segment === '..') throw new InvalidArtifactKeyError(key, `contains a "${segment}" segment`);
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw new InvalidArtifactKeyError(key, `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
}

/**
 * Orders keys the way S3 lists them: by UTF-8 bytes, which equals Unicode code-point order.
 * Plain `<` on JS strings compares UTF-16 code units and puts astral characters (surrogates,
 * 0xD800-0xDFFF) before U+E000-U+FFFF; shifting those two ranges restores code-point order
 * without allocating.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}
