// The test host: the StudioApi the renderer's tests drive, over the real engine service in this
// process (as the Electron preload is over IPC and the browser client over HTTP). Payloads are
// checked against the contract as the real hosts check them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkRequest, pathInPickedFolder, type Channel, type JobEvent, type MenuCommand, type RequestOf, type ResponseOf, type StudioApi } from '../../shared/ipc';
import { StudioService, type EngineChannel } from '../../main/studio/service';
import type { Studio, StudioStore } from '../../renderer/store';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const SAMPLE_DIR = path.join(ROOT, 'resources', 'sample');

export interface TestHost {
  api: StudioApi;
  service: StudioService;
  /** Channels called, in order. */
  calls: Channel[];
  /** Sends a menu command as the Electron menu would. */
  menu(command: MenuCommand): void;
  close(): Promise<void>;
}

export function testHost(): TestHost {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-test-host-'));
  const listeners = new Set<(e: JobEvent) => void>();
  const menus = new Set<(c: MenuCommand) => void>();
  const service = new StudioService({ stateDir: dir, sampleDir: SAMPLE_DIR, emit: (e) => { for (const l of listeners) l(e); } });
  const calls: Channel[] = [];
  const api: StudioApi = {
    host: 'test',
    async call<C extends Channel>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>> {
      calls.push(channel);
      checkRequest(channel, request);
      if (channel === 'dialog:model' || channel === 'dialog:folder') return null as ResponseOf<C>;
      return service.handle(channel as EngineChannel, request as never) as Promise<ResponseOf<C>>;
    },
    async pathForFile(file: File) {
      const target = path.join(fs.mkdtempSync(path.join(dir, 'drop-')), path.basename(file.name));
      fs.writeFileSync(target, Buffer.from(await file.arrayBuffer()));
      return target;
    },
    async pathForFolder(files) {
      const folder = fs.mkdtempSync(path.join(dir, 'folder-'));
      for (const file of files) {
        const target = path.join(folder, ...(pathInPickedFolder(file) || path.basename(file.name)).split('/'));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, Buffer.from(await file.arrayBuffer()));
      }
      return folder;
    },
    onJobEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    onMenu(listener) {
      menus.add(listener);
      return () => void menus.delete(listener);
    },
  };
  return {
    api, service, calls,
    menu: (c) => { for (const m of menus) m(c); },
    close: async () => {
      await service.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the store's state once `done` holds; rejects after `ms`, saying what it waited for and where the run stands. */
export function until(store: StudioStore, done: (s: Studio) => boolean, what: string, ms = 60_000): Promise<Studio> {
  return new Promise((resolve, reject) => {
    if (done(store.getState())) return resolve(store.getState());
    const timer = setTimeout(() => { stop(); reject(new Error(`timed out waiting for ${what}; status ${store.getState().status}, failure ${store.getState().failure?.message}`)); }, ms);
    const stop = store.subscribe((s) => {
      if (done(s)) { clearTimeout(timer); stop(); resolve(s); }
    });
  });
}
