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

/** Tries of one download (or one range) whose transfer broke off, before giving up. */
const TRANSFER_TRIES = 3;

/**
 * A transfer that broke off (fetch and body reads reject with a TypeError: "network error",
 * "Failed to fetch"), as opposed to an answer the server gave (a 404, a file that changed).
 */
function transferFailed(error: unknown): boolean {
  return error instanceof TypeError || (error instanceof ModelLoadError && error.cause instanceof TypeError);
}

export function fetchModelFiles(baseUrl: string, fetchImpl: typeof fetch = fetch): ModelFiles {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const get = async (name: string, init: RequestInit): Promise<Response> => {
    let response: Response;
    try {
      response = await fetchImpl(base + name, init);
    } catch (error) {
      throw new ModelLoadError('missing-file', `${base}${name}: could not be fetched (${errorMessage(error)})`, { cause: error });
    }
    if (!response.ok) throw new ModelLoadError('missing-file', `${base}${name}: HTTP ${response.status}`);
    return response;
  };
  /**
   * Runs one download (request and body) again when its transfer broke off, bypassing the HTTP
   * cache. On a first visit the service worker precaches the same models the page is fetching, and
   * Chromium then sometimes fails the page's copy with net::ERR_CACHE_WRITE_FAILURE (seen about one
   * first load in six on a 2-core VM: "The models could not be loaded: network error"); the file
   * itself is fine, and a request that neither reads nor writes the cache gets it.
   */
  const download = async <T>(name: string, headers: Record<string, string> | undefined, read: (response: Response) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await read(await get(name, { ...(headers ? { headers } : {}), ...(attempt > 1 ? { cache: 'no-store' as const } : {}) }));
      } catch (error) {
        if (!transferFailed(error)) throw error;
        if (attempt === TRANSFER_TRIES) throw new ModelLoadError('missing-file', `${base}${name}: the download broke off ${TRANSFER_TRIES} times (${errorMessage(error)}); check the connection and reload`, { cause: error });
      }
    }
  };
  return {
    location: base,
    async text(name) {
      return download(name, undefined, (response) => response.text());
    },
    async bytes(name, onProgress) {
      return download(name, undefined, (response) => {
        const header = response.headers.get('content-length');
        const total = header ? Number(header) : undefined;
        return readResponseBytes(response, onProgress && ((loaded) => onProgress(loaded, total)));
      });
    },
    async blob(name, onProgress) {
      // Range by range, each read with Response.blob(): the browser streams a body it has not
      // handed to script straight into its own blob storage, so the bytes never pass through the
      // page's heap (gathering the stream's chunks in script did: the first use of the kNN-LM
      // datastore peaked at 1.8x its size in the tab). The ranges are what the progress bar counts,
      // and a range whose transfer broke off is fetched again, not the whole file.
      const first = await download(name, { Range: `bytes=0-${BLOB_RANGE_BYTES - 1}` }, async (response) => ({ response, piece: await response.blob() }));
      const total = rangeTotal(first.response);
      if (first.response.status !== 206 || total === undefined) {
        // A server that ignores Range sends the whole file: one piece, progress at the end.
        onProgress?.(first.piece.size, first.piece.size);
        return first.piece;
      }
      const pieces: Blob[] = [first.piece];
      let loaded = first.piece.size;
      onProgress?.(loaded, total);
      while (loaded < total) {
        const end = Math.min(total, loaded + BLOB_RANGE_BYTES) - 1;
        const piece = await download(name, { Range: `bytes=${loaded}-${end}` }, (response) => {
          // A file replaced between two ranges would splice two versions: refuse instead.
          if (response.status !== 206 || rangeTotal(response) !== total || rangeStart(response) !== loaded) {
            throw new ModelLoadError('missing-file', `${base}${name}: changed on the server while it was being copied (range ${loaded}-${end} came back as ${response.status} ${response.headers.get('content-range') ?? ''}); reload to try again`);
          }
          return response.blob();
        });
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
