/** Errors of reading and writing ONNX files (no dependencies: cheap to import anywhere). */

/**
 * The bytes are not a model modelplane can serve. `reason` is a short human sentence suitable for
 * a 400 reply, e.g. `tensor 'W' keeps its data in an external file (weights.bin)`.
 */
export class InvalidModelError extends Error {
  readonly code = 'invalid_model';
  readonly reason: string;

  constructor(reason: string, options?: ErrorOptions) {
    super(`invalid ONNX model: ${reason}`, options);
    this.name = 'InvalidModelError';
    this.reason = reason;
  }
}

/**
 * Largest ONNX file onnxruntime reads: protobuf parses at most 2 GiB - 1 bytes in one message (a
 * larger model needs its weights in external files, which tree operators cannot use).
 */
export const ONNX_MAX_BYTES = 2 ** 31 - 1;

/**
 * An exported model would be larger than it may be: onnxruntime reads at most 2 GiB of protobuf
 * (`ONNX_MAX_BYTES`), and a deployment may set a lower bound for trained models.
 */
export class ModelTooLargeError extends Error {
  readonly bytes: number;
  readonly limit: number;

  constructor(bytes: number, limit: number) {
    super(`the ONNX model would be ${bytes} bytes; at most ${limit} are allowed`);
    this.name = 'ModelTooLargeError';
    this.bytes = bytes;
    this.limit = limit;
  }
}
