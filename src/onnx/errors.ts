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
