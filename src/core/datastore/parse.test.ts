import { describe, expect, it } from 'vitest';
import {
  BinaryInputError,
  EmptyInputError,
  InputTooLargeError,
  InvalidUtf8Error,
  JsonlLineError,
  UnsupportedFormatError,
} from './errors';
import { decodeInput, detectFormat, parseDocuments } from './parse';

const utf8 = (s: string) => new TextEncoder().encode(s);

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

describe('input parsers', () => {
  it('detects formats from file names', () => {
    expect(['a.txt', 'b.MD', 'c.jsonl', 'wiki.train.tokens', 'x.bin'].map(detectFormat)).toEqual(['txt', 'md', 'jsonl', 'wikitext', null]);
  });

  it('reads .txt as one document titled by the file name, dropping a BOM', () => {
    expect(parseDocuments(utf8('\uFEFFhello world'), 'notes/a.txt')).toEqual([{ title: 'a.txt', text: 'hello world' }]);
  });

  it('titles Markdown by its first heading', () => {
    expect(parseDocuments(utf8('intro\n# Real Title #\nbody'), 'x.md')[0]!.title).toBe('Real Title');
    expect(parseDocuments(utf8('no heading'), 'x.md')[0]!.title).toBe('x.md');
  });

  it('reads JSON lines with optional titles, skipping blank lines', () => {
    const docs = parseDocuments(utf8('{"title":"A","text":"one"}\n\n{"text":"two","pid":3}\r\n'), 'p.jsonl');
    expect(docs).toEqual([
      { title: 'A', text: 'one' },
      { title: 'p.jsonl:3', text: 'two' },
    ]);
  });

  it('splits WikiText into articles', () => {
    const text = ' = First = \n body one \n \n = Second = \n body two \n';
    expect(parseDocuments(utf8(text), 'wiki.valid.tokens').map((d) => d.title)).toEqual(['First', 'Second']);
  });

  it('names the JSON-lines line that has no text or is not JSON', () => {
    const e = thrown(() => parseDocuments(utf8('{"text":"ok"}\n{"title":"x"}\n'), 'p.jsonl'));
    expect(e).toBeInstanceOf(JsonlLineError);
    expect(e.name).toBe('JsonlLineError');
    expect((e as JsonlLineError).line).toBe(2);
    expect(e.message).toMatch(/line 2 has no "text"/);
    expect((thrown(() => parseDocuments(utf8('{"text":"ok"}\n\n{broken\n'), 'p.jsonl')) as JsonlLineError).line).toBe(3);
    expect(thrown(() => parseDocuments(utf8('[1,2]'), 'p.jsonl')).message).toMatch(/not a JSON object/);
    expect(thrown(() => parseDocuments(utf8('{"text":"a","title":5}'), 'p.jsonl')).message).toMatch(/"title" must be a string/);
  });

  it('refuses empty, binary, non-UTF-8, too large and unknown input', () => {
    expect(thrown(() => decodeInput(new Uint8Array(0), 'e.txt'))).toBeInstanceOf(EmptyInputError);
    expect(thrown(() => decodeInput(utf8(' \n\t \n'), 'e.txt')).message).toMatch(/only whitespace/);
    expect(thrown(() => parseDocuments(utf8('\n\n'), 'e.jsonl'))).toBeInstanceOf(EmptyInputError);

    const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13);
    expect(thrown(() => decodeInput(png, 'picture.txt'))).toBeInstanceOf(BinaryInputError);
    const controls = Uint8Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 0x03 : 0x61));
    expect(thrown(() => decodeInput(controls, 'c.txt')).message).toMatch(/control characters/);

    const latin1 = Uint8Array.from([...utf8('caf'), 0xe9, ...utf8(' au lait')]);
    const bad = thrown(() => decodeInput(latin1, 'latin1.txt'));
    expect(bad).toBeInstanceOf(InvalidUtf8Error);
    expect(bad.message).toMatch(/not valid UTF-8 \(first bad byte near offset 3\)/);

    const big = thrown(() => decodeInput(utf8('x'.repeat(2048)), 'big.txt', 1024));
    expect(big).toBeInstanceOf(InputTooLargeError);
    expect(big.name).toBe('InputTooLargeError');

    expect(thrown(() => parseDocuments(utf8('x'), 'archive.zip'))).toBeInstanceOf(UnsupportedFormatError);
  });
});
