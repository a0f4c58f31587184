/**
 * Test doubles for the datastore tests that must not depend on shipped files: a byte-level
 * tokenizer (one id per UTF-8 byte, ids 2..257) and a synthetic embedder over its vocabulary.
 * Tests that need the real tokenizer load it from disk instead.
 */
import { syntheticEmbedderBytes } from '../retrieval/synthetic-embedder';
import { MeanEmbedder } from '../retrieval/embedder';
import type { RetroTokenizer } from '../tokenizer/index';

export function byteTokenizer(): RetroTokenizer {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return {
    id: 'bytes-test',
    fingerprint: '0000000000000258',
    vocabSize: 258,
    eotId: 1,
    unkId: 0,
    encode: (text) => Array.from(encoder.encode(text), (b) => b + 2),
    decode: (ids) => decoder.decode(Uint8Array.from(Array.from(ids).filter((id) => id >= 2), (id) => id - 2)),
    encodeDocuments(texts) {
      return texts.map((t) => this.encode(t));
    },
    tokenByteLength: (id) => (id >= 2 ? 1 : 0),
  };
}

export function testEmbedder(vocabSize = 258, dim = 16, seed = 5): MeanEmbedder {
  return MeanEmbedder.fromBytes(syntheticEmbedderBytes(vocabSize, dim, seed), vocabSize, dim);
}

/** Small documents with a multi-byte character straddling chunk boundaries. */
export const TOY_DOCUMENTS = [
  { title: 'Lobsters', text: 'Homarus gammarus, known as the European lobster or common lobster, is a species of clawed lobster.' },
  { title: 'Ünïcode', text: 'naïve café — 日本語 🎉 mixed with ASCII text to cross several chunk boundaries.' },
  { title: 'Short', text: 'tiny' },
  { title: 'Rivers', text: 'The Rhine flows from the Alps to the North Sea, through Switzerland, Germany and the Netherlands.' },
];
