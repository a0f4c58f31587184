/** Writing measured numbers into a shipped model's manifest.json (`metrics.<name>`), keeping the rest. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeManifestMetric(modelDir: string, name: string, value: Record<string, unknown>): string {
  const path = join(modelDir, 'manifest.json');
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { metrics?: Record<string, unknown> };
  raw.metrics = { ...(raw.metrics ?? {}), [name]: value };
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(raw, null, 2)}\n`);
  renameSync(tmp, path);
  return `${path}#metrics.${name}`;
}
