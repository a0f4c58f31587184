export { Runtime, type RuntimeOptions, type SessionSpec, type SelfCheckProbe } from './runtime';
export { RuntimeSession } from './session';
export { RtTensor, product } from './tensor';
export { ModelLoadError, InferenceError, serializeError, errorMessage } from './errors';
export { fetchModelFiles, sha256Hex, type ModelFiles } from './files';
