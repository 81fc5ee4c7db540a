/**
 * Errors raised by dataset ingest and the built-in datasets. Each carries a stable `code` and the
 * HTTP `status` it maps to, so the platform error handler can render them without knowing this
 * module's internals.
 */

/** Base class of every dataset error. */
export class DatasetError extends Error {
  /** Stable machine-readable code, e.g. `DATASET_PARSE_ERROR`. */
  readonly code: string;
  /** HTTP status the error maps to. */
  readonly status: number;

  constructor(code: string, status: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Where in the input a parse error happened. All fields optional: only what is known is set. */
export interface ParseErrorLocation {
  /** 1-based physical line of the file (CSV input). */
  readonly line?: number;
  /** 0-based index of the row (JSON rows input). */
  readonly row?: number;
  /** Column name (or `#<index>` when the header is not known yet). */
  readonly field?: string;
}

/**
 * The input is not a well-formed table: ragged row, bad quoting, empty or duplicate header name,
 * no data rows, a value of an unsupported JSON type. The message always names the place.
 */
export class DatasetParseError extends DatasetError {
  readonly line: number | undefined;
  readonly row: number | undefined;
  readonly field: string | undefined;

  constructor(message: string, location: ParseErrorLocation = {}) {
    super('DATASET_PARSE_ERROR', 400, message);
    this.line = location.line;
    this.row = location.row;
    this.field = location.field;
  }
}

/** The upload is larger than the configured limit; reading stopped as soon as it was exceeded. */
export class DatasetTooLargeError extends DatasetError {
  /** The configured limit in bytes. */
  readonly maxBytes: number;
  /** Bytes read before stopping (greater than `maxBytes`). */
  readonly bytesRead: number;

  constructor(maxBytes: number, bytesRead: number) {
    super('DATASET_TOO_LARGE', 413, `dataset is larger than the limit of ${maxBytes} bytes`);
    this.maxBytes = maxBytes;
    this.bytesRead = bytesRead;
  }
}

/** No built-in dataset has this name. */
export class UnknownBuiltinDatasetError extends DatasetError {
  readonly datasetName: string;

  constructor(name: string, known: readonly string[]) {
    super('BUILTIN_DATASET_NOT_FOUND', 404, `no built-in dataset named "${name}" (known: ${known.join(', ')})`);
    this.datasetName = name;
  }
}

/** Parameters of a built-in generator are out of range or of the wrong type. */
export class InvalidDatasetParamsError extends DatasetError {
  constructor(message: string) {
    super('INVALID_DATASET_PARAMS', 400, message);
  }
}
