// The renderer's entry: picks the host (the Electron preload's window.studio, else the browser
// host that served this page) and mounts the app. Nothing else reads window.studio.
import { createRoot } from 'react-dom/client';
import type { StudioApi } from '../shared/ipc';
import { App } from './App';
import { StoreContext } from './context';
import { httpHost } from './hosts/http';
import { createStudioStore, keepSession } from './store';

const api: StudioApi = (window as unknown as { studio?: StudioApi }).studio ?? httpHost(new URL('.', location.href).pathname);
const dark = window.matchMedia?.('(prefers-color-scheme: dark)').matches;
const store = createStudioStore(api, { theme: dark ? 'dark' : 'light' });
// A reload comes back to the session the host kept; saving starts after, so the empty page never overwrites it.
// The root says when that is settled: until then what shows may still change under a click.
void store.getState().restoreSession().finally(() => {
  keepSession(store, api);
  document.documentElement.dataset.session = 'ready';
});

createRoot(document.getElementById('root')!).render(
  <StoreContext.Provider value={store}>
    <App api={api} />
  </StoreContext.Provider>,
);
