// The studio service in a worker thread: parsing models, calibrating, converting and evaluating
// never run on the host's main thread (a frozen Electron main process freezes every window; a busy
// browser host answers Cancel late).
import { parentPort, workerData } from 'node:worker_threads';
import { StudioService, type EngineChannel } from './service';
import type { ToWorker } from './remote';

const port = parentPort!;
const service = new StudioService({ ...(workerData as { stateDir: string; sampleDir: string }), emit: (event) => port.postMessage({ event }) });
port.postMessage({ workRoot: service.workRoot });

port.on('message', (message: ToWorker) => {
  if (message.type === 'close') {
    void service.close().then(() => port.postMessage({ closed: true }));
    return;
  }
  service.handle(message.channel as EngineChannel, message.request as never).then(
    (value) => port.postMessage({ id: message.id, ok: true, value }),
    (err: Error) => port.postMessage({ id: message.id, ok: false, error: err.message }),
  );
});
