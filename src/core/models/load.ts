import type { ModelFiles, Runtime } from '../runtime';
import { GptModel } from './gpt';
import { readManifest } from './manifest';
import { RetroModel, type RetroLoadOptions } from './retro';

/** Loads whatever model the manifest describes (GPT or RETRO). */
export async function loadModel(runtime: Runtime, files: ModelFiles, options: RetroLoadOptions = {}): Promise<GptModel | RetroModel> {
  const manifest = await readManifest(files);
  if (manifest.architecture === 'retro') return RetroModel.fromManifest(runtime, files, manifest, options);
  return GptModel.fromManifest(runtime, files, manifest, options);
}
