import type { ModelLoadErrorCode, SerializedError } from '../../protocol/model';

/**
 * A model that cannot be used: the message names the model location and the file, so the UI can
 * show it as is. `code` lets callers branch (e.g. offer a re-download on `hash-mismatch`).
 */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
  readonly code: ModelLoadErrorCode;

  constructor(code: ModelLoadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A failure while running a loaded model (bad input shape, backend lost, ...). */
export class InferenceError extends Error {
  override readonly name = 'InferenceError';
}

/** Errors cross worker boundaries as plain objects (name, message, code), never as bare strings. */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  // ModelLoadError's code, or any other error's string code (DOMException's are numbers: left out).
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
