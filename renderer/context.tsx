import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { Studio, StudioStore } from './store';

export const StoreContext = createContext<StudioStore | null>(null);

/** Reads one value of the studio store; atomic selectors keep re-renders to what changed. */
export function useStudio<T>(selector: (s: Studio) => T): T {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStudio outside <StoreContext.Provider>');
  return useStore(store, selector);
}
