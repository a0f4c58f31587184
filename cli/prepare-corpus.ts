/**
 * Tokenizes the WikiText-2 splits for the Python training pipeline: Python has no tokenizers
 * library here, and this keeps training on exactly the ids the app's tokenizer produces.
 *
 * Output per split: <split>.ids.u16 (little-endian uint16 token ids, documents concatenated)
 * and <split>.docs.json ([{title, start, length}] in tokens).
 *
 * usage: tsx cli/prepare-corpus.ts <tokenizer.json> <wikitext-2 dir> <out dir>
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import tokenizers from 'tokenizers';
import { splitWikiTextArticles } from '../src/core/tokenizer/wikitext.ts';

const [tokenizerPath, dataDir, outDir] = process.argv.slice(2);
if (!tokenizerPath || !dataDir || !outDir) {
  console.error('usage: tsx cli/prepare-corpus.ts <tokenizer.json> <wikitext-2 dir> <out dir>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const tokenizer = tokenizers.Tokenizer.fromFile(tokenizerPath);

for (const split of ['train', 'valid', 'test']) {
  const text = readFileSync(join(dataDir, `wiki.${split}.tokens`), 'utf8');
  const articles = splitWikiTextArticles(text);
  const encoded = await tokenizer.encodeBatch(articles.map((a) => a.text));
  const total = encoded.reduce((n, e) => n + e.getIds().length, 0);
  const ids = new Uint16Array(total);
  const docs: { title: string; start: number; length: number }[] = [];
  let offset = 0;
  encoded.forEach((enc, i) => {
    const docIds = enc.getIds();
    ids.set(docIds, offset);
    docs.push({ title: articles[i]!.title, start: offset, length: docIds.length });
    offset += docIds.length;
  });
  writeFileSync(join(outDir, `${split}.ids.u16`), Buffer.from(ids.buffer));
  writeFileSync(join(outDir, `${split}.docs.json`), JSON.stringify(docs));
  const words = text.split('\n').length - 1 + text.split(/[ \n]+/).filter((w) => w.length > 0).length;
  console.log(JSON.stringify({ split, articles: articles.length, tokens: total, wikitextWords: words }));
}
