// ELK runs in its own Web Worker (dist/ui/elk-worker.js, copied from elkjs by the UI build), so a
// big model's layout never blocks the window; one worker serves every layout of the session.
import ELK from 'elkjs/lib/elk-api';
import type { ModelGraph } from '../../shared/graph';
import { layoutGraph, type GraphLayout } from '../../shared/graph-layout';

let elk: InstanceType<typeof ELK> | undefined;

function worker(): InstanceType<typeof ELK> {
  elk ??= new ELK({ workerFactory: () => new Worker('elk-worker.js') });
  return elk;
}

/** Starts the worker while the engine reads the model's graph: ELK's 1.6 MB loads in the meantime. */
export function warmLayout(): void {
  void worker().layout({ id: 'warm', children: [{ id: 'n', width: 1, height: 1 }] }).catch(() => undefined);
}

export function layoutInWorker(graph: ModelGraph, expanded: ReadonlySet<string>): Promise<GraphLayout> {
  return layoutGraph(worker(), graph, expanded);
}
