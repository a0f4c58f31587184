/**
 * Trains RetroLab's byte-level BPE tokenizer on WikiText-2 train with the Hugging Face
 * `tokenizers` library and writes a GPT-2-style tokenizer.json that the browser loads.
 *
 * The Node binding exposes no trainer options (vocab size), so we train with its default
 * budget and keep only the first merges: BPE training is greedy, so the first N merges are
 * exactly what a trainer stopped at N merges would have produced.
 *
 * usage: tsx cli/train-tokenizer.ts <wiki.train.tokens> <out/tokenizer.json> [vocabSize=8192]
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tokenizers from 'tokenizers';

const [trainPath, outPath, vocabArg] = process.argv.slice(2);
if (!trainPath || !outPath) {
  console.error('usage: tsx cli/train-tokenizer.ts <wiki.train.tokens> <out/tokenizer.json> [vocabSize]');
  process.exit(2);
}
const vocabSize = Number(vocabArg ?? 8192);
const SPECIAL_TOKENS = ['<unk>', '<|endoftext|>'];

const { Tokenizer, BPE, byteLevelPreTokenizer, byteLevelAlphabet } = tokenizers;
const tokenizer = new Tokenizer(BPE.empty());
tokenizer.setPreTokenizer(byteLevelPreTokenizer(false, true));
tokenizer.addSpecialTokens(SPECIAL_TOKENS);
tokenizer.train([trainPath]);

const scratch = join(mkdtempSync(join(tmpdir(), 'retrolab-tok-')), 'full.json');
tokenizer.save(scratch);
const full = JSON.parse(readFileSync(scratch, 'utf8'));

// Vocabulary: specials, then all 256 byte symbols (so any input is encodable), then merges in order.
const vocab: Record<string, number> = {};
const add = (token: string) => {
  if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
};
SPECIAL_TOKENS.forEach(add);
byteLevelAlphabet().sort().forEach(add);
const merges: [string, string][] = [];
for (const merge of full.model.merges as [string, string][] | string[]) {
  if (Object.keys(vocab).length >= vocabSize) break;
  const [a, b] = Array.isArray(merge) ? merge : merge.split(' ');
  if (a === undefined || b === undefined || !(a in vocab) || !(b in vocab)) {
    throw new Error(`merge ${String(a)} ${String(b)} uses an unknown symbol`);
  }
  merges.push([a, b]);
  add(a + b);
}

const out = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: SPECIAL_TOKENS.map((content, id) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  })),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null,
  decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
    vocab, merges,
  },
};
writeFileSync(outPath, JSON.stringify(out));

// Sanity: the trimmed tokenizer must load and round-trip through the same library.
const trimmed = Tokenizer.fromFile(outPath);
const sample = readFileSync(trainPath, 'utf8').slice(0, 20000);
const ids = (await trimmed.encode(sample)).getIds();
const back = await trimmed.decode(ids, false);
if (back !== sample) throw new Error('round trip failed on the training sample');
console.log(JSON.stringify({ vocabSize: Object.keys(vocab).length, merges: merges.length, sampleChars: sample.length, sampleTokens: ids.length }));
