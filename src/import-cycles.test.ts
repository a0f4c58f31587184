/**
 * The import-cycle rule (.dependency-cruiser.cjs, run over the whole tree by `npm run check:cycles`
 * in `npm test`) catches a cycle: two files that import each other are reported, one that imports
 * the other only is not.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cruise, type IConfiguration } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const config = createRequire(import.meta.url)('../.dependency-cruiser.cjs') as IConfiguration;
const dirs: string[] = [];

async function violations(files: Record<string, string>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'retrolab-cycles-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const result = await cruise([dir], { ruleSet: { forbidden: config.forbidden }, validate: true, tsPreCompilationDeps: true });
  if (typeof result.output === 'string') throw new Error('expected a JSON result');
  return result.output.summary.violations.map((v) => v.rule.name);
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the import-cycle rule', () => {
  it('reports two modules that import each other, type-only imports included', async () => {
    expect(await violations({ 'a.ts': "import { b } from './b';\nexport const a = () => b;\n", 'b.ts': "import type { a } from './a';\nexport const b = (x: typeof a) => x;\n" })).toContain('no-circular');
  });

  it('accepts imports in one direction', async () => {
    expect(await violations({ 'a.ts': "import { b } from './b';\nexport const a = () => b;\n", 'b.ts': 'export const b = 1;\n' })).toEqual([]);
  });
});
