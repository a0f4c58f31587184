import { ModelLoadError, errorMessage } from './errors';
import { readResponseBytes } from '../io';

/**
 * Where a model's files come from: `fetchModelFiles` in the browser (a URL folder, possibly served
 * from a cache), `nodeModelFiles` (node-files.ts) in the CLI tools and tests.
 */
export interface ModelFiles {
  /** Shown in error messages: a URL or a directory. */
  readonly location: string;
  text(name: string): Promise<string>;
  bytes(name: string, onProgress?: (loaded: number, total: number | undefined) => void): Promise<Uint8Array>;
  /**
   * The file as a Blob, gathered a few MB at a time so the whole file is never in memory at once
   * (the browser keeps large Blobs out of the page's heap). Optional: callers fall back to `bytes`.
   */
  blob?(name: string, onProgress?: (loaded: number, total: number | undefined) => void): Promise<Blob>;
}

/** Bytes of fetched chunks gathered before they are folded into the Blob being built. */
const BLOB_PIECE_BYTES = 16 * 1024 * 1024;

export function fetchModelFiles(baseUrl: string, fetchImpl: typeof fetch = fetch): ModelFiles {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (name: string): Promise<Response> => {
    let response: Response;
    try {
      response = await fetchImpl(base + name);
    } catch (error) {
      throw new ModelLoadError('missing-file', `${base}${name}: could not be fetched (${errorMessage(error)})`, { cause: error });
    }
    if (!response.ok) throw new ModelLoadError('missing-file', `${base}${name}: HTTP ${response.status}`);
    return response;
  };
  return {
    location: base,
    async text(name) {
      return (await get(name)).text();
    },
    async bytes(name, onProgress) {
      const response = await get(name);
      const header = response.headers.get('content-length');
      const total = header ? Number(header) : undefined;
      return readResponseBytes(response, onProgress && ((loaded) => onProgress(loaded, total)));
    },
    async blob(name, onProgress) {
      const response = await get(name);
      const header = response.headers.get('content-length');
      const total = header ? Number(header) : undefined;
      if (!response.body) return response.blob();
      const reader = response.body.getReader();
      let blob = new Blob([]);
      let parts: Uint8Array<ArrayBuffer>[] = [];
      let pending = 0;
      let loaded = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (value) {
          parts.push(value as Uint8Array<ArrayBuffer>);
          pending += value.length;
          loaded += value.length;
          onProgress?.(loaded, total);
        }
        // A Blob made of a Blob and new parts references the first one's data: no copy of what is gathered.
        if (pending >= BLOB_PIECE_BYTES || (done && parts.length > 0)) {
          blob = new Blob([blob, ...parts]);
          parts = [];
          pending = 0;
        }
        if (done) return blob;
      }
    },
  };
}

/** Hex SHA-256 (WebCrypto exists in workers and in Node 20). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
