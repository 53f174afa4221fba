// Electron main's side of the contract: one handler per request channel. Each checks that the
// message comes from the app's own window (and its top frame, showing our app:// page) and
// validates the payload before the engine sees it. Kept free of the electron module so that it
// can be tested without an Electron binary.
import { CHANNELS, checkRequest, type Channel, type Envelope, type RequestOf, type ResponseOf } from '../shared/ipc';

/** The parts of an IpcMainInvokeEvent the checks read. */
export interface InvokeEvent {
  sender: { id: number };
  senderFrame: { url: string; parent: unknown } | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEvent, payload: unknown) => Promise<unknown>): void;
}

export type Handlers = { [C in Channel]: (request: RequestOf<C>) => Promise<ResponseOf<C>> | ResponseOf<C> };

export const APP_ORIGIN = 'app://studio';

export class UntrustedSenderError extends Error {}

/** Only the main window's top frame, showing the app's own page, may call the engine. */
export function checkSender(event: InvokeEvent, trustedWebContentsId: () => number | undefined): void {
  const frame = event.senderFrame;
  if (event.sender.id !== trustedWebContentsId()) throw new UntrustedSenderError('refused: the request does not come from the studio window');
  if (!frame || frame.parent !== null) throw new UntrustedSenderError('refused: the request comes from a sub-frame');
  let url: URL;
  try {
    url = new URL(frame.url);
  } catch {
    throw new UntrustedSenderError('refused: the sender has no valid URL');
  }
  if (`${url.protocol}//${url.host}` !== APP_ORIGIN) throw new UntrustedSenderError(`refused: the sender shows ${frame.url}, not the studio`);
}

export function registerHandlers(ipcMain: IpcMainLike, trustedWebContentsId: () => number | undefined, handlers: Handlers): void {
  for (const channel of CHANNELS) {
    ipcMain.handle(channel, async (event, payload): Promise<Envelope<unknown>> => {
      try {
        checkSender(event, trustedWebContentsId);
        const request = checkRequest(channel, payload);
        return { ok: true, value: await (handlers[channel] as (r: unknown) => unknown)(request) };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    });
  }
}
