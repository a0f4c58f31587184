import type { Lesson, LessonDatastore } from './types';

/**
 * The lessons follow the map of retrieval-based LMs (what to retrieve, how to use it, when, and
 * what can go wrong). Every number they state was measured on these models; `source` says where.
 * The invented Brannock texts (public/lessons/) hold facts no training article has, so whatever a
 * column gets right about them came from retrieval. Prompts stay English: the models only read English.
 */
const BRANNOCK: LessonDatastore = {
  kind: 'text',
  name: 'Brannock Point (lesson)',
  files: ['brannock-lighthouse.txt', 'brannock-ferry.txt', 'brannock-orchards.txt'],
  knnKeys: true,
};

const LIGHTHOUSE_PROMPT = 'The lighthouse on Brannock Point was painted violet by the harbour guild in 1911. Its first keeper, Ilse Marrow, wrote the name of every passing ship';
const FERRY_PROMPT = 'The Brannock ferry crosses the Sound of Orm twice a day, leaving the harbour at seven in the morning and';

const WHEN_SOURCE_ZH = 'docs/icralm.md “Test”一节（WikiText-2 测试集前 100 个窗口，12,928 个目标词元）。';

export const LESSONS: Lesson[] = [
  {
    id: 'what',
    title: { en: 'What to retrieve: chunks or tokens', zh: '检索什么：片段还是词元' },
    topic: 'what',
    steps: [
      {
        title: { en: 'RETRO looks up chunks, the kNN-LM looks up tokens', zh: 'RETRO 按片段检索，kNN-LM 按词元检索' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: true, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read: {
          en: 'Both models can look things up in the same small datastore about Brannock Point, a place no training text mentions. RETRO cuts the text into chunks of 8 tokens; after each chunk it retrieves 2 neighbours, each a chunk of the datastore and the chunk that followed it (16 tokens). The kNN-LM looks up before every single token: which stored places had a context like this one, and which token came next there?',
          zh: '两个模型都能在同一个关于布兰诺克角（Brannock Point）的小数据库里查资料，而训练文本里从没提到过这个地方。RETRO 把文本切成每 8 个词元一段；每写完一段，就检索 2 个近邻，每个近邻是数据库里的一段加上紧跟其后的一段（共 16 个词元）。kNN-LM 则在写每一个词元之前都查一次：数据库里哪些位置的上下文和现在相似？那里接下来是哪个词元？',
        },
        notice: {
          en: 'RETRO’s text is cut into numbered blocks of 8 tokens; the number at the start of a block opens its 2 neighbours. In the kNN-LM column every written word can be clicked: the bars show what the GPT expected, what the stored places voted for, and the mix.',
          zh: 'RETRO 的文字被切成带编号的 8 词元小块；点击块前的编号可以看到它的 2 个近邻。kNN-LM 栏里写出的每个词都能点击：条形图显示 GPT 的预测、数据库中各位置的“投票”，以及两者的混合。',
        },
        question: {
          en: 'Which one searches more often? Which one could copy a rare name such as “Marrow” more directly, and why?',
          zh: '哪个模型检索得更频繁？哪个更可能直接照抄像“Marrow”这样的罕见名字？为什么？',
        },
        source: {
          en: 'RETRO: chunk 8, 2 neighbours of 16 tokens (public/models/retro-wt2/manifest.json). kNN-LM: one search per token (docs/knnlm.md).',
          zh: 'RETRO：片段长 8，2 个近邻，各 16 个词元（public/models/retro-wt2/manifest.json）。kNN-LM：每个词元检索一次（docs/knnlm.md）。',
        },
      },
    ],
  },
  {
    id: 'how',
    title: { en: 'How to use it: input, middle or output', zh: '怎样使用检索结果：输入层、中间层还是输出层' },
    topic: 'how',
    steps: [
      {
        title: { en: 'Three places to put what was retrieved', zh: '检索结果可以放在三个地方' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: true, icralm: true },
        settings: { decoding: { maxTokens: 24 } },
        read: {
          en: 'Four columns, one prompt. In-Context RALM pastes a retrieved passage in front of the text: retrieval at the input, the GPT itself unchanged. RETRO reads its neighbours through cross-attention inside the network, in layers 2 and 5 of its decoder: retrieval in the middle. The kNN-LM mixes the GPT’s next-word probabilities with the votes of the stored places: retrieval at the output.',
          zh: '四栏，同一个提示词。In-Context RALM 把检索到的段落贴在文本前面：在输入层使用检索，GPT 本身不变。RETRO 在网络内部、解码器的第 2 层和第 5 层，通过交叉注意力读取近邻：在中间层使用检索。kNN-LM 把 GPT 对下一个词的概率和数据库中各位置的投票混合起来：在输出层使用检索。',
        },
        notice: {
          en: 'The ¶ marks in the In-Context RALM column show where a passage was pasted in front (click one to read it). GPT, kNN-LM and In-Context RALM run the very same GPT weights; only RETRO has layers trained to read neighbours.',
          zh: 'In-Context RALM 栏里的 ¶ 标记表示在那里把一段文字贴到了前面（点击可阅读）。GPT、kNN-LM 和 In-Context RALM 用的是完全相同的 GPT 权重；只有 RETRO 有专门训练来读取近邻的层。',
        },
        question: {
          en: 'Which of the three needed no training at all? Which one would you expect to copy a retrieved fact most often?',
          zh: '这三种方法里，哪些完全不需要额外训练？你觉得哪一种最常照抄检索到的事实？',
        },
        source: {
          en: 'WikiText-2 test perplexity against the GPT: kNN-LM 25.9% lower (docs/knnlm.md); RETRO 1.7% lower (docs/retro-training.md); In-Context RALM 0.8–1.8% higher (docs/icralm.md). RETRO cross-attention layers: manifest cca_layers [2, 5].',
          zh: 'WikiText-2 测试集困惑度（与 GPT 相比）：kNN-LM 低 25.9%（docs/knnlm.md）；RETRO 低 1.7%（docs/retro-training.md）；In-Context RALM 高 0.8–1.8%（docs/icralm.md）。RETRO 的交叉注意力层：manifest 中的 cca_layers [2, 5]。',
        },
      },
    ],
  },
  {
    id: 'when',
    title: { en: 'When to retrieve: the retrieval step', zh: '何时检索：检索步长' },
    topic: 'when',
    steps: [
      {
        title: { en: 'A new passage every 8 tokens', zh: '每 8 个词元取一段新文字' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 24 }, icralm: { stride: 8 } },
        read: {
          en: 'Retrieval costs time, so a model does not have to search before every word. RETRO searches once per 8-token chunk, the setting it was trained with. In-Context RALM fetches a new passage every s tokens; here s = 8.',
          zh: '检索要花时间，所以模型不必在每个词之前都检索。RETRO 每 8 个词元的片段检索一次，这是它训练时的设置。In-Context RALM 每 s 个词元取一段新文字；这里 s = 8。',
        },
        notice: {
          en: 'Count the ¶ marks in the In-Context RALM column: one new passage per 8 written tokens. RETRO’s numbered blocks are 8 tokens apart.',
          zh: '数一数 In-Context RALM 栏里的 ¶ 标记：每写 8 个词元换一段新文字。RETRO 的编号小块之间相隔 8 个词元。',
        },
        question: {
          en: 'What could a model miss if it searches rarely? What does it cost to search often?',
          zh: '检索太少，模型可能错过什么？检索太多，又要付出什么代价？',
        },
        source: {
          en: 'The stride s is “Stride s” under In-Context RALM in Settings; RETRO’s chunk of 8 is in public/models/retro-wt2/manifest.json.',
          zh: '步长 s 在“设置”的 In-Context RALM 中（Stride s）；RETRO 的片段长度 8 见 public/models/retro-wt2/manifest.json。',
        },
      },
      {
        title: { en: 'Every 4 tokens: twice as many passages', zh: '每 4 个词元：段落数量翻倍' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 24 }, icralm: { stride: 4 } },
        read: {
          en: 'Same prompt, same seed; In-Context RALM now fetches a passage every 4 tokens (s = 4). Measured on WikiText-2 test, searching more often did not help this small GPT: perplexity 88.70 with a new passage every 4 tokens, 88.16 every 32, and 87.68 for the GPT with no passage at all (lower is better).',
          zh: '同样的提示词、同样的随机种子；现在 In-Context RALM 每 4 个词元取一段（s = 4）。在 WikiText-2 测试集上测得：对这个小 GPT，检索更频繁并没有帮助。每 4 个词元换一段时困惑度 88.70，每 32 个词元换一段 88.16，完全不加段落的 GPT 为 87.68（越低越好）。',
        },
        notice: {
          en: 'Twice as many ¶ marks as in the previous step; RETRO, unchanged, still retrieves once per 8-token chunk.',
          zh: '¶ 标记是上一步的两倍；RETRO 没有改变，仍然每 8 个词元的片段检索一次。',
        },
        question: { en: 'Why might more retrieval not mean better text?', zh: '为什么检索更多不一定写得更好？' },
        source: { en: 'docs/icralm.md, “Test” (the first 100 WikiText-2 test windows, 12,928 targets).', zh: WHEN_SOURCE_ZH },
      },
    ],
  },
  {
    id: 'leakage',
    title: { en: 'Leakage: the answer is in the datastore', zh: '泄漏：答案就在数据库里' },
    topic: 'leakage',
    steps: [
      {
        title: { en: 'The prompt’s own document is in the datastore', zh: '提示词所在的文档就在数据库里' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read: {
          en: 'The prompt is copied from a document that is also in the datastore. Open a RETRO block: its nearest neighbour is that very document. Researchers call this leakage: a test looks good because the answer was available to look up.',
          zh: '提示词摘自一篇文档，而这篇文档也在数据库里。打开一个 RETRO 小块：它最近的近邻正是这篇文档。研究者称之为“泄漏”：测试成绩好看，只是因为答案本来就查得到。',
        },
        notice: {
          en: 'The top neighbour comes from brannock-lighthouse.txt, and its continuation holds the words that follow the prompt.',
          zh: '排名第一的近邻来自 brannock-lighthouse.txt，它的“后续”部分正是提示词后面的原文。',
        },
        question: {
          en: 'If a model scores well on a test, how would you check that the test text was not in its datastore?',
          zh: '如果一个模型在测试中得分很高，你会怎样确认测试文本不在它的数据库里？',
        },
        source: {
          en: 'docs/retro-training.md: with the text’s own document among its neighbours RETRO’s token perplexity falls by 97.5% against the GPT (91.9 to 2.3, the first 600 windows of WikiText-2 test); with neighbours from other articles by 1.7% (all of WikiText-2 test; paired comparisons (d) and (b)).',
          zh: 'docs/retro-training.md：当近邻中包含文本自己的文档时，RETRO 的词元困惑度比 GPT 下降 97.5%（从 91.9 降到 2.3，WikiText-2 测试集前 600 个窗口）；近邻来自其他文章时只下降 1.7%（整个 WikiText-2 测试集；配对比较 (d) 和 (b)）。',
        },
      },
      {
        title: { en: 'Exclude the document', zh: '排除这篇文档' },
        prompt: LIGHTHOUSE_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: false },
        settings: { decoding: { maxTokens: 24 } },
        read: {
          en: 'Open a RETRO block and press “Exclude this document”, then Generate again. RETRO now has to make do with the other Brannock texts.',
          zh: '打开一个 RETRO 小块，按“排除这篇文档”，然后再次生成。现在 RETRO 只能用其他关于布兰诺克的文字。',
        },
        notice: {
          en: 'No neighbour comes from brannock-lighthouse.txt any more; the distances are larger.',
          zh: '不再有近邻来自 brannock-lighthouse.txt；距离变大了。',
        },
        question: { en: 'Is the model worse now, or was it only looking better before?', zh: '模型现在变差了，还是之前只是看起来更好？' },
        source: {
          en: 'Exclusions are listed under RETRO in Settings; they apply to this datastore only.',
          zh: '被排除的文档列在“设置”的 RETRO 一栏中，只对这个数据库生效。',
        },
      },
    ],
  },
  {
    id: 'own-text',
    title: { en: 'Your own text: new knowledge without retraining', zh: '你自己的文本：不重新训练也能获得新知识' },
    topic: 'own text',
    steps: [
      {
        title: { en: 'No datastore about Brannock', zh: '没有关于布兰诺克的数据库' },
        prompt: FERRY_PROMPT,
        datastore: { kind: 'builtin', id: 'squad-v2-paragraphs' },
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 16 } },
        read: {
          en: 'The datastore is 1,216 Wikipedia paragraphs, none about Brannock. No model here can know when the ferry leaves.',
          zh: '数据库是 1,216 段维基百科文字，没有一段与布兰诺克有关。这里没有哪个模型能知道渡轮几点开。',
        },
        notice: {
          en: 'The In-Context RALM passages (¶) come from unrelated Wikipedia paragraphs.',
          zh: 'In-Context RALM 的段落（¶）来自无关的维基百科文字。',
        },
        question: { en: 'Where would the right answer have to come from?', zh: '正确答案必须从哪里来？' },
        source: { en: 'SQuAD 2.0 paragraphs: public/datastores/index.json.', zh: 'SQuAD 2.0 段落：public/datastores/index.json。' },
      },
      {
        title: { en: 'Add the Brannock texts', zh: '加入布兰诺克的文字' },
        prompt: FERRY_PROMPT,
        datastore: BRANNOCK,
        columns: { knnlm: false, icralm: true },
        settings: { decoding: { maxTokens: 16 } },
        read: {
          en: 'Three short texts about Brannock become a datastore in a few seconds, here in the browser. The GPT is not retrained: its weights, and so its own column, stay exactly as before.',
          zh: '三篇关于布兰诺克的短文在浏览器里几秒钟就变成了一个数据库。GPT 没有重新训练：它的权重不变，所以它自己那一栏也和之前一模一样。',
        },
        notice: {
          en: 'The GPT column writes the same words as in the previous step; the ¶ passage now comes from brannock-ferry.txt. RETRO writes when the ferry leaves again, “at four in the afternoon”, read from brannock-ferry.txt through its cross-attention.',
          zh: 'GPT 栏写出的词和上一步完全相同；¶ 段落现在来自 brannock-ferry.txt。RETRO 写出了渡轮第二次开船的时间——“at four in the afternoon”（下午四点）——这是它通过交叉注意力从 brannock-ferry.txt 读到的。',
        },
        question: {
          en: 'Did the model learn anything? What would you have to do to remove a fact again?',
          zh: '模型学到东西了吗？如果要再删掉一个事实，需要做什么？',
        },
        source: {
          en: 'With the default decoding (seed 42) RETRO writes “at four in the afternoon”; over seeds 0-19 it does 9 times in 20, the GPT never (docs/retro-training.md). Copy test over 300 SQuAD passages, greedy (`npm run eval:generate -- --task copy --plain`): RETRO wrote the next four tokens of the retrieved passage 175 times, the kNN-LM 46, the GPT 0.',
          zh: '使用默认解码（种子 42）时，RETRO 写出“at four in the afternoon”；换用种子 0-19，它 20 次中有 9 次写出，GPT 一次也没有（docs/retro-training.md）。在 300 段 SQuAD 文字上的贪心照抄测试（`npm run eval:generate -- --task copy --plain`）：RETRO 有 175 次写出了检索段落接下来的四个词元，kNN-LM 46 次，GPT 0 次。',
        },
      },
    ],
  },
  {
    id: 'quality',
    title: { en: 'Text quality: repetition and diversity', zh: '文本质量：重复与多样性' },
    topic: 'quality',
    steps: [
      {
        title: { en: 'Greedy: always the most likely word', zh: '贪心解码：永远选最可能的词' },
        prompt: 'The ship was launched in',
        datastore: { kind: 'builtin', id: 'wikitext-2-train' },
        columns: { knnlm: false, icralm: false },
        settings: {
          decoding: { strategy: 'greedy', maxTokens: 48, suppressUnk: false, repetitionPenalty: 1, noRepeatNgramSize: 0 },
          retro: { retrieval: false },
        },
        read: {
          en: 'Both columns always take the single most likely next token. RETRO’s retrieval is off, so it writes like a plain language model. The line under each column measures the text: how many 4-word runs repeat, how varied the word pairs are (distinct-2), how often <unk> (unknown word) appears.',
          zh: '两栏都总是选最可能的下一个词元。RETRO 的检索已关闭，所以它和普通语言模型一样写作。每栏下方的一行在测量文本：有多少 4 词片段重复、词对有多丰富（二元多样性），以及 <unk>（未知词）出现得多频繁。',
        },
        notice: {
          en: 'The text loops, and the repeated 4-grams are far above zero.',
          zh: '文字在兜圈子，重复四元组远高于零。',
        },
        question: {
          en: 'Why does “the most likely word” every time give text that no person would write?',
          zh: '为什么每次都选“最可能的词”，写出来的却是没人会写的文字？',
        },
        source: {
          en: 'docs/retro-training.md, “Readable generations” (`npm run eval:generate -- --task quality`): greedy 51.9% repeated 4-grams, human text 0.3%.',
          zh: 'docs/retro-training.md “Readable generations”一节（`npm run eval:generate -- --task quality`）：贪心解码重复四元组 51.9%，人写的文字 0.3%。',
        },
      },
      {
        title: { en: 'Sampling with the app’s defaults', zh: '用本应用的默认设置采样' },
        prompt: 'The ship was launched in',
        datastore: { kind: 'builtin', id: 'wikitext-2-train' },
        columns: { knnlm: false, icralm: false },
        settings: { retro: { retrieval: false } },
        read: {
          en: 'Now the models draw the next token at random from the likely ones (temperature 0.8, top-p 0.9, a fixed seed), never write <unk> and never repeat a 3-token phrase.',
          zh: '现在模型从较可能的词元中随机抽取下一个（温度 0.8，top-p 0.9，固定随机种子），从不写 <unk>，也从不重复 3 词元的短语。',
        },
        notice: {
          en: 'No repeated 4-grams, no <unk>, and distinct-2 is much higher.',
          zh: '没有重复四元组，没有 <unk>，二元多样性高得多。',
        },
        question: {
          en: 'The model did not change, only how we pick from it. What else besides the model decides how good text reads?',
          zh: '模型没有变，变的只是我们怎样从中挑词。除了模型本身，还有什么决定了文字读起来好不好？',
        },
        source: {
          en: 'docs/retro-training.md: the default decoding gives 0 repeated 4-grams and distinct-2 0.747 (human text 0.787) over 100 prompts.',
          zh: 'docs/retro-training.md：默认解码在 100 个提示词上重复四元组为 0，二元多样性 0.747（人写的文字 0.787）。',
        },
      },
    ],
  },
];

export function findLesson(id: string): Lesson | undefined {
  return LESSONS.find((l) => l.id === id);
}
