import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './datastore-node';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'cli', 'datastore.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The shipped RETRO's tokenizer, embedder and chunking (public/models), through the app's retrieval engine.
describe('npm run datastore (cli/datastore.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'retrolab-cli-'));
  const docs = [
    { title: 'Lobster', text: 'Homarus gammarus, known as the European lobster or common lobster, is a species of clawed lobster from the eastern Atlantic Ocean.' },
    { title: 'Rhine', text: 'The Rhine is a European river that begins in the Swiss canton of Graubünden and flows north into the North Sea.' },
  ];
  const input = join(dir, 'docs.jsonl');
  writeFileSync(input, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');

  it('builds, inspects and queries a datastore (flat and voy)', () => {
    for (const index of ['flat', 'voy']) {
      const out = join(dir, `docs-${index}.rlds`);
      const build = cli('build', '--input', input, '--index', index, '--name', 'Two docs', '--out', out);
      expect(build.code, build.stderr).toBe(0);
      expect(build.stderr).toMatch(/chunks\/s overall/);
      const stats = JSON.parse(build.stdout);
      expect(stats.documents).toBe(2);
      expect(stats.chunks).toBeGreaterThanOrEqual(4);

      const info = cli('info', out);
      expect(info.code, info.stderr).toBe(0);
      const meta = JSON.parse(info.stdout);
      expect(meta).toMatchObject({ ok: true, name: 'Two docs', documents: 2, chunks: stats.chunks, chunkSize: 32, neighbourLen: 64, dim: 256, indexKind: index });

      const search = cli('search', out, '--text', 'the European lobster or common lobster', '--k', '1');
      expect(search.code, search.stderr).toBe(0);
      // The query (its last 8 tokens) overlaps a Lobster chunk by most of its tokens.
      expect(search.stdout).toMatch(/#\d+ {2}distance 0\.[0-3]\d* {2}"Lobster"\n {2}chunk: .*lobster/);
    }
  });

  it('fails with the typed error and the line for bad input, and with usage for bad flags', () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"text":"fine"}\n{"title":"no text"}\n');
    const r = cli('build', '--input', bad, '--name', 'x', '--out', join(dir, 'x.rlds'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/JsonlLineError: bad.jsonl line 2 has no "text"/);
    const usage = cli('build', '--input', input, '--index', 'hnsw', '--name', 'x', '--out', join(dir, 'y.rlds'));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--index must be one of flat, voy/);
    const notShard = cli('info', input);
    expect(notShard.code).toBe(1);
    expect(notShard.stderr).toMatch(/ShardMagicError/);
  });
});
