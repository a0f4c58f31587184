export { RetroLabClient } from './client';
export type { AppState, RunState, Notice } from './client';
export { ClientContext, useClient, useAppState } from './hooks';
export { formatBytes, formatDuration } from './format';
export type * from '../../workers/protocol';
// Display-only text helper, pure; re-exported so the UI needs nothing from core directly.
export { detokenizeWikiText } from '../core/tokenizer/wikitext';
export { installTestHook } from './testHook';
export type { RetroLabTestHook } from './testHook';
