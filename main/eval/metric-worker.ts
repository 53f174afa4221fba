// Runs the user's metric module in a worker thread: a module that loops or crashes cannot stop the
// engine, and a cancelled job ends it by terminating the thread.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type { MetricInput } from './custom-metric';

/**
 * What the engine asks and hears. With `each`, the module also scores every sample alone; a module
 * that cannot (it throws, or returns no finite number, for one sample) answers no `each`.
 */
export type MetricRequest = { op: 'score'; input: MetricInput; each?: boolean };
export type MetricResponse = { op: 'loaded'; name: string } | { op: 'scored'; value: unknown; each?: number[] } | { op: 'error'; stage: 'load' | 'shape' | 'score'; message: string };

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
  const alone = async ({ float, quantized, labels }: MetricInput): Promise<number[] | undefined> => {
    const each: number[] = [];
    try {
      for (let i = 0; i < float.length; i++) {
        const v = await score.call(m, { float: [float[i]], quantized: [quantized[i]], ...(labels ? { labels: [labels[i]] } : {}) });
        if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
        each.push(v);
      }
    } catch {
      return undefined;
    }
    return each;
  };
  port.on('message', async (req: MetricRequest) => {
    try {
      const value = await score.call(m, req.input);
      const each = req.each ? await alone(req.input) : undefined;
      reply({ op: 'scored', value, ...(each ? { each } : {}) });
    } catch (err) {
      reply({ op: 'error', stage: 'score', message: message(err) });
    }
  });
}

void main();
