// The Electron preload: window.studio, a narrow StudioApi over IPC. The renderer gets no
// ipcRenderer and no Node; main re-checks everything it sends. Bundled into one file because a
// sandboxed preload may require nothing but 'electron'.
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import { EVENT_CHANNEL, isChannel, MENU_CHANNEL, type Channel, type Envelope, type JobEvent, type MenuCommand, pathInPickedFolder, type RequestOf, type ResponseOf, type StudioApi } from '../shared/ipc';

const api: StudioApi = {
  host: 'electron',
  async call<C extends Channel>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>> {
    // The page could pass any string: only the contract's channels go over IPC.
    if (!isChannel(channel)) throw new Error(`unknown channel "${String(channel)}"`);
    const envelope = (await ipcRenderer.invoke(channel, request)) as Envelope<ResponseOf<C>>;
    if (!envelope.ok) throw new Error(envelope.error);
    return envelope.value;
  },
  async pathForFile(file: File): Promise<string> {
    const path = webUtils.getPathForFile(file);
    if (!path) throw new Error(`${file.name}: the file has no path on disk (was it dragged from another application?)`);
    return path;
  },
  async pathForFolder(files, onFile) {
    // Electron reads files where they are: several loose files would mean their whole folder, unpicked ones too; a manifest names its own.
    const loose = files.some((f) => !pathInPickedFolder(f));
    if (loose && files.length > 1 && !files.some((f) => /\.json$/i.test(f.name))) throw new Error(`${files.length} files picked: pick their folder, or one .npy file, or a manifest with its files`);
    // A sandboxed preload has no node:path: folders are cut at either separator by hand.
    const folders = new Set(files.map((file) => {
      const full = webUtils.getPathForFile(file);
      if (!full) throw new Error(`${file.name}: the file has no path on disk`);
      const depth = pathInPickedFolder(file).split('/').length;
      return full.split(/[\\/]/).slice(0, -depth).join(full.includes('\\') ? '\\' : '/');
    }));
    if (folders.size !== 1) throw new Error(`the picked files are in ${folders.size} folders; pick files of one folder, or the folder itself`);
    onFile?.(files.length, files.length);
    return [...folders][0];
  },
  onJobEvent(listener: (event: JobEvent) => void) {
    const wrapped = (_e: IpcRendererEvent, event: JobEvent) => listener(event);
    ipcRenderer.on(EVENT_CHANNEL, wrapped);
    return () => void ipcRenderer.removeListener(EVENT_CHANNEL, wrapped);
  },
  onMenu(listener: (command: MenuCommand) => void) {
    const wrapped = (_e: IpcRendererEvent, command: MenuCommand) => listener(command);
    ipcRenderer.on(MENU_CHANNEL, wrapped);
    return () => void ipcRenderer.removeListener(MENU_CHANNEL, wrapped);
  },
};

contextBridge.exposeInMainWorld('studio', api);
