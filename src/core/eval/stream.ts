/**
 * The eval's token stream (docs/manifest.md, "Evaluation protocol"): articles, split at ` = Title = `
 * lines, tokenized one by one and concatenated. A text without headings is one article, so pasted
 * text and WikiText files go through the same path as `npm run eval`.
 */
import { splitWikiTextArticles, type RetroTokenizer } from '../tokenizer';

export function tokenizeWikiTextStream(tokenizer: RetroTokenizer, text: string): Uint16Array | Int32Array {
  const docs = tokenizer.encodeDocuments(splitWikiTextArticles(text).map((a) => a.text));
  const total = docs.reduce((n, d) => n + d.length, 0);
  const stream = tokenizer.vocabSize <= 0x10000 ? new Uint16Array(total) : new Int32Array(total);
  let offset = 0;
  for (const d of docs) {
    stream.set(d, offset);
    offset += d.length;
  }
  return stream;
}
