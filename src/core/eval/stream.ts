/**
 * The eval's token stream (docs/manifest.md, "Evaluation protocol"): articles, split at ` = Title = `
 * lines, tokenized one by one and concatenated. A text without headings is one article, so pasted
 * text and WikiText files go through the same path as `npm run eval`.
 */
import { splitWikiTextArticles, type RetroTokenizer } from '../tokenizer';

export function tokenizeWikiTextStream(tokenizer: RetroTokenizer, text: string): Uint16Array | Int32Array {
  return concatenateArticles(tokenizeWikiTextArticles(tokenizer, text), tokenizer.vocabSize);
}

/** The stream's articles, each tokenized on its own. */
export function tokenizeWikiTextArticles(tokenizer: RetroTokenizer, text: string): number[][] {
  return tokenizer.encodeDocuments(splitWikiTextArticles(text).map((a) => a.text));
}

export function concatenateArticles(articles: readonly (readonly number[])[], vocabSize: number): Uint16Array | Int32Array {
  const total = articles.reduce((n, d) => n + d.length, 0);
  const stream = vocabSize <= 0x10000 ? new Uint16Array(total) : new Int32Array(total);
  let offset = 0;
  for (const d of articles) {
    stream.set(d, offset);
    offset += d.length;
  }
  return stream;
}
