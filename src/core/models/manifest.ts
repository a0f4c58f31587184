import { MANIFEST_FORMAT_VERSION, type GraphSpec, type ModelManifest } from '../../protocol/manifest';
import { ModelLoadError, sha256Hex, type ModelFiles, type Runtime, type RuntimeSession, type SelfCheckProbe } from '../runtime';

/** Hyperparameters a RETRO manifest must have, non-optional. */
export interface RetroHyperparameters {
  chunk: number;
  neighbours: number;
  neighbour_len: number;
  cca_layers: number[];
  encoder_layers: number;
  /** The cross-attention's token match spans the last n tokens; n > 1 adds the decoder input previous_ids. */
  match_ngram: number;
  /** The encoder also reads the retrieving chunks' ids (encoder input chunk_ids) to gate each neighbour by agreement. */
  chunk_agreement: boolean;
}

/** Reads and checks manifest.json: format version, architecture, the fields the runtime uses. */
export async function readManifest(files: ModelFiles): Promise<ModelManifest> {
  const where = `${files.location.replace(/\/$/, '')}/manifest.json`;
  const text = await files.text('manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError('bad-manifest', `${where}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return validateManifest(raw, where);
}

export function validateManifest(raw: unknown, where = 'manifest.json'): ModelManifest {
  const bad = (what: string) => new ModelLoadError('bad-manifest', `${where}: ${what}`);
  if (typeof raw !== 'object' || raw === null) throw bad('not a JSON object');
  const m = raw as Partial<ModelManifest>;
  if (m.format_version !== MANIFEST_FORMAT_VERSION) {
    throw new ModelLoadError(
      'format-version',
      `${where}: format_version ${JSON.stringify(m.format_version)} is not supported (this app reads version ${MANIFEST_FORMAT_VERSION}); ` +
        're-export the model or update the app',
    );
  }
  if (m.architecture !== 'gpt' && m.architecture !== 'retro') throw bad(`unknown architecture ${JSON.stringify(m.architecture)}`);
  const hp = m.hyperparameters;
  if (!hp) throw bad('hyperparameters missing');
  for (const key of ['vocab_size', 'context', 'n_layer', 'n_head', 'd_model', 'head_dim'] as const) {
    if (!Number.isInteger(hp[key]) || hp[key] <= 0) throw bad(`hyperparameters.${key} must be a positive integer`);
  }
  if (hp.head_dim * hp.n_head !== hp.d_model) throw bad('head_dim * n_head must equal d_model');
  if (!m.onnx?.decoder?.file) throw bad('onnx.decoder missing');
  if (m.architecture === 'retro') {
    for (const key of ['chunk', 'neighbours', 'neighbour_len', 'encoder_layers'] as const) {
      const v = hp[key];
      if (!Number.isInteger(v) || (v as number) <= 0) throw bad(`RETRO needs hyperparameters.${key} (positive integer)`);
    }
    if (!Array.isArray(hp.cca_layers) || hp.cca_layers.length === 0) throw bad('RETRO needs hyperparameters.cca_layers');
    if (hp.context! % hp.chunk! !== 0) throw bad('context must be a multiple of chunk');
    if (!m.onnx.encoder?.file) throw bad('RETRO needs onnx.encoder');
  }
  if (!m.tokenizer || !Number.isInteger(m.tokenizer.eot_id)) throw bad('tokenizer.eot_id missing');
  return m as ModelManifest;
}

export function retroHyperparameters(manifest: ModelManifest): RetroHyperparameters {
  const hp = manifest.hyperparameters;
  return {
    chunk: hp.chunk!,
    neighbours: hp.neighbours!,
    neighbour_len: hp.neighbour_len!,
    cca_layers: hp.cca_layers!,
    encoder_layers: hp.encoder_layers!,
    match_ngram: hp.match_ngram ?? 1,
    chunk_agreement: hp.chunk_agreement ?? false,
  };
}

export interface LoadGraphOptions {
  /** Check bytes and sha256 against the manifest (default true). */
  verify?: boolean;
  onProgress?: (loaded: number, total: number | undefined) => void;
  deviceOutputs?: readonly string[];
  probe?: SelfCheckProbe;
  /** Names the graph must have (the contract of docs/manifest.md). */
  inputs: readonly string[];
  outputs: readonly string[];
  /** Rewrites the checked bytes before they are opened (keepOutputs: a cut of the graph). */
  transform?: (bytes: Uint8Array) => Uint8Array;
}

/** Fetches one ONNX file of the manifest, checks it and opens a session on the runtime. */
export async function loadGraph(
  runtime: Runtime,
  files: ModelFiles,
  manifest: ModelManifest,
  spec: GraphSpec,
  options: LoadGraphOptions,
): Promise<RuntimeSession> {
  const label = `${manifest.id}/${spec.file}`;
  const bytes = await files.bytes(spec.file, options.onProgress);
  if (options.verify !== false) {
    if (spec.bytes && bytes.length !== spec.bytes) {
      throw new ModelLoadError('size-mismatch', `${label}: ${bytes.length} bytes, manifest says ${spec.bytes} (truncated or replaced file)`);
    }
    if (spec.sha256) {
      const hash = await sha256Hex(bytes);
      if (hash !== spec.sha256) throw new ModelLoadError('hash-mismatch', `${label}: sha256 ${hash.slice(0, 12)}... differs from the manifest's ${spec.sha256.slice(0, 12)}...`);
    }
  }
  const session = await runtime.createSession(options.transform ? options.transform(bytes) : bytes, {
    label,
    ...(options.deviceOutputs ? { deviceOutputs: options.deviceOutputs } : {}),
    ...(options.probe ? { probe: options.probe } : {}),
  });
  const missingIn = options.inputs.filter((n) => !session.inputNames.includes(n));
  const missingOut = options.outputs.filter((n) => !session.outputNames.includes(n));
  if (missingIn.length || missingOut.length) {
    await session.release();
    throw new ModelLoadError(
      'contract-mismatch',
      `${label}: graph lacks ${[...missingIn.map((n) => `input ${n}`), ...missingOut.map((n) => `output ${n}`)].join(', ')} (docs/manifest.md)`,
    );
  }
  return session;
}
