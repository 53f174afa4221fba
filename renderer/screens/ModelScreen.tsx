import { useEffect, useState } from 'react';
import { GraphPane } from '../graph/GraphPane';
import { findBackend } from '../../shared/backends';
import { hostWords } from '../../shared/numerics';
import type { TensorInfo } from '../../shared/ipc';
import { useStudio } from '../context';
import { bytes, count, shape } from '../format';

function Tensors({ title, tensors }: { title: string; tensors: TensorInfo[] }) {
  return (
    <table className="grid">
      <caption>{title}</caption>
      <thead><tr><th>name</th><th>type</th><th>shape</th></tr></thead>
      <tbody>{tensors.map((t) => <tr key={t.name}><td>{t.name}</td><td>{t.type}</td><td>{shape(t.shape)}</td></tr>)}</tbody>
    </table>
  );
}

const PLACES: Record<string, string> = { quantized: 'quantized', device: 'on the device, not quantized', cpu: 'fall back to the CPU', unsupported: 'cannot run' };

export function PlanSummaryView() {
  const model = useStudio((s) => s.model);
  const plan = useStudio((s) => s.plan);
  const error = useStudio((s) => s.planError);
  const recipe = useStudio((s) => s.recipe);
  const backend = findBackend(recipe.backend);
  const p = plan?.preflight;
  return (
    <div className="preflight" data-testid="preflight">
      <h3>Pre-flight: {backend?.title ?? recipe.backend}, {recipe.kind}</h3>
      {error ? <p className="error" role="alert">{error}</p>
        : !plan ? <p className="muted">Checking where each node would run…</p>
          : !p ? <ul className="error">{plan.problems.map((x) => <li key={x}>{x}</li>)}</ul>
            : (
              <>
                <p className="placements">
                  {(Object.keys(PLACES) as Array<keyof typeof p.counts>).filter((k) => p.counts[k] > 0).map((k) => (
                    <span key={k} className={`place place-${k}`}><strong>{p.counts[k]}</strong> {PLACES[k]}</span>
                  ))}
                  <span className="muted" data-testid="preflight-total">of {p.total} nodes on {p.device}{p.partitions > 1 ? `, ${p.partitions} device partitions` : ''}</span>
                </p>
                <p className="muted small" data-testid="node-counts">
                  {model && model.nodeCount !== p.total
                    ? `Counted after prepare: the model has ${model.nodeCount.toLocaleString('en-US')} nodes; Constant nodes become initializers and each BatchNormalization after a Conv is folded into it, as every deployment runtime does.`
                    : 'Counted after prepare, which left the graph as it is.'}
                </p>
                {plan.problems.length > 0 && <ul className="error">{plan.problems.map((x) => <li key={x}>{x}</li>)}</ul>}
                <p className={plan.host.int8Saturates && backend?.localRuntime === 'ort-cpu' ? 'warning' : 'muted'} data-testid="host-numerics">This machine: {hostWords(plan.host, recipe.backend)}</p>
                {plan.reasons.length > 0 && (
                  <ul className="reasons">
                    {plan.reasons.slice(0, 6).map((r) => <li key={`${r.placement}:${r.reason}`}>{r.count} × {r.reason || PLACES[r.placement]} <span className="muted">(e.g. {r.example})</span></li>)}
                  </ul>
                )}
              </>
            )}
    </div>
  );
}

export function ModelScreen() {
  const model = useStudio((s) => s.model);
  const refreshPlan = useStudio((s) => s.refreshPlan);
  const go = useStudio((s) => s.go);
  const threshold = useStudio((s) => s.threshold);
  const [graphShown, showGraph] = useState(false);
  useEffect(() => {
    void refreshPlan();
  }, [model, refreshPlan]);
  if (!model) return null;
  const ops = Object.entries(model.ops).sort((a, b) => b[1] - a[1]);
  const most = ops[0]?.[1] ?? 1;
  const opset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
  return (
    <section className="screen model" aria-labelledby="model-title">
      <h2 id="model-title">{model.name}</h2>
      <dl className="facts">
        <div className="span2"><dt>File</dt><dd className="path">{model.file}</dd></div>
        <div><dt>Size</dt><dd>{bytes(model.bytes)}{model.sideFiles.length ? ` (with ${model.sideFiles.join(', ')})` : ''}</dd></div>
        <div><dt>Opset</dt><dd>{opset ?? '—'} (IR {model.irVersion})</dd></div>
        <div><dt>Parameters</dt><dd>{count(model.parameters)}</dd></div>
        <div><dt>Nodes</dt><dd>{count(model.nodeCount)}</dd></div>
        <div><dt>Producer</dt><dd>{model.producer || '—'}</dd></div>
      </dl>
      <div className="columns">
        <div>
          <Tensors title="Inputs" tensors={model.inputs} />
          <Tensors title="Outputs" tensors={model.outputs} />
          <PlanSummaryView />
        </div>
        <div>
          <h3>Operators</h3>
          <ul className="op-histogram">
            {ops.map(([op, n]) => (
              <li key={op}><span className="op">{op}</span><span className="meter"><span style={{ width: `${(100 * n) / most}%` }} /></span><span className="n">{n}</span></li>
            ))}
          </ul>
        </div>
      </div>
      <section className="model-graph" aria-labelledby="model-graph-title">
        <h3 id="model-graph-title">Graph</h3>
        {graphShown ? <GraphPane modes={['op']} threshold={threshold} />
          : <button type="button" onClick={() => showGraph(true)} data-testid="show-model-graph">Show the graph ({count(model.nodeCount)} nodes)</button>}
      </section>
      <div className="actions"><button type="button" className="primary" onClick={() => go('configure')}>Configure →</button></div>
    </section>
  );
}
