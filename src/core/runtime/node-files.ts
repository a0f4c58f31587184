/** Node-only (CLI tools, tests): never import this from browser code. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ModelLoadError, errorMessage } from './errors';
import type { ModelFiles } from './files';

export function nodeModelFiles(dir: string): ModelFiles {
  const root = resolve(dir);
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(root, name));
    } catch (error) {
      const missing = (error as { code?: string }).code === 'ENOENT';
      throw new ModelLoadError('missing-file', `${join(root, name)}: ${missing ? 'file not found' : errorMessage(error)}`, { cause: error });
    }
  };
  return {
    location: root,
    async text(name) {
      return (await read(name)).toString('utf8');
    },
    async bytes(name) {
      const buffer = await read(name);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },
  };
}
