/** WikiText-specific text handling: article splitting and display detokenization. */

export interface Article {
  title: string;
  text: string;
}

/** A top-level WikiText heading line looks like " = Title = " (one '=' on each side). */
const ARTICLE_HEADING = /^ = ([^=].*[^=]) = $/;

/**
 * Splits a WikiText file into articles at top-level headings. The concatenation of the
 * articles' texts is the input text exactly, so token counts and offsets stay comparable.
 */
export function splitWikiTextArticles(text: string): Article[] {
  const lines = text.split('\n');
  const articles: Article[] = [];
  let current: { title: string; lines: string[] } | null = null;
  lines.forEach((line, i) => {
    const isLast = i === lines.length - 1;
    const withNewline = isLast ? line : line + '\n';
    const heading = ARTICLE_HEADING.exec(line);
    // A heading is preceded by an empty " " line in WikiText; keep that line with the new article.
    if (heading) {
      const previous = current?.lines.at(-1);
      const carried = previous === ' \n' ? current!.lines.pop()! : '';
      if (current) articles.push({ title: current.title, text: current.lines.join('') });
      current = { title: heading[1]!.trim(), lines: carried ? [carried, withNewline] : [withNewline] };
    } else if (withNewline.length > 0) {
      if (!current) current = { title: '', lines: [] };
      current.lines.push(withNewline);
    }
  });
  if (current) {
    const last = current as { title: string; lines: string[] };
    articles.push({ title: last.title, text: last.lines.join('') });
  }
  return articles.filter((a) => a.text.length > 0);
}

/** Undoes WikiText's escapes for display: " @-@ " -> "-", " @,@ " -> ",", " @.@ " -> ".". */
export function detokenizeWikiText(text: string): string {
  return text.replace(/ @([-,.])@ /g, '$1');
}

/** Word count used for word-level perplexity: whitespace-separated tokens plus one per line end. */
export function countWikiTextWords(text: string): number {
  const lineEnds = (text.match(/\n/g) ?? []).length;
  const words = text.split(/[ \n]+/).filter((w) => w.length > 0).length;
  return words + lineEnds;
}
