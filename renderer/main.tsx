// The renderer's entry: picks the host (the Electron preload's window.studio, else the browser
// host that served this page) and mounts the app. Nothing else reads window.studio.
import { createRoot } from 'react-dom/client';
import type { StudioApi } from '../shared/ipc';
import { App } from './App';
import { StoreContext } from './context';
import { httpHost } from './hosts/http';
import { createStudioStore } from './store';

const api: StudioApi = (window as unknown as { studio?: StudioApi }).studio ?? httpHost(new URL('.', location.href).pathname);
const dark = window.matchMedia?.('(prefers-color-scheme: dark)').matches;
const store = createStudioStore(api, { theme: dark ? 'dark' : 'light' });

createRoot(document.getElementById('root')!).render(
  <StoreContext.Provider value={store}>
    <App api={api} />
  </StoreContext.Provider>,
);
