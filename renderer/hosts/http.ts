// The StudioApi over the browser host (app/serve.ts): requests as JSON POSTs, job events as
// server-sent events, dropped files uploaded. Every URL is relative to the page, whose path starts
// with the access token, so each request carries it.
import { pathInPickedFolder, type Channel, type Envelope, type JobEvent, type MenuCommand, type RequestOf, type ResponseOf, type StudioApi } from '../../shared/ipc';

export function httpHost(base: string): StudioApi {
  const listeners = new Set<(event: JobEvent) => void>();
  let events: EventSource | undefined;
  /** Settles once the event stream is connected (or has given up trying for now). */
  let connected: Promise<void> = Promise.resolve();
  const unwrap = async <T>(response: Response): Promise<T> => {
    let envelope: Envelope<T>;
    try {
      envelope = (await response.json()) as Envelope<T>;
    } catch {
      throw new Error(`the studio host answered ${response.status} ${response.statusText}`);
    }
    if (!envelope.ok) throw new Error(envelope.error);
    return envelope.value;
  };
  return {
    host: 'browser',
    async call<C extends Channel>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>> {
      // The session is read once events flow: one sent between the answer and the connection would be heard by nobody.
      if (channel === 'session:get') await connected;
      const response = await fetch(`${base}api/${channel}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });
      return unwrap<ResponseOf<C>>(response);
    },
    async pathForFile(file: File): Promise<string> {
      const response = await fetch(`${base}upload?name=${encodeURIComponent(file.name)}`, { method: 'POST', body: file });
      return (await unwrap<{ file: string }>(response)).file;
    },
    async pathForFolder(picked, onFile) {
      // A folder picked on macOS brings .DS_Store and __MACOSX along, which the host refuses as names: they are not data.
      const files = picked.filter((f) => !(pathInPickedFolder(f) || f.name).split('/').some((s) => s.startsWith('.') || s === '__MACOSX'));
      if (files.length === 0) throw new Error('no files were picked');
      const batch = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
      let folder = '';
      for (const [i, file] of files.entries()) {
        const name = pathInPickedFolder(file) || file.name;
        const response = await fetch(`${base}upload?batch=${batch}&name=${encodeURIComponent(name)}`, { method: 'POST', body: file });
        folder = (await unwrap<{ folder: string }>(response)).folder;
        onFile?.(i + 1, files.length);
      }
      return folder;
    },
    onJobEvent(listener) {
      listeners.add(listener);
      if (!events) {
        const source = new EventSource(`${base}events`);
        events = source;
        connected = new Promise((resolve) => {
          source.addEventListener('open', () => resolve(), { once: true });
          source.addEventListener('error', () => resolve(), { once: true });
        });
        events.onmessage = (m) => {
          const event = JSON.parse(m.data as string) as JobEvent;
          for (const l of listeners) l(event);
        };
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          events?.close();
          events = undefined;
        }
      };
    },
    onMenu(_listener: (command: MenuCommand) => void) {
      // A browser tab has no application menu.
      return () => undefined;
    },
  };
}
