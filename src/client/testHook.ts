import type { AppState, RetroLabClient } from './client';

/**
 * What end-to-end tests (and curious users in the console) reach through `window.__retrolab`:
 * the same client the UI uses, so a test drives exactly what a click drives.
 */
export interface RetroLabTestHook {
  client: RetroLabClient;
  state(): AppState;
  /** Token ids of `text` from the inference worker's tokenizer (rejects until the models loaded). */
  encode(text: string): Promise<number[]>;
  /** Text of token ids from the inference worker's tokenizer. */
  decode(ids: number[]): Promise<string>;
}

declare global {
  interface Window {
    __retrolab?: RetroLabTestHook;
  }
}

export function installTestHook(client: RetroLabClient): void {
  window.__retrolab = {
    client,
    state: () => client.getState(),
    encode: (text) => client.encode(text),
    decode: (ids) => client.decode(ids),
  };
}
