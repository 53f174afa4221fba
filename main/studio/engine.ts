// The studio service in a process of its own: parsing models, calibrating, converting and
// evaluating never run in the host's process (a frozen Electron main process freezes every window;
// a native crash in ONNX Runtime would take the host with it). Started by remote.ts with Node's fork
// or, in the desktop app, Electron's utilityProcess, whose parentPort carries the messages instead.
import type { EngineArgs, FromEngine, ToEngine } from './remote';
import { StudioService, type EngineChannel } from './service';

interface MessagePortLike {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

const electronPort = (process as { parentPort?: MessagePortLike }).parentPort;
const send = (m: FromEngine) => (electronPort ? electronPort.postMessage(m) : process.send?.(m));
const onMessage = (listener: (m: ToEngine) => void) => (electronPort
  ? electronPort.on('message', (e) => listener(e.data as ToEngine))
  : void process.on('message', (m) => listener(m as ToEngine)));

const args = JSON.parse(process.argv[2]) as EngineArgs;
const service = new StudioService({ ...args, emit: (event) => send({ event }) });

onMessage((message) => {
  if (message.type === 'close') {
    void service.close().then(() => send({ closed: true }));
    return;
  }
  service.handle(message.channel as EngineChannel, message.request as never).then(
    (value) => send({ id: message.id, ok: true, value }),
    (err: Error) => send({ id: message.id, ok: false, error: err.message }),
  );
});
// The host gone, the engine has no one to answer. Ctrl-C in a terminal reaches the whole process
// group: the host decides what it means (cancel, or close and end this process).
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => undefined);
