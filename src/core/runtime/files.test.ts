import { describe, expect, it } from 'vitest';
import { fetchModelFiles } from './files';

const MB = 1024 * 1024;

/** A static file server as fetch: answers Range with 206 and Content-Range, like vite preview (sirv). */
function server(files: Record<string, Uint8Array>, options: { ranges?: boolean; changeAfter?: number; breakOff?: (request: number) => boolean } = {}) {
  const requests: (string | null)[] = [];
  const cacheModes: (RequestCache | undefined)[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const name = String(input).split('/').pop()!;
    let body = files[name];
    cacheModes.push(init?.cache);
    if (!body) return new Response('not found', { status: 404 });
    const range = new Headers(init?.headers).get('range');
    requests.push(range);
    // The transfer breaks off after the first bytes, as Chromium's ERR_CACHE_WRITE_FAILURE does.
    if (options.breakOff?.(requests.length)) {
      const broken = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(body!.slice(0, 10));
          controller.error(new TypeError('network error'));
        },
      });
      const start = range ? Number(/^bytes=(\d+)-/.exec(range)![1]) : 0;
      return new Response(broken, { status: range ? 206 : 200, headers: range ? { 'content-range': `bytes ${start}-${start + 9}/${body.length}` } : { 'content-length': String(body.length) } });
    }
    // The file is rebuilt on the server after this many requests.
    if (options.changeAfter !== undefined && requests.length > options.changeAfter) body = body.subarray(0, body.length - 1);
    const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (!m || options.ranges === false) return new Response(body.slice(), { status: 200, headers: { 'content-length': String(body.length) } });
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    return new Response(body.slice(start, end + 1), { status: 206, headers: { 'content-range': `bytes ${start}-${end}/${body.length}` } });
  }) as typeof fetch;
  return { fetchImpl, requests, cacheModes };
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

describe('a download whose transfer breaks off', () => {
  it('is fetched again, bypassing the HTTP cache, and gives the whole file', async () => {
    const data = file(300_000);
    const { fetchImpl, cacheModes } = server({ 'decoder.onnx': data }, { breakOff: (n) => n === 1 });
    const seen: number[] = [];
    const bytes = await fetchModelFiles('http://x/models/', fetchImpl).bytes('decoder.onnx', (loaded) => seen.push(loaded));
    expect(sameBytes(bytes, data)).toBe(true);
    expect(cacheModes).toEqual([undefined, 'no-store']);
    expect(seen.at(-1)).toBe(data.length);
  });

  it('fetches only the broken range again when gathering a Blob', async () => {
    const data = file(40 * MB);
    const { fetchImpl, requests } = server({ 'a.rlds': data }, { breakOff: (n) => n === 2 });
    const blob = await fetchModelFiles('http://x/', fetchImpl).blob!('a.rlds');
    expect(sameBytes(new Uint8Array(await blob.arrayBuffer()), data)).toBe(true);
    expect(requests).toEqual([`bytes=0-${16 * MB - 1}`, `bytes=${16 * MB}-${32 * MB - 1}`, `bytes=${16 * MB}-${32 * MB - 1}`, `bytes=${32 * MB}-${data.length - 1}`]);
  });

  it('gives up after three tries with a message that says so', async () => {
    const { fetchImpl, requests } = server({ 'decoder.onnx': file(1000) }, { breakOff: () => true });
    await expect(fetchModelFiles('http://x/m/', fetchImpl).bytes('decoder.onnx', () => {})).rejects.toThrow('http://x/m/decoder.onnx: the download broke off 3 times (network error)');
    expect(requests).toHaveLength(3);
  });

  it('is not retried when the server answered (a missing file)', async () => {
    const { fetchImpl, cacheModes } = server({});
    await expect(fetchModelFiles('http://x/m/', fetchImpl).bytes('gone.onnx')).rejects.toThrow('http://x/m/gone.onnx: HTTP 404');
    expect(cacheModes).toHaveLength(1);
  });
});
