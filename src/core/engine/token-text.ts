/**
 * Display text of single tokens. A byte-level BPE token can hold part of a UTF-8 character, so
 * decoding tokens one by one would show U+FFFD; here each token's bytes go through a streaming
 * TextDecoder, and a character appears with the token that completes it.
 */
import type { TokenView } from '../../protocol/api';

interface TokenizerJsonLike {
  added_tokens?: { id: number; content: string }[];
  model?: { vocab?: Record<string, number> };
}

/** GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest map to 256 + n. */
function byteOfSymbol(): Map<number, number> {
  const map = new Map<number, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(printable ? b : 256 + shifted++, b);
  }
  return map;
}

export class TokenBytes {
  private readonly bytes: Uint8Array[] = [];

  constructor(json: unknown) {
    const j = json as TokenizerJsonLike;
    const alphabet = byteOfSymbol();
    const encoder = new TextEncoder();
    for (const [symbols, id] of Object.entries(j.model?.vocab ?? {})) {
      const out: number[] = [];
      for (const ch of symbols) {
        const b = alphabet.get(ch.codePointAt(0)!);
        if (b === undefined) {
          out.push(...encoder.encode(ch));
        } else {
          out.push(b);
        }
      }
      this.bytes[id] = Uint8Array.from(out);
    }
    for (const t of j.added_tokens ?? []) this.bytes[t.id] = encoder.encode(t.content);
  }

  of(id: number): Uint8Array {
    return this.bytes[id] ?? new Uint8Array();
  }
}

/** Streams one sequence's tokens to text; `start` begins a new sequence. */
export class TokenTexts {
  private decoder = new TextDecoder('utf-8');

  constructor(private readonly table: TokenBytes) {}

  start(): void {
    this.decoder = new TextDecoder('utf-8');
  }

  next(id: number): TokenView {
    return { id, text: this.decoder.decode(this.table.of(id), { stream: true }) };
  }

  views(ids: readonly number[]): TokenView[] {
    return ids.map((id) => this.next(id));
  }

  /** Token views of a standalone piece (a neighbour), decoded from a fresh state. */
  standalone(ids: readonly number[]): TokenView[] {
    const decoder = new TextDecoder('utf-8');
    const views = ids.map((id) => ({ id, text: decoder.decode(this.table.of(id), { stream: true }) }));
    const tail = decoder.decode();
    if (tail && views.length) views[views.length - 1]!.text += tail;
    return views;
  }
}
