import { describe, expect, it } from 'vitest';
import { fetchModelFiles } from './files';

const MB = 1024 * 1024;

/** A static file server as fetch: answers Range with 206 and Content-Range, like vite preview (sirv). */
function server(files: Record<string, Uint8Array>, options: { ranges?: boolean; changeAfter?: number } = {}) {
  const requests: (string | null)[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const name = String(input).split('/').pop()!;
    let body = files[name];
    if (!body) return new Response('not found', { status: 404 });
    const range = new Headers(init?.headers).get('range');
    requests.push(range);
    // The file is rebuilt on the server after this many requests.
    if (options.changeAfter !== undefined && requests.length > options.changeAfter) body = body.subarray(0, body.length - 1);
    const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (!m || options.ranges === false) return new Response(body.slice(), { status: 200, headers: { 'content-length': String(body.length) } });
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    return new Response(body.slice(start, end + 1), { status: 206, headers: { 'content-range': `bytes ${start}-${end}/${body.length}` } });
  }) as typeof fetch;
  return { fetchImpl, requests };
}

function file(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 2654435761) >>> 24;
  return out;
}

// Not toEqual: its element-by-element diff of 40 MB exhausts the heap.
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

describe('fetchModelFiles().blob', () => {
  it('gathers a file range by range into the same bytes, reporting progress after each range', async () => {
    const data = file(40 * MB + 123);
    const { fetchImpl, requests } = server({ 'a.rlds': data });
    const seen: [number, number | undefined][] = [];
    const blob = await fetchModelFiles('http://x/datastores/', fetchImpl).blob!('a.rlds', (loaded, total) => seen.push([loaded, total]));
    expect(sameBytes(new Uint8Array(await blob.arrayBuffer()), data)).toBe(true);
    expect(requests).toEqual([`bytes=0-${16 * MB - 1}`, `bytes=${16 * MB}-${32 * MB - 1}`, `bytes=${32 * MB}-${data.length - 1}`]);
    expect(seen).toEqual([[16 * MB, data.length], [32 * MB, data.length], [data.length, data.length]]);
  });

  it('takes the whole file from a server that ignores Range', async () => {
    const data = file(3 * MB);
    const { fetchImpl } = server({ 'a.rlds': data }, { ranges: false });
    const seen: number[] = [];
    const blob = await fetchModelFiles('http://x/', fetchImpl).blob!('a.rlds', (loaded) => seen.push(loaded));
    expect(sameBytes(new Uint8Array(await blob.arrayBuffer()), data)).toBe(true);
    expect(seen).toEqual([data.length]);
  });

  it('refuses a file that changed on the server between two ranges instead of splicing two versions', async () => {
    const { fetchImpl } = server({ 'a.rlds': file(20 * MB) }, { changeAfter: 1 });
    await expect(fetchModelFiles('http://x/', fetchImpl).blob!('a.rlds')).rejects.toThrow(/changed on the server while it was being copied/);
  });

  it('says which file is missing', async () => {
    const { fetchImpl } = server({});
    await expect(fetchModelFiles('http://x/d/', fetchImpl).blob!('gone.rlds')).rejects.toThrow('http://x/d/gone.rlds: HTTP 404');
  });
});
