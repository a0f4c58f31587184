import type { Lesson, LessonDatastore } from './types';

/**
 * The lessons follow the map of retrieval-based LMs (what to retrieve, how to use it, when, and
 * what can go wrong). Every number they state was measured on these models; `source` says where.
 * The invented Brannock texts (public/lessons/) hold facts no training article has, so whatever a
 * column gets right about them came from retrieval.
 */
const BRANNOCK: LessonDatastore = {
  kind: 'text',
  name: 'Brannock Point (lesson)',
  files: ['brannock-lighthouse.txt', 'brannock-ferry.txt', 'brannock-orchards.txt'],
  knnKeys: true,
};

const LIGHTHOUSE_PROMPT = 'The lighthouse on Brannock Point was painted violet by the harbour guild in 1911. Its first keeper, Ilse Marrow, wrote the name of every passing ship';

export const LESSONS: Lesson[] = [
  {
    id: 'what',
    title: 'What to retrieve: chunks or tokens',
    topic: 'what',
    steps: [
      {
        title: 'RETRO looks up chunks, the kNN-LM looks up tokens',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: true, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read:
          'Both models can look things up in the same small datastore about Brannock Point, a place no training text mentions. RETRO cuts the text into chunks of 8 tokens; after each chunk it retrieves 2 neighbours, each a chunk of the datastore and the chunk that followed it (16 tokens). The kNN-LM looks up before every single token: which stored places had a context like this one, and which token came next there?',
        notice:
          'RETRO’s text is cut into numbered blocks of 8 tokens; the number at the start of a block opens its 2 neighbours. In the kNN-LM column every written word can be clicked: the bars show what the GPT expected, what the stored places voted for, and the mix.',
        question: 'Which one searches more often? Which one could copy a rare name such as “Marrow” more directly, and why?',
        source: 'RETRO: chunk 8, 2 neighbours of 16 tokens (public/models/retro-wt2/manifest.json). kNN-LM: one search per token (docs/knnlm.md).',
      },
    ],
  },
  {
    id: 'how',
    title: 'How to use it: input, middle or output',
    topic: 'how',
    steps: [
      {
        title: 'Three places to put what was retrieved',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: true, icralm: true },
        settings: { decoding: { maxTokens: 24 } },
        read:
          'Four columns, one prompt. In-Context RALM pastes a retrieved passage in front of the text: retrieval at the input, the GPT itself unchanged. RETRO reads its neighbours through cross-attention inside the network, in layers 2 and 5 of its decoder: retrieval in the middle. The kNN-LM mixes the GPT’s next-word probabilities with the votes of the stored places: retrieval at the output.',
        notice:
          'The ¶ marks in the In-Context RALM column show where a passage was pasted in front (click one to read it). GPT, kNN-LM and In-Context RALM run the very same GPT weights; only RETRO has layers trained to read neighbours.',
        question: 'Which of the three needed no training at all? Which one would you expect to copy a retrieved fact most often?',
        source:
          'WikiText-2 test perplexity against the GPT: kNN-LM 25.9% lower (docs/knnlm.md); RETRO 3.1% lower (docs/retro-training.md); In-Context RALM 0.8–1.8% higher (docs/icralm.md). RETRO cross-attention layers: manifest cca_layers [2, 5].',
      },
    ],
  },
  {
    id: 'when',
    title: 'When to retrieve: the retrieval step',
    topic: 'when',
    steps: [
      {
        title: 'A new passage every 8 tokens',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 24 }, icralm: { stride: 8 } },
        read:
          'Retrieval costs time, so a model does not have to search before every word. RETRO searches once per 8-token chunk, the setting it was trained with. In-Context RALM fetches a new passage every s tokens; here s = 8.',
        notice: 'Count the ¶ marks in the In-Context RALM column: one new passage per 8 written tokens. RETRO’s numbered blocks are 8 tokens apart.',
        question: 'What could a model miss if it searches rarely? What does it cost to search often?',
        source: 'The stride s is “Stride s” under In-Context RALM in Settings; RETRO’s chunk of 8 is in public/models/retro-wt2/manifest.json.',
      },
      {
        title: 'Every 4 tokens: twice as many passages',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 24 }, icralm: { stride: 4 } },
        read:
          'Same prompt, same seed; In-Context RALM now fetches a passage every 4 tokens (s = 4). Measured on WikiText-2 test, searching more often did not help this small GPT: perplexity 88.70 with a new passage every 4 tokens, 88.16 every 32, and 87.68 for the GPT with no passage at all (lower is better).',
        notice: 'Twice as many ¶ marks as in the previous step; RETRO, unchanged, still retrieves once per 8-token chunk.',
        question: 'Why might more retrieval not mean better text?',
        source: 'docs/icralm.md, “Test” (the first 100 WikiText-2 test windows, 12,928 targets).',
      },
    ],
  },
  {
    id: 'leakage',
    title: 'Leakage: the answer is in the datastore',
    topic: 'leakage',
    steps: [
      {
        title: 'The prompt’s own document is in the datastore',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read:
          'The prompt is copied from a document that is also in the datastore. Open a RETRO block: its nearest neighbour is that very document. Researchers call this leakage: a test looks good because the answer was available to look up.',
        notice: 'The top neighbour comes from brannock-lighthouse.txt, and its continuation holds the words that follow the prompt.',
        question: 'If a model scores well on a test, how would you check that the test text was not in its datastore?',
        source:
          'docs/retro-training.md: with the text’s own document among its neighbours RETRO’s token perplexity falls by 82.6%; with neighbours from other articles by 3.1% (paired comparisons (d) and (b) against the GPT).',
      },
      {
        title: 'Exclude the document',
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read: 'Open a RETRO block and press “Exclude this document”, then Generate again. RETRO now has to make do with the other Brannock texts.',
        notice: 'No neighbour comes from brannock-lighthouse.txt any more; the distances are larger.',
        question: 'Is the model worse now, or was it only looking better before?',
        source: 'Exclusions are listed under RETRO in Settings; they apply to this datastore only.',
      },
    ],
  },
  {
    id: 'own-text',
    title: 'Your own text: new knowledge without retraining',
    topic: 'own text',
    steps: [
      {
        title: 'No datastore about Brannock',
        prompt: 'The Brannock ferry crosses the Sound of Orm twice a day, leaving the harbour at seven in the morning and',
        datastore: { kind: 'builtin', id: 'squad-v2-paragraphs' },
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 16 } },
        read: 'The datastore is 1,216 Wikipedia paragraphs, none about Brannock. No model here can know when the ferry leaves.',
        notice: 'The In-Context RALM passages (¶) come from unrelated Wikipedia paragraphs.',
        question: 'Where would the right answer have to come from?',
        source: 'SQuAD 2.0 paragraphs: public/datastores/index.json.',
      },
      {
        title: 'Add the Brannock texts',
        prompt: 'The Brannock ferry crosses the Sound of Orm twice a day, leaving the harbour at seven in the morning and',
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 16 } },
        read:
          'Three short texts about Brannock become a datastore in a few seconds, here in the browser. The GPT is not retrained: its weights, and so its own column, stay exactly as before.',
        notice: 'The GPT column writes the same words as in the previous step; the ¶ passage now comes from brannock-ferry.txt.',
        question: 'Did the model learn anything? What would you have to do to remove a fact again?',
        source:
          'Copy test over 300 SQuAD passages (`npm run eval:generate -- --task copy`, docs/retro-training.md): the kNN-LM wrote the next four words of the retrieved passage 36 times, this RETRO never.',
      },
    ],
  },
  {
    id: 'quality',
    title: 'Text quality: repetition and diversity',
    topic: 'quality',
    steps: [
      {
        title: 'Greedy: always the most likely word',
        prompt: 'The ship was launched in',
        datastore: { kind: 'builtin', id: 'wikitext-2-train' },
        columns: { knnlm: false, icralm: false },
        settings: {
          decoding: { strategy: 'greedy', maxTokens: 48, suppressUnk: false, repetitionPenalty: 1, noRepeatNgramSize: 0 },
          retro: { retrieval: false },
        },
        read:
          'Both columns always take the single most likely next token. RETRO’s retrieval is off, so it writes like a plain language model. The line under each column measures the text: how many 4-word runs repeat, how varied the word pairs are (distinct-2), how often <unk> (unknown word) appears.',
        notice: 'The text loops, and the repeated 4-grams are far above zero.',
        question: 'Why does “the most likely word” every time give text that no person would write?',
        source: 'docs/retro-training.md, “Readable generations” (`npm run eval:generate -- --task quality`): greedy 51.9% repeated 4-grams, human text 0.3%.',
      },
      {
        title: 'Sampling with the app’s defaults',
        prompt: 'The ship was launched in',
        datastore: { kind: 'builtin', id: 'wikitext-2-train' },
        columns: { knnlm: false, icralm: false },
        settings: { retro: { retrieval: false } },
        read:
          'Now the models draw the next token at random from the likely ones (temperature 0.8, top-p 0.9, a fixed seed), never write <unk> and never repeat a 3-token phrase.',
        notice: 'No repeated 4-grams, no <unk>, and distinct-2 is much higher.',
        question: 'The model did not change, only how we pick from it. What else besides the model decides how good text reads?',
        source: 'docs/retro-training.md: the default decoding gives 0 repeated 4-grams and distinct-2 0.747 (human text 0.787) over 100 prompts.',
      },
    ],
  },
];

export function findLesson(id: string): Lesson | undefined {
  return LESSONS.find((l) => l.id === id);
}
