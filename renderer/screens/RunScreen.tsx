
import { useStudio } from '../context';
import { seconds } from '../format';
import { countedUnit, type Stage } from '../../shared/progress';

const TITLES: Record<Stage, string> = { load: 'Load', calibrate: 'Calibrate', convert: 'Convert', evaluate: 'Evaluate', baseline: 'No algorithms', sensitivity: 'Repair search', latency: 'Latency', save: 'Save' };

export function RunScreen() {
  const status = useStudio((s) => s.status);
  const stages = useStudio((s) => s.stages);
  const runStages = useStudio((s) => s.runStages);
  const failure = useStudio((s) => s.failure);
  const warnings = useStudio((s) => s.warnings);
  const cancel = useStudio((s) => s.cancelRun);
  const go = useStudio((s) => s.go);
  const current = useStudio((s) => s.current);
  const runId = useStudio((s) => s.runId);
  return (
    <section className="screen run" aria-labelledby="run-title" data-run={runId}>
      <h2 id="run-title">Run</h2>
      <ol className="stages">
        {runStages.map((stage) => {
          const st = stages[stage];
          const fraction = st && st.total > 0 ? Math.min(1, st.done / st.total) : 0;
          const unit = countedUnit(stage, st?.unit);
          const left = st?.rate && st.rate > 0 && st.done < st.total ? `, ${seconds((st.total - st.done) / st.rate)} left` : '';
          // A stopped run's rate and time left no longer mean anything: where it stopped does.
          const stopped = status === 'cancelling' || status === 'cancelled' || status === 'failed';
          const progress = stopped ? `stopped at ${st?.done}/${st?.total} ${unit}` : `${st?.done}/${st?.total} ${unit}${st?.rate ? `, ${st.rate.toFixed(1)}/s` : ''}${left}`;
          const text = !st ? 'waiting' : st.skipped ? (stage === 'calibrate' ? `skipped: ${st.why ?? 're-uses the saved ranges'}` : 'skipped') : fraction >= 1 ? 'done' : unit ? progress : stopped ? 'stopped' : 'working…';
          const failed = failure?.stage === stage;
          return (
            <li key={stage} className={`stage${failed ? ' failed' : ''}`} data-stage={stage}>
              <span className="stage-name">{TITLES[stage]}</span>
              <progress max={1} value={fraction} aria-label={`${TITLES[stage]} progress`} />
              <span className="stage-text">{failed ? 'failed' : text}</span>
            </li>
          );
        })}
      </ol>
      <div className="status-line" role="status" aria-live="polite" data-testid="run-status">
        {status === 'running' && 'Running…'}
        {status === 'cancelling' && 'Cancelling…'}
        {status === 'cancelled' && 'Cancelled. Nothing was written.'}
        {status === 'done' && 'Done.'}
        {status === 'failed' && failure && <span className="error" role="alert">{TITLES[failure.stage]} failed: {failure.message}</span>}
      </div>
      <div className="actions">
        <button type="button" data-testid="cancel" onClick={() => void cancel()} disabled={status !== 'running'}>Cancel</button>
        {status !== 'running' && status !== 'cancelling' && <button type="button" onClick={() => go('configure')}>Back to Configure</button>}
        {current && status === 'done' && <button type="button" className="primary" onClick={() => go('inspect')}>Inspect →</button>}
      </div>
      {warnings.length > 0 && (
        <ul className="warnings">{warnings.map((w, i) => <li key={i}>{w}</li>)}</ul>
      )}
    </section>
  );
}
