/** FLARE's settings (src/core/flare/types.ts explains the method as RetroLab runs it). */
export interface FlareSettings {
  /** The look-ahead: how many tokens the GPT writes, without retrieval, before each decision (the paper: one sentence). */
  lookahead: number;
  /** θ: retrieve when any look-ahead token's probability is below this (0 never retrieves, 1 always does). */
  threshold: number;
  /** β: look-ahead tokens below this probability are left out of the query (the paper's masked query). */
  maskBelow: number;
  /** l: the query is the last `queryLength` tokens of the text followed by the masked look-ahead. */
  queryLength: number;
}

/** One look-ahead token as the column shows it: what the GPT wrote and how sure it was. */
export interface FlareLookaheadToken {
  id: number;
  probability: number;
}
