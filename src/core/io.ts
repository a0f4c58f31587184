/** Small byte-level helpers shared by the workers, the runtime and the UI client. */

/** "812 B", "4.3 MB", "120 MB": what the UI and error messages show for sizes. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/**
 * Reads a fetch response into one buffer. With `onChunk`, the body is streamed so the caller can
 * report download progress (bytes loaded so far); without it, or without a body, it is read at once.
 */
export async function readResponseBytes(response: Response, onChunk?: (loaded: number) => void): Promise<Uint8Array> {
  if (!onChunk || !response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onChunk(loaded);
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
