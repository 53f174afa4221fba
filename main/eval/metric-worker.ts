// Runs the user's metric module in a worker thread: a module that loops or crashes cannot stop the
// engine, and a cancelled job ends it by terminating the thread.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type { MetricInput } from './custom-metric';

/** What the engine asks and hears. */
export type MetricRequest = { op: 'score'; input: MetricInput };
export type MetricResponse = { op: 'loaded'; name: string } | { op: 'scored'; value: unknown } | { op: 'error'; stage: 'load' | 'shape' | 'score'; message: string };

// TypeScript compiles import() to require() for CommonJS output, and require() cannot load an ES
// module in every Node 20; a Function keeps the real dynamic import.
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<{ default?: unknown }>;

const port = parentPort!;
const reply = (r: MetricResponse) => port.postMessage(r);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function main(): Promise<void> {
  let loaded: { default?: unknown };
  try {
    loaded = await importModule(pathToFileURL(workerData.file as string).href);
  } catch (err) {
    reply({ op: 'error', stage: 'load', message: message(err) });
    return;
  }
  const m = loaded.default as { name?: unknown; score?: unknown } | undefined;
  if (!m || typeof m !== 'object' || typeof m.name !== 'string' || !m.name.trim() || typeof m.score !== 'function') {
    reply({ op: 'error', stage: 'shape', message: 'not a metric module' });
    return;
  }
  const score = m.score as (input: MetricInput) => unknown;
  reply({ op: 'loaded', name: m.name.trim() });
  port.on('message', async (req: MetricRequest) => {
    try {
      reply({ op: 'scored', value: await score.call(m, req.input) });
    } catch (err) {
      reply({ op: 'error', stage: 'score', message: message(err) });
    }
  });
}

void main();
