/**
 * RetroLab's tokenizer: the shipped GPT-2-style byte-level BPE tokenizer.json, run by the pure-JS
 * @huggingface/tokenizers (browser workers and Node alike). Must produce the same ids as the Rust
 * `tokenizers` library the tokenizer was trained with (see index.test.ts).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { crc32, fingerprint as contentFingerprint, hex32 } from '../datastore/checksum';

export * from './wikitext';

export const UNK_TOKEN = '<unk>';
export const EOT_TOKEN = '<|endoftext|>';

export interface RetroTokenizer {
  /** The manifest's tokenizer id when given, else `bpe<vocab>-<fingerprint>` */
  readonly id: string;
  /** 16 hex digits over the vocabulary, merges and added tokens */
  readonly fingerprint: string;
  readonly vocabSize: number;
  /** `<|endoftext|>` (1): document separator and padding of short neighbours */
  readonly eotId: number;
  /** `<unk>` (0): WikiText's unknown-word marker, one special token */
  readonly unkId: number;
  encode(text: string): number[];
  /** Lossless inverse of encode (no clean-up of spaces, special tokens kept). */
  decode(ids: ArrayLike<number>): string;
  encodeDocuments(texts: readonly string[]): number[][];
  /** Number of UTF-8 bytes token `id` stands for; token byte lengths of an encoding sum to the text's UTF-8 length. */
  tokenByteLength(id: number): number;
}

export class TokenizerFormatError extends Error {
  override name = 'TokenizerFormatError';
}

export interface LoadTokenizerOptions {
  /** Id to report (the manifest's `tokenizer.id`); defaults to one derived from the content. */
  id?: string;
}

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  model: { type: string; vocab: Record<string, number>; merges: unknown[] };
}

function isTokenizerJson(json: unknown): json is TokenizerJson {
  if (typeof json !== 'object' || json === null) return false;
  const j = json as Record<string, unknown>;
  const model = j.model as Record<string, unknown> | undefined;
  return (
    Array.isArray(j.added_tokens) &&
    typeof model === 'object' &&
    model !== null &&
    typeof model.vocab === 'object' &&
    model.vocab !== null &&
    Array.isArray(model.merges)
  );
}

/** GPT-2's byte-level alphabet: the printable character that stands for each byte value. */
function byteLevelAlphabet(): Map<string, number> {
  const map = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCharCode(printable ? b : 256 + shifted++), b);
  }
  return map;
}

class BpeTokenizer implements RetroTokenizer {
  readonly id: string;
  readonly fingerprint: string;
  readonly vocabSize: number;
  readonly eotId: number;
  readonly unkId: number;
  private readonly byteLengths: Uint32Array;

  private readonly tokenizer: Tokenizer;

  constructor(json: TokenizerJson, options: LoadTokenizerOptions) {
    const special = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    const unkId = special.get(UNK_TOKEN);
    const eotId = special.get(EOT_TOKEN);
    if (unkId === undefined || eotId === undefined) {
      throw new TokenizerFormatError(`tokenizer.json must declare ${UNK_TOKEN} and ${EOT_TOKEN} as added tokens`);
    }
    this.unkId = unkId;
    this.eotId = eotId;
    let maxId = -1;
    for (const id of Object.values(json.model.vocab)) maxId = Math.max(maxId, id);
    for (const t of json.added_tokens) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;

    // Byte offsets of chunks (for showing a neighbour's text) come from these lengths; they only
    // add up to the text's UTF-8 length because byte-level BPE maps every byte to one symbol.
    const alphabet = byteLevelAlphabet();
    const encoder = new TextEncoder();
    this.byteLengths = new Uint32Array(this.vocabSize);
    for (const [token, id] of Object.entries(json.model.vocab)) {
      for (const ch of token) {
        if (!alphabet.has(ch)) throw new TokenizerFormatError(`token ${JSON.stringify(token)} is not byte-level BPE`);
      }
      this.byteLengths[id] = token.length;
    }
    for (const t of json.added_tokens) this.byteLengths[t.id] = encoder.encode(t.content).length;

    const canonical = JSON.stringify([json.added_tokens.map((t) => [t.id, t.content]), json.model.vocab, json.model.merges]);
    this.fingerprint = contentFingerprint(encoder.encode(canonical));
    this.id = options.id ?? `bpe${this.vocabSize}-${this.fingerprint.slice(0, 8)}`;
    this.tokenizer = new Tokenizer(json, {});
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(Array.from(ids), { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  encodeDocuments(texts: readonly string[]): number[][] {
    return texts.map((t) => this.encode(t));
  }

  tokenByteLength(id: number): number {
    const n = this.byteLengths[id];
    if (n === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
    return n;
  }
}

/** Loads a parsed tokenizer.json (e.g. `await (await fetch(url)).json()`). */
export function loadTokenizer(json: unknown, options: LoadTokenizerOptions = {}): RetroTokenizer {
  if (!isTokenizerJson(json)) throw new TokenizerFormatError('not a tokenizer.json: expected added_tokens and a model with vocab and merges');
  if (json.model.type !== 'BPE') throw new TokenizerFormatError(`expected a BPE model, got ${String(json.model.type)}`);
  return new BpeTokenizer(json, options);
}

/**
 * A short, comparable summary of a token-id sequence (`<count>:<crc32 hex>`): lets a browser test
 * check it produced exactly the ids Node produced without shipping megabytes of ids around.
 */
export function idsDigest(ids: ArrayLike<number>): string {
  const buffer = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) buffer[i] = ids[i]!;
  return `${ids.length}:${hex32(crc32(new Uint8Array(buffer.buffer)))}`;
}

/** Encodes and digests in one call, e.g. `page.evaluate(() => tokenDigest(tok, text))` in e2e. */
export function tokenDigest(tokenizer: RetroTokenizer, text: string): string {
  return idsDigest(tokenizer.encode(text));
}
