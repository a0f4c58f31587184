/**
 * Input files -> documents for the builder: .txt (one document), .md (one document), .jsonl (one
 * document per line: `text`, optional `title`) and WikiText (one document per article). Bad input
 * is refused with a typed error (errors.ts) saying what is wrong and where.
 */
import { DOCUMENT_FORMATS, type DocumentFormat, type DocumentInput } from '../../protocol/shard';
import { splitWikiTextArticles } from '../tokenizer/wikitext';
import { BinaryInputError, EmptyInputError, InputTooLargeError, InvalidUtf8Error, JsonlLineError, UnsupportedFormatError } from './errors';

export type InputFormat = DocumentFormat;
export const INPUT_FORMATS: readonly InputFormat[] = DOCUMENT_FORMATS;

/** Largest input file accepted: its text, tokens and chunks must fit a browser worker's memory. */
export const MAX_INPUT_BYTES = 200 * 1024 * 1024;

/** Format from a file name: `.jsonl`, `.md`/`.markdown`, `.tokens` (WikiText), else `.txt`; null if unknown. */
export function detectFormat(fileName: string): InputFormat | null {
  const name = fileName.toLowerCase();
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  if (name.endsWith('.md') || name.endsWith('.markdown')) return 'md';
  if (name.endsWith('.tokens') || /wiki\.(train|valid|test)/.test(name)) return 'wikitext';
  if (name.endsWith('.txt') || name.endsWith('.text')) return 'txt';
  return null;
}

function isControl(b: number): boolean {
  // Tab, LF, CR and form feed occur in ordinary text.
  return (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) || b === 0x7f;
}

/**
 * Checks raw file bytes and decodes them as UTF-8 (a BOM is dropped). Throws InputTooLargeError,
 * EmptyInputError, BinaryInputError (NUL bytes or >1% control characters) or InvalidUtf8Error.
 */
export function decodeInput(bytes: Uint8Array, fileName: string, maxBytes = MAX_INPUT_BYTES): string {
  if (bytes.length > maxBytes) {
    throw new InputTooLargeError(
      `${fileName} is ${(bytes.length / 1048576).toFixed(1)} MB; the limit is ${(maxBytes / 1048576).toFixed(0)} MB per file. Split it into smaller files.`,
      fileName,
    );
  }
  if (bytes.length === 0) throw new EmptyInputError(`${fileName} is empty`, fileName);
  const sample = Math.min(bytes.length, 1 << 20);
  let controls = 0;
  for (let i = 0; i < sample; i++) {
    const b = bytes[i]!;
    if (b === 0) throw new BinaryInputError(`${fileName} looks like a binary file (it contains NUL bytes at offset ${i}), not text`, fileName);
    if (isControl(b)) controls++;
  }
  if (controls > sample * 0.01) {
    throw new BinaryInputError(`${fileName} looks like a binary file (${((100 * controls) / sample).toFixed(1)}% control characters), not text`, fileName);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    let offset = 0;
    // Find the first bad byte for the message: decode growing prefixes would be slow, so scan.
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i]!;
      const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
      let ok = n > 0 && i + n <= bytes.length;
      for (let k = 1; ok && k < n; k++) ok = (bytes[i + k]! & 0xc0) === 0x80;
      if (!ok) {
        offset = i;
        break;
      }
      i += n;
    }
    throw new InvalidUtf8Error(`${fileName} is not valid UTF-8 (first bad byte near offset ${offset}); save it as UTF-8 and try again`, fileName);
  }
  if (text.trim().length === 0) throw new EmptyInputError(`${fileName} contains only whitespace`, fileName);
  return text;
}

function baseName(fileName: string): string {
  return fileName.split(/[\\/]/).pop() ?? fileName;
}

/** Documents of one JSON-lines file; blank lines are skipped. */
export function parseJsonl(text: string, fileName: string): DocumentInput[] {
  const docs: DocumentInput[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line.length === 0) return;
    const lineNo = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new JsonlLineError(`${fileName} line ${lineNo} is not valid JSON (${(e as Error).message})`, fileName, lineNo);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new JsonlLineError(`${fileName} line ${lineNo} is not a JSON object`, fileName, lineNo);
    }
    const { text: t, title } = value as { text?: unknown; title?: unknown };
    if (typeof t !== 'string') {
      throw new JsonlLineError(`${fileName} line ${lineNo} has no "text" string field`, fileName, lineNo);
    }
    if (title !== undefined && typeof title !== 'string') {
      throw new JsonlLineError(`${fileName} line ${lineNo}: "title" must be a string`, fileName, lineNo);
    }
    if (t.trim().length === 0) return;
    docs.push({ title: title ?? `${baseName(fileName)}:${lineNo}`, text: t });
  });
  if (docs.length === 0) throw new EmptyInputError(`${fileName} has no line with non-empty "text"`, fileName);
  return docs;
}

/** A Markdown file is one document, titled by its first "# " heading (else the file name). */
export function parseMarkdown(text: string, fileName: string): DocumentInput[] {
  const heading = /^#\s+(.+?)\s*#*\s*$/m.exec(text);
  return [{ title: heading?.[1] ?? baseName(fileName), text }];
}

/** Parses decoded text in the given format. */
export function parseText(text: string, format: InputFormat, fileName: string): DocumentInput[] {
  switch (format) {
    case 'txt':
      return [{ title: baseName(fileName), text }];
    case 'md':
      return parseMarkdown(text, fileName);
    case 'jsonl':
      return parseJsonl(text, fileName);
    case 'wikitext': {
      const articles = splitWikiTextArticles(text).map((a) => ({ title: a.title || baseName(fileName), text: a.text }));
      if (articles.length === 0) throw new EmptyInputError(`${fileName} has no WikiText articles`, fileName);
      return articles;
    }
    default:
      throw new UnsupportedFormatError(`unknown input format ${String(format)}`, fileName);
  }
}

/**
 * Checks, decodes and parses one input file. `format` defaults to detectFormat(fileName);
 * an unknown extension is an UnsupportedFormatError.
 */
export function parseDocuments(bytes: Uint8Array, fileName: string, format?: InputFormat, maxBytes = MAX_INPUT_BYTES): DocumentInput[] {
  const f = format ?? detectFormat(fileName);
  if (!f) {
    throw new UnsupportedFormatError(`${fileName}: unknown file type; use .txt, .md, .jsonl or WikiText .tokens`, fileName);
  }
  return parseText(decodeInput(bytes, fileName, maxBytes), f, fileName);
}
