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
   * The file as a Blob, fetched in ranges of a few MB straight into the browser's blob storage, so
   * the page's heap never holds it. Optional: callers fall back to `bytes`.
   */
  blob?(name: string, onProgress?: (loaded: number, total: number | undefined) => void): Promise<Blob>;
}

/** Bytes asked for per range when a file is gathered as a Blob (also the progress bar's step). */
const BLOB_RANGE_BYTES = 16 * 1024 * 1024;

/** The file's size from a 206's Content-Range ("bytes 0-99/1234"), if the server said. */
function rangeTotal(response: Response): number | undefined {
  const m = /\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

function rangeStart(response: Response): number | undefined {
  const m = /^bytes\s+(\d+)-/.exec(response.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

export function fetchModelFiles(baseUrl: string, fetchImpl: typeof fetch = fetch): ModelFiles {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (name: string, headers?: Record<string, string>): Promise<Response> => {
    let response: Response;
    try {
      response = await fetchImpl(base + name, headers ? { headers } : undefined);
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
      // Range by range, each read with Response.blob(): the browser streams a body it has not
      // handed to script straight into its own blob storage, so the bytes never pass through the
      // page's heap (gathering the stream's chunks in script did: the first use of the kNN-LM
      // datastore peaked at 1.8x its size in the tab). The ranges are what the progress bar counts.
      const first = await get(name, { Range: `bytes=0-${BLOB_RANGE_BYTES - 1}` });
      const total = rangeTotal(first);
      if (first.status !== 206 || total === undefined) {
        // A server that ignores Range sends the whole file: one piece, progress at the end.
        const whole = await first.blob();
        onProgress?.(whole.size, whole.size);
        return whole;
      }
      const pieces: Blob[] = [await first.blob()];
      let loaded = pieces[0]!.size;
      onProgress?.(loaded, total);
      while (loaded < total) {
        const end = Math.min(total, loaded + BLOB_RANGE_BYTES) - 1;
        const response = await get(name, { Range: `bytes=${loaded}-${end}` });
        // A file replaced between two ranges would splice two versions: refuse instead.
        if (response.status !== 206 || rangeTotal(response) !== total || rangeStart(response) !== loaded) {
          throw new ModelLoadError('missing-file', `${base}${name}: changed on the server while it was being copied (range ${loaded}-${end} came back as ${response.status} ${response.headers.get('content-range') ?? ''}); reload to try again`);
        }
        const piece = await response.blob();
        if (piece.size === 0) throw new ModelLoadError('missing-file', `${base}${name}: the server sent an empty range at byte ${loaded} of ${total}`);
        pieces.push(piece);
        loaded += piece.size;
        onProgress?.(loaded, total);
      }
      // A Blob made of Blobs references their data: nothing is copied.
      return new Blob(pieces);
    },
  };
}

/** Hex SHA-256 (WebCrypto exists in workers and in Node 20). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
