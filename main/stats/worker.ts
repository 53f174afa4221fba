// Runs in a worker thread: a pool's observers and SQNR accumulators (StatsState). Tensors arrive as
// views of the pool's shared memory, which it reuses once a flush has answered, or in buffers
// that moved here.
import { parentPort } from 'node:worker_threads';
import { StatsState } from './state';
import { NonFiniteValues, type StatsRequest, type StatsResponse } from './protocol';

const state = new StatsState();
parentPort!.on('message', (msg: StatsRequest) => {
  try {
    const reply = state.handle(msg);
    if (reply) parentPort!.postMessage(reply);
  } catch (err) {
    const tensor = err instanceof NonFiniteValues ? err.tensor : undefined;
    parentPort!.postMessage({ op: 'error', message: (err as Error).message, tensor } satisfies StatsResponse);
  }
});
