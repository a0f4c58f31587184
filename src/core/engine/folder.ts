/**
 * Where the engines read the app's files (models/index.json, model folders, datastores/): a folder
 * under the app's base URL. The browser fetches it; Node tools and tests read public/ from disk
 * (node-folder.ts), so both run the same engine code on the same files.
 */
import { fetchModelFiles, type ModelFiles } from '../runtime/files';

/** `path` is a folder under `baseUrl`, ending in '/': 'models/', 'models/gpt-wt2/', 'datastores/'. */
export type FolderOpener = (baseUrl: string, path: string) => ModelFiles;

export const fetchFolder: FolderOpener = (baseUrl, path) => fetchModelFiles(new URL(path, baseUrl).href);
