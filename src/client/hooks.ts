import { createContext, useContext, useSyncExternalStore } from 'react';
import type { AppState, RetroLabClient } from './client';

export const ClientContext = createContext<RetroLabClient | null>(null);

export function useClient(): RetroLabClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useClient needs a <ClientContext.Provider>.');
  return client;
}

/** Subscribes to one slice of the app state; a component re-renders only when its slice changes. */
export function useAppState<T>(select: (state: AppState) => T): T {
  const client = useClient();
  return useSyncExternalStore(client.subscribe, () => select(client.getState()));
}
