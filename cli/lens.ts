/**
 * The perplexity lens from the command line: the same engines the browser runs (cli/engines-node.ts),
 * the same request, the same numbers. Prints one JSON object per model on stdout.
 *
 *   npm run lens -- --text <file> [--models gpt,retro,knnlm,icralm] [--datastore <id>] [--k 2]
 *        [--lambda 0.5] [--knn-k 1024] [--temperature 10] [--icralm-stride 4] [--icralm-query 32]
 *        [--rag-k 4] [--rag-temperature 0.1] [--rag-span 32]   (the ragseq row: RAG-Sequence, docs/rag-sequence.md)
 *
 * Keys are chosen as the app chooses them (src/core/engine/knn-sources.ts): token-aligned RETRO reads
 * the active datastore's own kNN-LM keys, kNN-LM those or else the built-in kNN-LM datastore.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ModelKey, ScoreRequest } from '../src/protocol/api';
import { DEFAULT_ICRALM_SETTINGS } from '../src/core/icralm/types';
import { DEFAULT_KNN_SETTINGS } from '../src/core/knnlm/types';
import { DEFAULT_RAG_SEQUENCE_SETTINGS } from '../src/core/ragseq/types';
import { startEngines } from './engines-node';

const { values: args } = parseArgs({
  options: {
    text: { type: 'string' },
    models: { type: 'string', default: 'gpt,retro' },
    datastore: { type: 'string' },
    k: { type: 'string', default: '2' },
    lambda: { type: 'string' },
    'knn-k': { type: 'string' },
    temperature: { type: 'string' },
    'icralm-stride': { type: 'string' },
    'icralm-query': { type: 'string' },
    'rag-k': { type: 'string' },
    'rag-temperature': { type: 'string' },
    'rag-span': { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(`lens: ${message}`);
  process.exit(2);
}

const number = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));

async function main(): Promise<void> {
  if (!args.text) fail('usage: npm run lens -- --text <file> [--models gpt,retro,knnlm,icralm,ragseq] [--datastore <id>]');
  const models = args.models!.split(',') as ModelKey[];
  const engines = await startEngines({ onProgress: (p) => p.finished && p.kind !== 'model' && console.error(`${p.label}: done`) });
  try {
    if (args.datastore) await engines.retrieval.setActive(args.datastore);
    const state = await engines.retrieval.state();
    const tokenAligned = engines.ready.models.some((m) => m.key === 'retro' && m.tokenAligned);
    // The keys are the engines' choice, as in the app (RetrievalState.knn).
    const retroKeys = models.includes('retro') && tokenAligned ? state.knn.retro : null;
    const knnKeys = models.includes('knnlm') ? state.knn.knnlm : null;
    if (models.includes('knnlm') && !knnKeys) fail('kNN-LM needs a datastore with kNN-LM keys: run npm run setup:knn');
    if (retroKeys || knnKeys) await engines.inference.loadKnnFor(retroKeys ? 'retro' : 'knnlm', () => undefined);
    if (models.includes('retro') && tokenAligned && !retroKeys) console.error('RETRO is scored without retrieval: the active datastore has no kNN-LM keys.');
    const request: ScoreRequest = {
      text: readFileSync(args.text, 'utf8'),
      models,
      retro: { retrieval: state.activeId !== null && (!tokenAligned || retroKeys !== null), k: number(args.k, 2) },
      knn: { lambda: number(args.lambda, DEFAULT_KNN_SETTINGS.lambda), k: number(args['knn-k'], DEFAULT_KNN_SETTINGS.k), temperature: number(args.temperature, DEFAULT_KNN_SETTINGS.temperature) },
      icralm: { stride: number(args['icralm-stride'], DEFAULT_ICRALM_SETTINGS.stride), queryLength: number(args['icralm-query'], DEFAULT_ICRALM_SETTINGS.queryLength) },
      ragSequence: {
        k: number(args['rag-k'], DEFAULT_RAG_SEQUENCE_SETTINGS.k),
        temperature: number(args['rag-temperature'], DEFAULT_RAG_SEQUENCE_SETTINGS.temperature),
        span: number(args['rag-span'], DEFAULT_RAG_SEQUENCE_SETTINGS.span),
        queryLength: number(args['icralm-query'], DEFAULT_RAG_SEQUENCE_SETTINGS.queryLength),
      },
    };
    const result = await engines.inference.score(request, (e) => {
      if (e.type === 'tokenized') console.error(`${e.tokens} tokens, ${e.words} words, ${e.windows} windows`);
    });
    for (const s of result.scores) {
      console.log(JSON.stringify({ model: s.model, name: s.name, token_ppl: s.tokenPpl, word_ppl: s.wordPpl, nll: s.nll, scored_tokens: s.scoredTokens, datastore: s.retrieval?.datastoreId ?? null, settings: s.model === 'knnlm' ? request.knn : s.model === 'icralm' ? request.icralm : s.model === 'ragseq' ? request.ragSequence : undefined, seconds: s.seconds }));
    }
  } finally {
    await engines.dispose();
  }
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
