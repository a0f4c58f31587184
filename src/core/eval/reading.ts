/**
 * Does a model *read* what retrieval gives it? Two generation tests (issue "RETRO writes what it
 * retrieved"), each a list of prompts with a known continuation that only the datastore holds:
 *
 * - copy test: a passage's text up to a point, with the passage in the datastore; a hit is the next
 *   `copyTokens` stored tokens written exactly, first thing.
 * - factual cloze: a SQuAD answer's sentence in its gold paragraph, cut just before the answer,
 *   closed-book (no passage in the prompt); a hit is the normalised answer inside the first
 *   generated tokens' text.
 */

/** SQuAD's answer normalisation (its official evaluation script): lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** True when some normalised answer occurs in the normalised text as whole words. */
export function containsAnswer(text: string, answers: readonly string[]): boolean {
  const haystack = ` ${normalizeAnswer(text)} `;
  return answers.some((a) => {
    const n = normalizeAnswer(a);
    return n.length > 0 && haystack.includes(` ${n} `);
  });
}

export interface ClozeQuestion {
  id: string;
  answers: readonly string[];
  pid: string;
  title?: string;
}

export interface ClozePrompt {
  id: string;
  /** the answer's sentence up to (not including) the answer */
  prompt: string;
  answers: readonly string[];
  pid: string;
}

/**
 * The cloze prompt of a question: the first answer (in the answers' order) found in the gold
 * paragraph, and the sentence around it cut just before it. Null when no answer occurs in the
 * paragraph, or fewer than `minWords` words precede it in its sentence (nothing to read from).
 */
export function clozePrompt(question: ClozeQuestion, paragraph: string, minWords = 4): ClozePrompt | null {
  for (const answer of question.answers) {
    const at = paragraph.indexOf(answer);
    if (at < 0) continue;
    // The sentence starts after the last ". ", "! " or "? " before the answer.
    let start = 0;
    for (const m of paragraph.slice(0, at).matchAll(/[.!?]["')\]]?\s+(?=[A-Z0-9"'(])/g)) start = m.index + m[0].length;
    const prompt = paragraph.slice(start, at).trimEnd();
    if (prompt.split(/\s+/).filter(Boolean).length < minWords) continue;
    // The answer must not already be in its own prompt, or the test would measure repetition.
    if (containsAnswer(prompt, [answer])) continue;
    return { id: question.id, prompt, answers: question.answers, pid: question.pid };
  }
  return null;
}

/** Wilson score interval for a proportion (95% by default). */
export function wilsonInterval(hits: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 1];
  const p = hits / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export interface CopyPrompt {
  /** index of the passage in its list */
  passage: number;
  /** the passage's token ids before the cut */
  promptIds: number[];
  /** the stored tokens right after the cut */
  expected: number[];
}

/**
 * A copy-test prompt per passage: its tokens up to a cut drawn (seeded) between `minPrompt` tokens in
 * and `copyTokens` before the end, at most `maxPrompt` tokens long (the cut's left context).
 */
export function copyPrompts(passages: readonly (readonly number[])[], options: { copyTokens: number; minPrompt: number; maxPrompt: number; seed: number }): CopyPrompt[] {
  let state = options.seed >>> 0 || 1;
  const random = () => {
    // xorshift32: a seeded, dependency-free draw (reproducible prompts)
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const prompts: CopyPrompt[] = [];
  passages.forEach((ids, passage) => {
    const last = ids.length - options.copyTokens;
    if (last <= options.minPrompt) return;
    const cut = options.minPrompt + Math.floor(random() * (last - options.minPrompt));
    prompts.push({
      passage,
      promptIds: ids.slice(Math.max(0, cut - options.maxPrompt), cut),
      expected: ids.slice(cut, cut + options.copyTokens),
    });
  });
  return prompts;
}

/** True when `generated` starts with `expected`. */
export function copiedExactly(generated: readonly number[], expected: readonly number[]): boolean {
  return expected.length > 0 && expected.every((t, i) => generated[i] === t);
}
