import type { ModelKey } from '../../client';

/** Short names for legends and tooltips; the table also shows each model's full name. */
export const MODEL_LABELS: Record<ModelKey, string> = { gpt: 'GPT', retro: 'RETRO', knnlm: 'kNN-LM', icralm: 'In-Context RALM', replug: 'REPLUG', flare: 'FLARE', ragseq: 'RAG-Sequence' };
