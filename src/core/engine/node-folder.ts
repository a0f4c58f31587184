/** Node-only (tools, tests): the engines' folders read from a directory laid out like public/. */
import { join } from 'node:path';
import { nodeModelFiles } from '../runtime/node-files';
import type { FolderOpener } from './folder';

export function nodeFolder(publicDir: string): FolderOpener {
  return (_baseUrl, path) => nodeModelFiles(join(publicDir, path));
}
